"""Reading and replacing documents by `_id` in bulk, and indexes, on the real store."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import ObjectId
from pymongo import ReplaceOne, UpdateOne
from pymongo.errors import DuplicateKeyError

from shared.store import ID_CHUNK, connect, find_by_id, store_documents
from tests.conftest import Infra


@pytest.fixture
async def collection(infra: Infra) -> AsyncIterator[Any]:
    client = connect(infra.mongodb_url, "tests")
    database = f"lookup_{uuid.uuid4().hex[:10]}"
    try:
        yield client[database]["docs"]
    finally:
        await client.drop_database(database)
        await client.close()


async def test_find_by_id_returns_exactly_the_stored_documents_among_the_ids(collection: Any) -> None:
    stored = [{"_id": f"s-{i:05d}", "n": i} for i in range(0, 3 * ID_CHUNK, 2)]
    await collection.insert_many(stored)
    asked = [f"s-{i:05d}" for i in range(3 * ID_CHUNK)]  # every other one is missing; three chunks' worth

    found = await find_by_id(collection, asked)

    assert sorted(found, key=lambda d: d["_id"]) == stored
    assert await find_by_id(collection, []) == []


async def test_a_lookup_of_many_ids_is_served_by_the_id_index(infra: Infra, collection: Any) -> None:
    await collection.insert_many([{"_id": f"s-{i}"} for i in range(50)])
    filter_ = {"_id": {"$in": [f"s-{i}" for i in range(0, 50, 7)]}}

    plan = await collection.database.command("explain", {"find": collection.name, "filter": filter_})

    if infra.engine == "ferretdb":  # FerretDB answers with SQLite's plan
        assert plan["filterPushdown"] is True
        assert any("USING INDEX" in step for step in plan["queryPlanner"]["Plan"]), plan
    else:
        assert "COLLSCAN" not in str(plan["queryPlanner"]["winningPlan"]), plan


async def test_one_update_command_replaces_hundreds_of_documents(infra: Infra, collection: Any) -> None:
    """The store takes more replacements in one command than shared.store.BULK_CHUNK sends (on FerretDB, a
    build without the cursor fix in infra/store.py stops answering here: the client times out; the build
    applies them in UPDATEs of 500 at most, so this takes two)."""
    await collection.insert_many([{"_id": f"s-{i:04d}", "n": i} for i in range(700)])
    replacements = [ReplaceOne({"_id": f"s-{i:04d}"}, {"n": -i, "v": 2}, upsert=True) for i in range(700)]
    replacements.append(ReplaceOne({"_id": "s-new"}, {"n": 1, "v": 2}, upsert=True))

    result = await asyncio.wait_for(collection.bulk_write(replacements, ordered=False), timeout=30)

    assert (result.matched_count, result.modified_count, result.upserted_count) == (700, 700, 1)
    assert await collection.count_documents({"v": 2}) == 701
    assert await collection.find_one({"_id": "s-0123"}) == {"_id": "s-0123", "n": -123, "v": 2}
    assert await collection.find_one({"_id": "s-0650"}) == {"_id": "s-0650", "n": -650, "v": 2}


async def test_replacements_by_id_replace_whole_documents_of_any_shape(collection: Any) -> None:
    """A command of replacements only (the FerretDB build then reads just the stored `_id`s): each stored
    document becomes its replacement exactly, fields it lacks gone, nested ones whole; an ObjectID `_id` too;
    one replaced by `_id` alone keeps nothing else."""
    oid = ObjectId()
    await collection.insert_many([
        {"_id": "a", "keep": 1, "nested": {"x": [1, 2, {"y": "z"}]}, "gone": True},
        {"_id": oid, "n": 1.5}, {"_id": "emptied", "n": 1}])

    result = await collection.bulk_write([
        ReplaceOne({"_id": "a"}, {"_id": "a", "nested": {"x": [3]}, "when": "2026"}, upsert=True),
        ReplaceOne({"_id": oid}, {"n": 2, "list": []}, upsert=True),
        ReplaceOne({"_id": "b"}, {"n": 3}, upsert=True)], ordered=False)
    await collection.bulk_write([ReplaceOne({"_id": "emptied"}, {}), ReplaceOne({"_id": "b"}, {"_id": "b"})])

    assert (result.matched_count, result.modified_count, result.upserted_count) == (2, 2, 1)
    assert {d["_id"]: d async for d in collection.find({})} == {
        "a": {"_id": "a", "nested": {"x": [3]}, "when": "2026"}, oid: {"_id": oid, "n": 2, "list": []},
        "b": {"_id": "b"}, "emptied": {"_id": "emptied"}}


async def test_replacements_by_id_mixed_with_other_updates_apply_in_order(collection: Any) -> None:
    """Commands the FerretDB build's one-lookup path does not take (an `_id` twice, an operator, another
    filter) are applied statement by statement, as before."""
    await collection.insert_many([{"_id": f"s-{i}", "n": i, "tag": "a"} for i in range(5)])

    await collection.bulk_write([ReplaceOne({"_id": "s-1"}, {"n": 10}), ReplaceOne({"_id": "s-1"}, {"n": 11})])
    await collection.bulk_write([ReplaceOne({"_id": "s-2"}, {"n": 20}), UpdateOne({"_id": "s-3"}, {"$inc": {"n": 30}}),
                                 ReplaceOne({"n": 4}, {"n": 40}), ReplaceOne({"_id": "s-9"}, {"n": 90}, upsert=True)])

    assert [d async for d in collection.find({}, {"_id": 1, "n": 1}).sort("_id", 1)] == [
        {"_id": "s-0", "n": 0}, {"_id": "s-1", "n": 11}, {"_id": "s-2", "n": 20}, {"_id": "s-3", "n": 33},
        {"_id": "s-4", "n": 40}, {"_id": "s-9", "n": 90}]


async def test_operator_updates_by_id_in_one_command(collection: Any) -> None:
    """Progress-style upserts ($max and $set by `_id`), several in one command: each applied to its own document."""
    await collection.insert_many([{"_id": "p#0", "next": 10, "at": "t0"}, {"_id": "p#1", "next": 10, "at": "t0"}])

    result = await collection.bulk_write([
        UpdateOne({"_id": "p#0"}, {"$max": {"next": 15}, "$set": {"at": "t1"}}, upsert=True),
        UpdateOne({"_id": "p#1"}, {"$max": {"next": 5}, "$set": {"at": "t1"}}, upsert=True),  # never goes back
        UpdateOne({"_id": "p#2"}, {"$max": {"next": 7}, "$set": {"at": "t1"}}, upsert=True)], ordered=False)

    assert (result.matched_count, result.modified_count, result.upserted_count) == (2, 2, 1)
    assert [d async for d in collection.find({}).sort("_id", 1)] == [
        {"_id": "p#0", "next": 15, "at": "t1"}, {"_id": "p#1", "next": 10, "at": "t1"},
        {"_id": "p#2", "next": 7, "at": "t1"}]


@pytest.mark.parametrize("keep_existing", [False, True])
async def test_store_documents_inserts_the_new_replaces_the_rest(collection: Any, keep_existing: bool) -> None:
    """A document said to be new that is stored after all (a retried write) is replaced, or with keep_existing
    left as it is; the others are inserted or replaced, whatever their number."""
    await collection.insert_many([{"_id": "old", "n": 0}, {"_id": "landed", "n": 0}])
    new = {f"n-{i:04d}" for i in range(1200)} | {"landed"}  # more than one insert command's worth
    docs = [{"_id": i, "n": 1} for i in sorted(new)] + [{"_id": "old", "n": 1}]

    await store_documents(collection, docs, new, keep_existing=keep_existing)

    assert await collection.count_documents({}) == 1202
    assert await collection.count_documents({"n": 1}) == (1202 if not keep_existing else 1201)
    assert await collection.find_one({"_id": "landed"}) == {"_id": "landed", "n": 0 if keep_existing else 1}


async def test_an_index_is_listed_sized_and_dropped_and_a_unique_one_enforced(collection: Any) -> None:
    await collection.insert_one({"_id": "a", "country": "AFG", "year": 2024, "code": "x"})

    lookup = await collection.create_index([("country", 1), ("year", 1)])
    unique = await collection.create_index("code", unique=True)

    listed = await collection.index_information()
    assert listed[lookup]["key"] == [("country", 1), ("year", 1)]
    assert listed[unique].get("unique") is True
    stats = await collection.database.command("collStats", collection.name)
    assert set(stats["indexSizes"]) == {"_id_", lookup, unique}
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({"_id": "b", "code": "x"})

    await collection.drop_index(lookup)

    assert set(await collection.index_information()) == {"_id_", unique}


async def test_documents_of_every_kind_of_value_read_back_exactly_as_written(collection: Any) -> None:
    """What the store decodes (its own JSON form, infra/ferretdb/patches/13-sjson-decoder.patch) is what was
    written: text with escapes and characters outside ASCII, the extremes of each number type, nested values."""
    when = datetime(2026, 12, 7, 23, 59, 59, 999000, tzinfo=UTC)
    written: list[dict[str, Any]] = [
        {"_id": "text", "plain": "heroin", "escaped": 'a "quoted" \\ back\\slash\n\t/\u2028',
         "unicode": "Тоҷикистон 🚚", "empty": "", "control": "\x01\x1f"},
        {"_id": "numbers", "int32": [-2**31, -1, 0, 2**31 - 1], "int64": [-2**63, 2**31, 2**53 + 1, 2**63 - 1],
         "double": [0.1, 1e308, 5e-324, -2.5e-7, 123456789.125]},
        {"_id": "nested", "doc": {"a": {"b": [1, {"c": None}, True, False]}}, "list": [], "map": {},
         "when": when, "bytes": b"\x00\xffbinary", "oid": ObjectId("0123456789abcdef01234567")},
    ]
    await collection.insert_many([dict(d) for d in written])

    read = {d["_id"]: d async for d in collection.find({})}

    assert read == {d["_id"]: d for d in written}
