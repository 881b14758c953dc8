"""MongoRepository (on the real store) and InMemoryRepository honour one contract."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.aggregate.app import create_app
from services.aggregate.repository import InMemoryRepository, MongoRepository, Repository
from services.aggregate.settings import AggregateSettings
from services.aggregate.worker import apply_batch
from shared.auth import InMemoryKeyStore
from shared.store import connect
from tests.conftest import Infra
from tests.keys import add_key, bearer
from tests.unit.test_views_api import events
from tests.unit.test_views_projection import financial, validated


@pytest.fixture(params=["mongo", "memory"])
async def repository(request: pytest.FixtureRequest, infra: Infra) -> AsyncIterator[Repository]:
    if request.param == "memory":
        yield InMemoryRepository()
        return
    client = connect(infra.mongodb_url, "tests")
    database = f"contract_{uuid.uuid4().hex[:10]}"
    repo = MongoRepository(client, database)
    await repo.ensure_indexes()
    try:
        yield repo
    finally:
        await client.drop_database(database)
        await client.close()


def view_doc(country: str, year: int, submissions: int = 1) -> dict[str, Any]:
    return {"_id": f"{country}:{year}:heroin:kg", "country": country, "year": year, "drug": "heroin", "unit": "kg",
            "cases": 1, "quantity_micro": 10, "persons_arrested": 0, "submissions": submissions, "wm": {"0": 4}}


async def test_saved_documents_load_back_by_id(repository: Repository) -> None:
    record = {"_id": "s1", "type": "seizure", "status": "validated", "history": [{"seq": 1}], "valid": None}
    await repository.save_submissions([record])
    await repository.save_views({("seizures", "AFG:2020:heroin:kg"): view_doc("AFG", 2020)})

    assert await repository.load_submissions(["s1", "missing"]) == {"s1": record}
    assert await repository.get_submission("s1") == record
    assert await repository.get_submission("missing") is None
    views = await repository.load_views([("seizures", "AFG:2020:heroin:kg"), ("seizures", "nope")])
    assert views == {("seizures", "AFG:2020:heroin:kg"): view_doc("AFG", 2020)}


async def test_saving_again_replaces_the_document(repository: Repository) -> None:
    await repository.save_submissions([{"_id": "s1", "status": "received"}])
    await repository.save_submissions([{"_id": "s1", "status": "validated"}])
    assert (await repository.load_submissions(["s1"]))["s1"]["status"] == "validated"


async def test_query_filters_orders_by_id_skips_empty_buckets_and_pages(repository: Repository) -> None:
    docs = [view_doc(c, y) for c in ("AFG", "IRN", "PAK") for y in (2020, 2021)] + [view_doc("TUR", 2020, 0)]
    await repository.save_views({("seizures", d["_id"]): d for d in docs})

    everything = await repository.query_view("seizures", {}, None, 100)
    assert [d["_id"] for d in everything] == sorted(d["_id"] for d in docs if d["submissions"])
    assert [d["_id"] for d in await repository.query_view("seizures", {"year": 2021}, None, 100)] == [
        "AFG:2021:heroin:kg", "IRN:2021:heroin:kg", "PAK:2021:heroin:kg"]
    first = await repository.query_view("seizures", {}, None, 4)
    rest = await repository.query_view("seizures", {}, first[-1]["_id"], 4)
    assert [d["_id"] for d in first + rest] == [d["_id"] for d in everything]


def route_doc(month: str, drug: str = "heroin", submissions: int = 1) -> dict[str, Any]:
    return {"_id": f"balkan:{month}:{drug}:kg", "route": "balkan", "month": month, "drug": drug, "unit": "kg",
            "cases": submissions, "quantity_micro": 10, "submissions": submissions, "wm": {"0": 4}}


async def test_query_filters_by_ranges_alone_with_equality_and_while_paging(repository: Repository) -> None:
    docs = [route_doc(m) for m in ("2023-12", "2024-01", "2024-02", "2024-03")] + [
        route_doc("2024-02", "opium", submissions=3), route_doc("2024-01", "opium", submissions=0)]
    await repository.save_views({("routes", d["_id"]): d for d in docs})

    async def ids(filters: dict[str, Any], after: str | None = None, limit: int = 100) -> list[str]:
        return [d["_id"] for d in await repository.query_view("routes", filters, after, limit)]

    assert await ids({"month": {"$gte": "2024-01", "$lte": "2024-02"}}) == [
        "balkan:2024-01:heroin:kg", "balkan:2024-02:heroin:kg", "balkan:2024-02:opium:kg"]
    assert await ids({"month": {"$gt": "2024-01", "$lt": "2024-03"}, "drug": "heroin"}) == [
        "balkan:2024-02:heroin:kg"]
    assert await ids({"month": {"$lte": "2023-12"}}) == ["balkan:2023-12:heroin:kg"]
    assert await ids({"month": {"$gte": "2025-01"}}) == []
    assert await ids({"submissions": {"$gt": 1}}) == ["balkan:2024-02:opium:kg"]
    first = await ids({"month": {"$gte": "2024-01"}}, limit=2)
    rest = await ids({"month": {"$gte": "2024-01"}}, after=first[-1], limit=2)
    assert first + rest == await ids({"month": {"$gte": "2024-01"}})


async def test_query_ranges_compare_numbers_as_numbers(repository: Repository) -> None:
    docs = [view_doc("AFG", y) for y in (2009, 2010, 2019, 2020)]
    await repository.save_views({("seizures", d["_id"]): d for d in docs})
    found = await repository.query_view("seizures", {"year": {"$gte": 2010, "$lte": 2019}}, None, 100)
    assert [d["year"] for d in found] == [2010, 2019]


@pytest.mark.parametrize("condition", [{"$ne": "2024-01"}, {"$where": "1"}, {}])
async def test_query_refuses_operators_other_than_ranges(repository: Repository, condition: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="month"):
        await repository.query_view("routes", {"month": condition}, None, 10)


VIEW_URLS = ["/v1/views/seizures", "/v1/views/routes?from=2024-01&to=2024-02", "/v1/views/prices",
             "/v1/views/financial?format=csv", "/v1/views/map?from=2024-01-02", "/v1/views/trainings?country=AFG",
             "/v1/views/fact-sheet?country=AFG&year=2024", "/v1/views/seizures?limit=2"]


async def read_views(repository: Repository) -> list[tuple[int, str]]:
    keys = InMemoryKeyStore()
    app = create_app(AggregateSettings(), repository=repository, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate",
                                 headers=bearer(add_key(keys, "analyst"))) as client:
        return [((r := await client.get(url)).status_code, r.text) for url in VIEW_URLS]


async def test_every_view_reads_the_same_from_the_store_as_from_memory(repository: Repository) -> None:
    batch = [*events(), validated("financial_case", "big", 90, financial(amount=9e12, currency="IRR")),
             validated("financial_case", "big2", 91, financial(amount=9e12, currency="IRR"))]
    memory = InMemoryRepository()
    await apply_batch(memory, batch)
    await apply_batch(repository, batch)
    expected = await read_views(memory)
    assert all(status == 200 for status, _ in expected)
    assert "18000000000000.0" in expected[3][1]  # the sum beyond 64 bits survived the store
    assert await read_views(repository) == expected
