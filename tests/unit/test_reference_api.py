"""`GET /v1/reference/...` publishes the rules' own lists: compared with the data files and ISO tables read here."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx
import pycountry
import pytest

from services.aggregate.app import create_app
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.settings import AggregateSettings
from shared.auth import InMemoryKeyStore
from tests.keys import add_key, bearer

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "shared" / "reference"


def data_file(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.v1.json").read_text())
    return loaded


@pytest.fixture
async def officer_client() -> AsyncIterator[httpx.AsyncClient]:
    keys = InMemoryKeyStore()
    app = create_app(AggregateSettings(), repository=InMemoryRepository(), keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate",
                                 headers=bearer(add_key(keys, "officer"))) as client:
        yield client


async def get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    response = await client.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_drugs_are_the_files_list_with_the_units_their_forms_allow(officer_client: httpx.AsyncClient) -> None:
    raw = data_file("drugs")
    body = await get(officer_client, "/v1/reference/drugs")
    assert (body["name"], body["version"]) == ("drugs", raw["version"])
    by_code = {d["code"]: d for d in body["items"]}
    assert list(by_code) == sorted(raw["drugs"])
    for code, spec in raw["drugs"].items():
        units = {u for form in spec["forms"] for u in raw["forms"][form]} | set(spec.get("also_units", []))
        assert by_code[code]["category"] == spec["category"]
        assert set(by_code[code]["units"]) == units
        assert by_code[code]["forms"] == spec["forms"]


async def test_units_are_the_conversion_table_with_its_version(officer_client: httpx.AsyncClient) -> None:
    raw = data_file("units")
    body = await get(officer_client, "/v1/reference/units")
    assert body["version"] == raw["version"]
    assert {u["code"]: {"to": u["to"], "factor": u["factor"]} for u in body["items"]} == raw["units"]


async def test_countries_and_currencies_are_the_iso_tables(officer_client: httpx.AsyncClient) -> None:
    countries = await get(officer_client, "/v1/reference/countries")
    assert {c["code"] for c in countries["items"]} == {c.alpha_3 for c in pycountry.countries}
    assert version("pycountry") in countries["version"]
    currencies = await get(officer_client, "/v1/reference/currencies")
    assert {c["code"] for c in currencies["items"]} == {c.alpha_3 for c in pycountry.currencies} - {"XXX", "XTS"}


async def test_the_index_names_every_list_with_the_version_it_serves(officer_client: httpx.AsyncClient) -> None:
    index = await get(officer_client, "/v1/reference")
    for entry in index["lists"]:
        assert (await get(officer_client, entry["url"]))["version"] == entry["version"]
    assert {e["name"] for e in index["lists"]} >= {"drugs", "units", "countries", "currencies"} | set(SCHEMA_FIELDS)


async def test_an_unknown_list_is_refused_naming_the_path_parameter(officer_client: httpx.AsyncClient) -> None:
    response = await officer_client.get("/v1/reference/planets")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["path", "name"]


async def test_reference_data_needs_a_key() -> None:
    app = create_app(AggregateSettings(), repository=InMemoryRepository())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate") as client:
        assert (await client.get("/v1/reference/drugs")).status_code == 401


SCHEMA_FIELDS = {
    "routes": ("seizure.v2", ["properties", "route", "enum"]),
    "transports": ("seizure.v2", ["properties", "transport", "enum"]),
    "markets": ("price.v1", ["properties", "market", "enum"]),
    "case_types": ("financial_case.v1", ["properties", "case_type", "enum"]),
    "treatment_services": ("treatment_facility.v1", ["properties", "services", "items", "enum"]),
    "genders": ("training.v1", ["$defs", "ParticipantSubmission", "properties", "gender", "enum"]),
}
"""Each code list and where the published JSON Schema of a submission type gives the same codes."""


@pytest.mark.parametrize("name", SCHEMA_FIELDS)
async def test_each_code_list_is_what_the_published_schema_allows(officer_client: httpx.AsyncClient,
                                                                  name: str) -> None:
    schema_file, path = SCHEMA_FIELDS[name]
    node: Any = json.loads((ROOT / "schemas" / "submissions" / f"{schema_file}.schema.json").read_text())
    for key in path:
        node = node[key]
    body = await get(officer_client, f"/v1/reference/{name}")
    assert [item["code"] for item in body["items"]] == node
    assert body["version"] == f"dmp-pipeline {version('dmp-pipeline')}"
