"""MongoRepository (on the real store) and InMemoryRepository honour one contract."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from services.aggregate.repository import InMemoryRepository, MongoRepository, Repository
from shared.store import connect
from tests.conftest import Infra


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


def view_doc(country: str, year: int, submissions: int = 1) -> dict:
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
