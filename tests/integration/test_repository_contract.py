"""MongoRepository (on the real store) and InMemoryRepository honour one contract."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.aggregate.app import create_app
from services.aggregate.apply import apply_batch
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.mongo_repository import MongoRepository
from services.aggregate.repository import Repository
from services.aggregate.settings import AggregateSettings
from shared.audit import AuditLog, InMemoryAuditLog, MongoAuditLog
from shared.audit import entry as audit_entry
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


def view_doc(country: str, year: int, submissions: int = 1, partition: int = 0) -> dict[str, Any]:
    bucket = f"{country}:{year}:heroin:kg"
    return {"_id": f"{bucket}#p{partition}", "bucket": bucket, "partition": partition, "country": country,
            "year": year, "drug": "heroin", "unit": "kg", "cases": submissions, "quantity_micro": 10 * submissions,
            "persons_arrested": 0, "submissions": submissions, "wm": {str(partition): 4 + partition}}


async def test_saved_documents_load_back_by_id(repository: Repository) -> None:
    record = {"_id": "s1", "type": "seizure", "status": "validated", "history": [{"seq": 1}], "valid": None}
    await repository.save_submissions([record])
    await repository.save_views({("seizures", "AFG:2020:heroin:kg#p0"): view_doc("AFG", 2020)})

    assert await repository.load_submissions(["s1", "missing"]) == {"s1": record}
    assert await repository.get_submission("s1") == record
    assert await repository.get_submission("missing") is None
    views = await repository.load_views([("seizures", "AFG:2020:heroin:kg#p0"), ("seizures", "nope")])
    assert views == {("seizures", "AFG:2020:heroin:kg#p0"): view_doc("AFG", 2020)}


async def test_saving_again_replaces_the_document(repository: Repository) -> None:
    await repository.save_submissions([{"_id": "s1", "status": "received"}])
    await repository.save_submissions([{"_id": "s1", "status": "validated"}])
    assert (await repository.load_submissions(["s1"]))["s1"]["status"] == "validated"


async def test_a_record_is_stored_packed_and_one_stored_whole_still_reads(infra: Infra) -> None:
    client = connect(infra.mongodb_url, "tests")
    repo = MongoRepository(client, f"contract_{uuid.uuid4().hex[:10]}")
    try:
        record = {"_id": "r1", "type": "seizure", "status": "validated", "version": 1, "errors": [],
                  "history": [{"seq": 3, "status": "validated", "fields": {"unit": "0c1d"}}],
                  "valid": {"seq": 3, "data": {"place": "Хорог"}, "contributions": []}}
        await repo.save_submissions([record], {"r1"})
        stored = await repo.submissions.find_one({"_id": "r1"})
        assert stored is not None and "history" not in stored and "valid" not in stored and "packed" in stored
        assert await repo.get_submission("r1") == record
        await repo.submissions.insert_one({**record, "_id": "r0"})  # as stored before packing
        assert (await repo.load_submissions(["r0", "r1"]))["r0"] == {**record, "_id": "r0"}
        assert [d["_id"] for d in await repo.scan_submissions(None, 5)] == ["r0", "r1"]
    finally:
        await client.drop_database(repo.db.name)
        await client.close()


async def test_submission_records_are_scanned_in_id_order(repository: Repository) -> None:
    await repository.save_submissions([{"_id": i, "status": "received"} for i in ("c", "a", "d", "b")])
    first = await repository.scan_submissions(None, 3)
    rest = await repository.scan_submissions(first[-1]["_id"], 3)
    assert [d["_id"] for d in first + rest] == ["a", "b", "c", "d"]


async def test_listing_entries_are_written_once_and_found_by_key(repository: Repository) -> None:
    await repository.save_listing([{"_id": "0:1", "id": "s1"}, {"_id": "2:7", "id": "s2"}])
    await repository.save_listing([{"_id": "0:1", "id": "changed"}, {"_id": "0:2", "id": "s3"}])
    found = await repository.load_listing(["0:1", "0:2", "2:7", "1:1"])
    assert sorted((e["_id"], e["id"]) for e in found) == [("0:1", "s1"), ("0:2", "s3"), ("2:7", "s2")]


async def test_value_windows_gather_offsets_per_partition(repository: Repository) -> None:
    await repository.save_listing([], None, {"#country:TJK:0": {0: [3, 1], 2: [2]}, "#type:price:0": {1: [5]}})
    await repository.save_listing([], None, {"#country:TJK:0": {0: [4], 1: [7]}})
    found = {d["_id"]: {k: sorted(set(v)) for k, v in d.items() if k != "_id"}
             for d in await repository.load_listing(["#country:TJK:0", "#type:price:0"])}
    assert found == {"#country:TJK:0": {"o0": [1, 3, 4], "o1": [7], "o2": [2]}, "#type:price:0": {"o1": [5]}}


async def test_submitter_windows_gather_offsets_as_a_set_and_listed_from_keeps_the_least(
        repository: Repository) -> None:
    await repository.save_listing([], {"@k1:0:0": [3, 1], "@k2:0:0": [2]})
    await repository.save_listing([{"_id": "0:4", "id": "s4"}], {"@k1:0:0": [1, 4]})  # a replay, and one more
    found = {e["_id"]: sorted(e.get("offsets", [])) for e in await repository.load_listing(["@k1:0:0", "@k2:0:0"])}
    assert found == {"@k1:0:0": [1, 3, 4], "@k2:0:0": [2]}

    def received(next_offset: int, listed_from: int) -> dict[str, Any]:
        return {"_id": "received#0", "kind": "received", "partition": 0, "next_offset": next_offset,
                "listed_from": listed_from, "windowed_from": listed_from + 1}
    await repository.save_progress([received(10, 5)])
    await repository.save_progress([received(20, 10)])
    await repository.save_progress([received(8, 2)])  # a rebuild's replay from further back
    stored = [(d["next_offset"], d["listed_from"], d["windowed_from"]) for d in await repository.load_progress()]
    assert stored == [(20, 2, 3)]


async def save(repository: Repository, view: str, docs: list[dict[str, Any]]) -> None:
    await repository.save_views({(view, d["_id"]): d for d in docs})


async def test_query_filters_orders_by_bucket_skips_empty_buckets_and_pages(repository: Repository) -> None:
    docs = [view_doc(c, y) for c in ("AFG", "IRN", "PAK") for y in (2020, 2021)] + [view_doc("TUR", 2020, 0)]
    await save(repository, "seizures", docs)

    everything = await repository.query_view("seizures", {}, None, 100)
    assert [d["_id"] for d in everything] == sorted(d["bucket"] for d in docs if d["submissions"])
    assert [d["_id"] for d in await repository.query_view("seizures", {"year": 2021}, None, 100)] == [
        "AFG:2021:heroin:kg", "IRN:2021:heroin:kg", "PAK:2021:heroin:kg"]
    first = await repository.query_view("seizures", {}, None, 4)
    rest = await repository.query_view("seizures", {}, first[-1]["_id"], 4)
    assert [d["_id"] for d in first + rest] == [d["_id"] for d in everything]


async def test_a_bucket_reads_as_the_sum_of_its_shards(repository: Repository) -> None:
    await save(repository, "seizures", [
        view_doc("AFG", 2020, 2, partition=0), view_doc("AFG", 2020, 3, partition=4),
        view_doc("IRN", 2020, 0, partition=1), view_doc("IRN", 2020, 1, partition=2),  # one shard emptied
        view_doc("PAK", 2020, 1, partition=0), view_doc("PAK", 2020, -1, partition=5),  # nets out: hidden
    ])
    found = await repository.query_view("seizures", {"year": 2020}, None, 100)
    assert [(d["_id"], d["cases"], d["quantity_micro"], d["submissions"], d["wm"]) for d in found] == [
        ("AFG:2020:heroin:kg", 5, 50, 5, {"0": 4, "4": 8}), ("IRN:2020:heroin:kg", 1, 10, 1, {"1": 5, "2": 6})]
    assert all("partition" not in d and "bucket" not in d for d in found)
    assert [d["_id"] for d in await repository.query_view("seizures", {"submissions": {"$gt": 4}}, None, 10)] == [
        "AFG:2020:heroin:kg"]


@pytest.mark.parametrize("per_read", [1, 2, 3, 200])
async def test_pages_never_split_a_bucket_however_shards_fall_into_reads(
        repository: Repository, monkeypatch: pytest.MonkeyPatch, per_read: int) -> None:
    import services.aggregate.mongo_repository as module

    monkeypatch.setattr(module, "SHARDS_PER_READ", per_read)
    docs = [view_doc(country, 2020, 1, partition=p) for country, shards in
            (("AFG", 3), ("ARM", 1), ("IRN", 2), ("PAK", 4), ("TUR", 1)) for p in range(shards)]
    await save(repository, "seizures", [*docs, view_doc("AZE", 2020, 0, partition=1)])
    for limit in (1, 2, 3, 10):
        pages, after = [], None
        while True:
            page = await repository.query_view("seizures", {}, after, limit)
            pages += [(d["_id"], d["submissions"]) for d in page]
            if len(page) < limit:
                break
            after = page[-1]["_id"]
        assert pages == [("AFG:2020:heroin:kg", 3), ("ARM:2020:heroin:kg", 1), ("IRN:2020:heroin:kg", 2),
                         ("PAK:2020:heroin:kg", 4), ("TUR:2020:heroin:kg", 1)], limit


async def test_progress_is_kept_per_partition_and_never_goes_back(repository: Repository) -> None:
    def progress(kind: str, partition: int, next_offset: int) -> dict[str, Any]:
        return {"_id": f"{kind}#{partition}", "kind": kind, "topic": f"t.{kind}", "partition": partition,
                "next_offset": next_offset, "at": f"2024-01-01T00:00:{next_offset:02d}"}

    await repository.save_progress([progress("validated", 0, 10), progress("received", 0, 12)])
    await repository.save_progress([progress("validated", 0, 7), progress("validated", 1, 3)])  # a replay
    found = {d["_id"]: (d["partition"], d["next_offset"]) for d in await repository.load_progress()}
    assert found == {"validated#0": (0, 10), "received#0": (0, 12), "validated#1": (1, 3)}


def route_doc(month: str, drug: str = "heroin", submissions: int = 1) -> dict[str, Any]:
    bucket = f"balkan:{month}:{drug}:kg"
    return {"_id": f"{bucket}#p0", "bucket": bucket, "partition": 0, "route": "balkan", "month": month,
            "drug": drug, "unit": "kg", "cases": submissions, "quantity_micro": 10, "submissions": submissions,
            "wm": {"0": 4}}


async def test_query_filters_by_ranges_alone_with_equality_and_while_paging(repository: Repository) -> None:
    docs = [route_doc(m) for m in ("2023-12", "2024-01", "2024-02", "2024-03")] + [
        route_doc("2024-02", "opium", submissions=3), route_doc("2024-01", "opium", submissions=0)]
    await save(repository, "routes", docs)

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
    await save(repository, "seizures", docs)
    found = await repository.query_view("seizures", {"year": {"$gte": 2010, "$lte": 2019}}, None, 100)
    assert [d["year"] for d in found] == [2010, 2019]


@pytest.mark.parametrize("condition", [{"$ne": "2024-01"}, {"$where": "1"}, {}])
async def test_query_refuses_operators_other_than_ranges(repository: Repository, condition: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="month"):
        await repository.query_view("routes", {"month": condition}, None, 10)


VIEW_URLS = ["/v1/views/seizures", "/v1/views/routes?from=2024-01&to=2024-02", "/v1/views/prices",
             "/v1/views/financial?format=csv", "/v1/views/map?from=2024-01-02", "/v1/views/trainings?country=AFG",
             "/v1/views/fact-sheet?country=AFG&year=2024", "/v1/views/seizures?limit=2",
             "/v1/exports/arq?country=AFG&year=2024"]


async def read_views(repository: Repository) -> list[tuple[int, str]]:
    keys = InMemoryKeyStore()
    app = create_app(AggregateSettings(), repository=repository, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate",
                                 headers=bearer(add_key(keys, "analyst"))) as client:
        return [((r := await client.get(url)).status_code, _without_time(r.text)) for url in VIEW_URLS]


def _without_time(text: str) -> str:
    return re.sub(r'"generated_at":"[^"]*"', "", text)


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


async def test_a_large_batch_of_replacements_is_written(repository: Repository) -> None:
    """FerretDB stops answering one bulk command that replaces ~100 existing documents; writes are chunked."""
    import asyncio

    records = [{"_id": f"s{i}", "status": "received"} for i in range(300)]
    async with asyncio.timeout(60):
        await repository.save_submissions(records)
        await repository.save_submissions([{**r, "status": "validated"} for r in records])
    loaded = await repository.load_submissions([r["_id"] for r in records])
    assert {r["status"] for r in loaded.values()} == {"validated"} and len(loaded) == 300


async def test_documents_said_to_be_new_are_inserted_and_replace_any_stored_meanwhile(repository: Repository) -> None:
    """`new` is a hint (insert rather than upsert); a document stored after all, e.g. by a write that landed
    before its batch failed, is replaced all the same."""
    await repository.save_submissions([{"_id": "n1", "status": "received"}])
    records = [{"_id": f"n{i}", "status": "validated"} for i in range(1, 80)]
    await repository.save_submissions(records, new={r["_id"] for r in records})
    loaded = await repository.load_submissions([r["_id"] for r in records])
    assert len(loaded) == 79 and {r["status"] for r in loaded.values()} == {"validated"}
    key = ("seizures", "AFG:2020:heroin:kg#p0")
    await repository.save_views({key: view_doc("AFG", 2020)})
    await repository.save_views({key: {**view_doc("AFG", 2020), "cases": 7}}, new={key})
    assert (await repository.load_views([key]))[key]["cases"] == 7


@pytest.mark.parametrize("kind", ["mongo", "memory"])
async def test_audit_entries_are_inserted_once_and_a_redelivered_one_keeps_the_first(kind: str, infra: Infra) -> None:
    client = connect(infra.mongodb_url, "tests")
    database = f"audit_{uuid.uuid4().hex[:10]}"
    log: AuditLog = MongoAuditLog(client, database) if kind == "mongo" else InMemoryAuditLog()
    try:
        first = [audit_entry(f"s{i}:1", "2026-01-01T00:00:00+00:00", "k1", "submitted", f"s{i}") for i in range(70)]
        await log.record(first[:10])
        await log.record([{**e, "actor": "replayed"} for e in first])  # a batch redelivered, and more
        stored = await log.query({}, None, 1000)
        assert len(stored) == 70 and {e["actor"] for e in stored} == {"k1", "replayed"}
        assert [e["actor"] for e in stored if e["target"] in {f"s{i}" for i in range(10)}] == ["k1"] * 10
    finally:
        await client.drop_database(database)
        await client.close()
