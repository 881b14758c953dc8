"""The views' HTTP edge on an in-memory store: shapes, paging, CSV, GeoJSON and clear 422s."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.aggregate.app import create_app
from services.aggregate.apply import apply_batch
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.settings import AggregateSettings
from shared.audit import InMemoryAuditLog
from shared.auth import InMemoryKeyStore
from tests.keys import add_key, bearer
from tests.unit.test_views_projection import (
    PERSON_A,
    PERSON_B,
    financial,
    price,
    seizure,
    training,
    treatment,
    validated,
)


def events() -> list[Any]:
    found = []
    for n, (country, drug, day, route) in enumerate([
        ("AFG", "heroin", "2024-01-15", "balkan"), ("AFG", "opium", "2024-02-01", "balkan"),
        ("IRN", "heroin", "2024-02-20", "southern"), ("IRN", "heroin", "2023-11-05", "balkan"),
        ("PAK", "cannabis_resin", "2024-03-03", "southern"), ("TUR", "heroin", "2024-01-31", "balkan"),
        ("TUR", "heroin", "2024-01-02", "balkan"), ("AFG", "heroin", "2024-06-30", "northern"),
    ]):
        coordinates = None if n == 4 else {"lat": 30.0 + n, "lon": 60.0 + n}
        found.append(validated("seizure", f"s{n}", n + 1, seizure(country=country, drug=drug, seized_on=day,
                                                                   route=route, coordinates=coordinates)))
    found += [
        validated("price", "p1", 20, price(price_typical=3.0, price_min=2.0, price_max=4.5)),
        validated("price", "p2", 21, price(price_typical=4.0)),
        validated("price", "p3", 22, price(market="wholesale", price_typical=2500, per="kg")),
        validated("price", "p4", 23, price(country="IRN", currency="IRR", price_typical=150_000)),
        validated("financial_case", "f1", 30, financial()),
        validated("financial_case", "f2", 31, financial(case_type="cash_smuggling", amount=12_000)),
        validated("financial_case", "f3", 32, financial(country="TUR", currency="EUR")),
        validated("treatment_facility", "t1", 40, treatment(period="2024-03")),
        validated("treatment_facility", "t2", 41, treatment(period="2024-09", capacity=45,
                                                            in_treatment={"heroin": 22})),
        validated("treatment_facility", "t3", 42, treatment(facility_id="HRT-02", period="2024", capacity=12,
                                                            in_treatment={"opium": 8})),
        validated("training", "r1", 50, training(PERSON_A, host_country="AFG")),
        validated("training", "r2", 51, training(PERSON_A, course_id="CCP-2024-09", host_country="AFG")),
        validated("training", "r3", 52, training(PERSON_B, participant={"agency": "Police"})),
        validated("training", "r4", 53, training("c" * 64, participant={"country": "IRN"})),
    ]
    return found


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    repository = InMemoryRepository()
    await apply_batch(repository, events())
    keys = InMemoryKeyStore()
    app = create_app(AggregateSettings(), repository=repository, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate",
                                 headers=bearer(add_key(keys, "analyst"))) as c:
        yield c


async def all_pages(client: httpx.AsyncClient, path: str, key: str, **params: Any) -> list[Any]:
    found, cursor = [], None
    for _ in range(100):
        response = await client.get(path, params={**params, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body[key]) <= params.get("limit", 100)
        found += body[key]
        cursor = body["next"]
        if cursor is None:
            return found
    raise AssertionError("paging did not end")


@pytest.mark.parametrize(("path", "key", "params"), [
    ("/v1/views/seizures", "items", {}), ("/v1/views/routes", "items", {}), ("/v1/views/prices", "items", {}),
    ("/v1/views/financial", "items", {}), ("/v1/views/map", "features", {}), ("/v1/views/trainings", "items", {}),
    ("/v1/views/seizures", "items", {"drug": "heroin"}), ("/v1/views/routes", "items", {"from": "2024-01"}),
])
@pytest.mark.parametrize("limit", [1, 2, 3])
async def test_pages_never_skip_or_repeat_a_row(client: httpx.AsyncClient, path: str, key: str,
                                                params: dict[str, Any], limit: int) -> None:
    everything = (await client.get(path, params={**params, "limit": 1000})).json()[key]
    assert len(everything) >= 3
    assert await all_pages(client, path, key, limit=limit, **params) == everything


async def test_seizures_view_keeps_its_contract_shape(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/views/seizures", params={"country": "AFG", "drug": "heroin"})).json()
    assert body == {"items": [{"country": "AFG", "year": 2024, "drug": "heroin", "cases": 2, "quantity": 3.0,
                               "unit": "kg", "persons_arrested": 4, "submissions": 2}], "next": None}


async def test_routes_view_filters_by_route_drug_and_month_range(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/views/routes", params={"route": "balkan", "drug": "heroin", "from": "2024-01",
                                                         "to": "2024-02"})).json()
    assert body == {"items": [{"route": "balkan", "month": "2024-01", "drug": "heroin", "unit": "kg", "cases": 3,
                               "quantity": 4.5, "submissions": 3}], "next": None}
    months = [i["month"] for i in (await client.get("/v1/views/routes", params={"to": "2023-12"})).json()["items"]]
    assert months == ["2023-11"]


async def test_a_month_range_that_ends_before_it_starts_selects_nothing(client: httpx.AsyncClient) -> None:
    around = (await client.get("/v1/views/routes", params={"from": "2024-01", "to": "2024-02"})).json()["items"]
    inverted = await client.get("/v1/views/routes", params={"from": "2024-02", "to": "2024-01"})
    assert around and (inverted.status_code, inverted.json()["items"]) == (200, [])


async def test_prices_view_gives_min_max_mean_per_gram(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/views/prices", params={"country": "AFG", "drug": "heroin"})).json()
    assert body["items"] == [
        {"country": "AFG", "year": 2024, "drug": "heroin", "market": "retail", "currency": "USD",
         "observations": 2, "min": 2.0, "max": 4.5, "mean": 3.5, "per": "g"},
        {"country": "AFG", "year": 2024, "drug": "heroin", "market": "wholesale", "currency": "USD",
         "observations": 1, "min": 2.5, "max": 2.5, "mean": 2.5, "per": "g"}]
    wholesale = (await client.get("/v1/views/prices", params={"market": "wholesale"})).json()["items"]
    assert [i["market"] for i in wholesale] == ["wholesale"]


async def test_financial_view_sums_cases_amounts_and_people_charged(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/views/financial", params={"country": "AFG"})).json()
    assert body["items"] == [
        {"country": "AFG", "year": 2024, "case_type": "cash_smuggling", "currency": "USD", "cases": 1,
         "amount": 12000.0, "persons_charged": 3},
        {"country": "AFG", "year": 2024, "case_type": "money_laundering_investigation", "currency": "USD",
         "cases": 1, "amount": 250000.5, "persons_charged": 3}]


@pytest.mark.parametrize("path", ["/v1/views/seizures", "/v1/views/routes", "/v1/views/prices",
                                  "/v1/views/financial"])
async def test_csv_pages_parse_and_match_the_json_rows(client: httpx.AsyncClient, path: str) -> None:
    expected = (await client.get(path, params={"limit": 1000})).json()["items"]
    rows: list[dict[str, str]] = []
    response = await client.get(path, params={"format": "csv", "limit": 2})
    for _ in range(100):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        reader = csv.DictReader(io.StringIO(response.text))
        assert reader.fieldnames == list(expected[0])
        rows += list(reader)
        if "x-next-cursor" not in response.headers:
            assert "link" not in response.headers
            break
        link = re.fullmatch(r'<(.+)>; rel="next"', response.headers["link"])
        assert link is not None and f"cursor={response.headers['x-next-cursor']}" in link[1]
        response = await client.get(link[1])
    assert rows == [{k: str(v) for k, v in item.items()} for item in expected]


async def test_map_is_a_geojson_feature_collection_filtered_by_drug_and_dates(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/views/map", params={"drug": "heroin", "from": "2024-01-02",
                                                      "to": "2024-01-31"})).json()
    assert body["type"] == "FeatureCollection" and body["next"] is None
    assert [f["properties"]["id"] for f in body["features"]] == ["s0", "s5", "s6"]
    first = body["features"][0]
    assert first == {"type": "Feature", "geometry": {"type": "Point", "coordinates": [60.0, 30.0]},
                     "properties": {"id": "s0", "drug": "heroin", "seized_on": "2024-01-15", "country": "AFG",
                                    "place": "Islam Qala", "quantity": 1.5, "unit": "kg", "route": "balkan"}}
    everything = (await client.get("/v1/views/map")).json()["features"]
    assert "s4" not in {f["properties"]["id"] for f in everything}  # seized without coordinates


async def test_map_is_filtered_by_route(client: httpx.AsyncClient) -> None:
    southern = (await client.get("/v1/views/map", params={"route": "southern"})).json()["features"]
    assert [(f["properties"]["id"], f["properties"]["route"]) for f in southern] == [("s2", "southern")]


async def test_trainings_view_counts_distinct_people_and_lists_repeats(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/views/trainings", params={"country": "AFG", "year": 2024})).json()
    assert body == {
        "items": [
            {"country": "AFG", "year": 2024, "agency": "Customs", "programme": "Container Control Programme",
             "people": 1, "participations": 2},
            {"country": "AFG", "year": 2024, "agency": "Police", "programme": "Container Control Programme",
             "people": 1, "participations": 1}],
        "repeats": [{"country": "AFG", "pseudonym": PERSON_A, "title_key": "container profiling",
                     "participations": 2}],
        "next": None}
    other = (await client.get("/v1/views/trainings", params={"country": "IRN"})).json()
    assert [i["people"] for i in other["items"]] == [1] and other["repeats"] == []


async def test_fact_sheet_puts_one_country_year_side_by_side(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/views/fact-sheet", params={"country": "AFG", "year": 2024})
    assert response.status_code == 200
    sheet = response.json()
    assert (sheet["country"], sheet["year"]) == ("AFG", 2024)
    assert [(s["drug"], s["cases"], s["quantity"]) for s in sheet["seizures"]] == [("heroin", 2, 3.0),
                                                                                 ("opium", 1, 1.5)]
    assert [(p["market"], p["observations"], p["mean"]) for p in sheet["prices"]] == [("retail", 2, 3.5),
                                                                                     ("wholesale", 1, 2.5)]
    assert [(f["case_type"], f["amount"]) for f in sheet["financial"]] == [
        ("cash_smuggling", 12000.0), ("money_laundering_investigation", 250000.5)]
    treatment = sheet["treatment"]
    assert (treatment["facilities"], treatment["capacity"], treatment["in_treatment"]) == (2, 57, 30)
    assert treatment["in_treatment_by_drug"] == {"heroin": 22, "opium": 8}
    assert [(f["facility_id"], f["period"]) for f in treatment["by_facility"]] == [("HRT-02", "2024"),
                                                                                 ("KBL-01", "2024-09")]
    assert sheet["trainings"] == {"courses_held": 2, "course_participations": 2, "people_trained": 2,
                                  "people_trained_twice_on_a_title": 1}


async def test_no_data_is_200_with_no_items(client: httpx.AsyncClient) -> None:
    cases: list[tuple[str, dict[str, Any]]] = [
        ("/v1/views/seizures", {"country": "NPL"}), ("/v1/views/routes", {"from": "2030-01"}),
        ("/v1/views/prices", {"year": 1999}), ("/v1/views/financial", {"country": "NPL"}),
        ("/v1/views/trainings", {"year": 2001})]
    for path, params in cases:
        response = await client.get(path, params=params)
        assert response.status_code == 200 and response.json()["items"] == [] and response.json()["next"] is None
    assert (await client.get("/v1/views/map", params={"drug": "captagon"})).json() == {
        "type": "FeatureCollection", "features": [], "next": None}
    sheet = (await client.get("/v1/views/fact-sheet", params={"country": "NPL", "year": 2024})).json()
    assert sheet["seizures"] == [] and sheet["treatment"]["facilities"] == 0


@pytest.mark.parametrize(("path", "params", "named"), [
    ("/v1/views/seizures", {"country": "afg"}, "country"),
    ("/v1/views/seizures", {"year": "1800"}, "year"),
    ("/v1/views/seizures", {"limit": "0"}, "limit"),
    ("/v1/views/seizures", {"cursor": "!!"}, "cursor"),
    ("/v1/views/seizures", {"format": "xlsx"}, "format"),
    ("/v1/views/routes", {"route": "silk"}, "route"),
    ("/v1/views/routes", {"from": "2024-13"}, "from"),
    ("/v1/views/prices", {"market": "street"}, "market"),
    ("/v1/views/financial", {"case_type": "fraud"}, "case_type"),
    ("/v1/views/map", {"from": "2024-02-30"}, "from"),
    ("/v1/views/map", {"to": "2024/01/01"}, "to"),
    ("/v1/views/trainings", {"cursor": "bm90IGEga2V5="}, "cursor"),
    ("/v1/views/map", {"cursor": "a"}, "cursor"),
    ("/v1/views/fact-sheet", {"country": "AFG"}, "year"),
    ("/v1/views/fact-sheet", {"year": 2024}, "country"),
])
async def test_bad_filters_are_422_naming_the_parameter(client: httpx.AsyncClient, path: str,
                                                        params: dict[str, Any], named: str) -> None:
    response = await client.get(path, params=params)
    assert response.status_code == 422
    assert ["query", named] in [e["loc"] for e in response.json()["detail"]]


@pytest.fixture
async def exporting() -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryAuditLog, InMemoryRepository]]:
    repository = InMemoryRepository(generation=3)
    batch = events()
    await apply_batch(repository, batch)
    await repository.save_progress([
        {"_id": "validated#0", "kind": "validated", "topic": "dmp.submissions.validated.v1", "partition": 0,
         "next_offset": max(e.offset for e in batch) + 5, "at": "2024-06-01T00:00:00+00:00"},
        {"_id": "received#0", "kind": "received", "topic": "dmp.submissions.received.v1", "partition": 0,
         "next_offset": 99, "at": "2024-06-01T00:00:00+00:00"}])
    keys, audit = InMemoryKeyStore(), InMemoryAuditLog()
    app = create_app(AggregateSettings(), repository=repository, keys=keys, audit=audit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate",
                                 headers=bearer(add_key(keys, "analyst"))) as c:
        yield c, audit, repository


async def test_arq_export_gives_the_national_seizure_and_price_tables_and_the_offsets_behind_them(
        exporting: tuple[httpx.AsyncClient, InMemoryAuditLog, InMemoryRepository]) -> None:
    client, _, repository = exporting
    response = await client.get("/v1/exports/arq", params={"country": "AFG", "year": 2024})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["country"], body["reporting_year"]) == ("AFG", 2024)
    assert body["questionnaire"].startswith("UNODC Annual Report Questionnaire")
    assert body["seizures"] == [
        {"drug": "heroin", "quantity": 3.0, "unit": "kg", "cases": 2, "persons_arrested": 4, "submissions": 2},
        {"drug": "opium", "quantity": 1.5, "unit": "kg", "cases": 1, "persons_arrested": 2, "submissions": 1}]
    assert body["prices"] == [
        {"drug": "heroin", "market": "retail", "currency": "USD", "observations": 2, "minimum": 2.0,
         "maximum": 4.5, "typical": 3.5, "per": "g"},
        {"drug": "heroin", "market": "wholesale", "currency": "USD", "observations": 1, "minimum": 2.5,
         "maximum": 2.5, "typical": 2.5, "per": "g"}]
    behind = [d for (view, _), d in repository.views.items() if view in ("seizures", "prices")
              and d["country"] == "AFG" and d["year"] == 2024]
    progress = {p["_id"]: p["next_offset"] for p in await repository.load_progress()}
    assert body["source"] == {"topic": "dmp.submissions.validated.v1", "generation": 3, "partitions": [
        {"partition": 0, "last_offset": max(d["wm"]["0"] for d in behind),
         "processed_through": progress["validated#0"] - 1}]}
    assert body["generated_at"].endswith("+00:00")


async def test_arq_export_as_csv_is_one_table_with_a_section_column(
        exporting: tuple[httpx.AsyncClient, InMemoryAuditLog, InMemoryRepository]) -> None:
    client, audit, _ = exporting
    expected = (await client.get("/v1/exports/arq", params={"country": "AFG", "year": 2024})).json()
    response = await client.get("/v1/exports/arq", params={"country": "AFG", "year": 2024, "format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="arq-AFG-2024.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["section"] for r in rows] == ["seizures", "seizures", "prices", "prices", "source"]
    assert all((r["country"], r["reporting_year"]) == ("AFG", "2024") for r in rows)
    assert [(r["drug"], float(r["quantity"]), r["unit"], int(r["cases"])) for r in rows[:2]] == [
        (s["drug"], s["quantity"], s["unit"], s["cases"]) for s in expected["seizures"]]
    assert [(r["market"], float(r["minimum"]), float(r["typical"]), r["quantity"]) for r in rows[2:4]] == [
        (p["market"], p["minimum"], p["typical"], "") for p in expected["prices"]]
    [source] = rows[4:]
    partition = expected["source"]["partitions"][0]
    assert (int(source["partition"]), int(source["last_offset"]), int(source["processed_through"]),
            source["generation"], source["topic"]) == (partition["partition"], partition["last_offset"],
                                                       partition["processed_through"], "3",
                                                       "dmp.submissions.validated.v1")
    exports = [e for e in audit.entries.values() if e["action"] == "exported"]
    assert [e["target"] for e in exports] == ["/v1/exports/arq", "/v1/exports/arq"]  # JSON and CSV both audited


async def test_arq_export_of_a_year_without_data_is_empty_tables(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/exports/arq", params={"country": "NPL", "year": 2024})).json()
    assert (body["seizures"], body["prices"], body["source"]["partitions"]) == ([], [], [])
    response = await client.get("/v1/exports/arq", params={"country": "NPL", "year": 2024, "format": "csv"})
    assert [r["section"] for r in csv.DictReader(io.StringIO(response.text))] == ["source"]


@pytest.mark.parametrize(("params", "named"), [({"year": 2024}, "country"), ({"country": "AFG"}, "year"),
                                               ({"country": "afg", "year": 2024}, "country"),
                                               ({"country": "AFG", "year": 1800}, "year"),
                                               ({"country": "AFG", "year": 2024, "format": "xml"}, "format")])
async def test_arq_export_answers_422_naming_the_parameter(client: httpx.AsyncClient, params: dict[str, Any],
                                                           named: str) -> None:
    response = await client.get("/v1/exports/arq", params=params)
    assert response.status_code == 422
    assert ["query", named] in [e["loc"] for e in response.json()["detail"]]


async def test_arq_export_is_for_analysts_only() -> None:
    keys = InMemoryKeyStore()
    app = create_app(AggregateSettings(), repository=InMemoryRepository(), keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate") as c:
        assert (await c.get("/v1/exports/arq?country=AFG&year=2024")).status_code == 401
        officer = bearer(add_key(keys, "officer"))
        assert (await c.get("/v1/exports/arq?country=AFG&year=2024", headers=officer)).status_code == 403


async def test_a_status_is_answered_byte_for_byte_as_fastapi_renders_its_declared_model() -> None:
    """The status route encodes its answer itself (it skips FastAPI's second pass over the model): the bytes
    must be what FastAPI renders for `SubmissionStatus`, non-ASCII text and every history shape included."""
    from fastapi.encoders import jsonable_encoder
    from fastapi.responses import JSONResponse

    from services.aggregate.api import status_of

    repository = InMemoryRepository()
    await apply_batch(repository, events())
    record = dict(repository.submissions["s0"])
    rejected = {**record, "_id": "s-rejected", "status": "rejected", "errors": [
        {"loc": ["data", "place"], "msg": "« Çarşı » is not a known place", "type": "unknown_place"}]}
    await repository.save_submissions([rejected], {"s-rejected"})
    keys = InMemoryKeyStore()
    app = create_app(AggregateSettings(), repository=repository, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate",
                                 headers=bearer(add_key(keys, "analyst"))) as client:
        for submission_id, stored in repository.submissions.items():
            response = await client.get(f"/v1/submissions/{submission_id}")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.content == JSONResponse(jsonable_encoder(status_of(stored))).body
