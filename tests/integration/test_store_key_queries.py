"""Sorted, filtered and limited finds answered from indexes find exactly what the same query finds by a scan.

On FerretDB a find whose filter and sort an index covers is answered by SQLite from the index
(infra/ferretdb/patches/11-key-indexes.patch); the same filter inside `$and` is not, and is answered the way
every query was before: each document decoded, filtered and sorted in Go. On MongoDB both are its own.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Any

import pytest
from bson import Int64, ObjectId

from shared.store import connect
from tests.conftest import Infra

NUMBERS: list[Any] = [-3, 0, 1, Int64(1), 2, Int64(2**40), 2**31 - 1, -(2**31), Int64(2**62)]
STRINGS: list[Any] = ["", " ", "a", "a ", "a!", 'a"', "a\\", "ab", "b", "B", "é", "\u2028", "zz~"]
ODD: list[Any] = [None, ["a"], ["b", 3], [], {"x": 1}, True, datetime(2024, 1, 2, tzinfo=UTC), ObjectId(),
                  1.0, 2.5, -0.0, 0.1, 1e300]
"""Values the indexes do not order (a double, stored as decimal text, might not read back as the same double):
a collection holding one is answered by a scan."""


def documents(odd: bool) -> list[dict[str, Any]]:
    """Every pairing of `k` and `j` values (some missing), with string `_id`s that sort unlike their order."""
    values: list[Any] = [*NUMBERS, *STRINGS, *(ODD if odd else [])]
    docs: list[dict[str, Any]] = []
    for i, k in enumerate([*values, "missing"]):
        for n, j in enumerate(["a", "b", 1, "missing"]):
            doc: dict[str, Any] = {"_id": f"{(i * 7 + n * 13) % 101:03d}-{i}-{n}"}
            doc.update({"k": k} if k != "missing" else {})
            doc.update({"j": j} if j != "missing" else {})
            docs.append(doc)
    if odd:
        docs += [{"_id": 7, "k": "a", "j": "a"}, {"_id": ObjectId(), "k": 1, "j": "b"}]
    return docs


def queries() -> list[tuple[dict[str, Any], list[tuple[str, int]]]]:
    """Filters on boundary values of each type, sorts on the indexed fields and `_id`."""
    found: list[tuple[dict[str, Any], list[tuple[str, int]]]] = []
    bounds: list[Any] = [0, 1, 1.0, 2.5, 0.1, Int64(2**40), -(2**31), "", "a", "a ", 'a"', "b", "é"]
    conditions: list[Any] = [{}]
    for v in bounds:
        conditions += [{"k": v}, {"k": {"$gt": v}}, {"k": {"$gte": v}}, {"k": {"$lt": v}}, {"k": {"$lte": v}}]
    conditions += [{"k": {"$gt": 0, "$lte": 2.5}}, {"k": {"$gte": 1, "$lt": Int64(2**62)}},
                   {"k": {"$gte": "a", "$lt": "b"}}, {"k": {"$gt": "b", "$lt": "a"}},
                   {"_id": {"$gt": "050"}}, {"k": "a", "_id": {"$lte": "050"}}]
    for condition in conditions:
        found += [(condition, [("k", 1), ("_id", 1)]), (condition, [("_id", 1)]),
                  (condition, [("k", -1), ("_id", -1)])]
    for j in ["a", 1]:
        found += [({"j": j, "k": {"$gte": "a"}}, [("k", 1), ("_id", 1)]), ({"j": j}, [("_id", 1)]),
                  ({"j": j, "k": {"$lt": 2}}, [("_id", -1)])]
    return found


@pytest.fixture
async def database(infra: Infra) -> AsyncIterator[Any]:
    client = connect(infra.mongodb_url, "tests")
    name = f"keys_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


async def indexed(database: Any, name: str, docs: list[dict[str, Any]]) -> Any:
    collection = database[name]
    await collection.insert_many(docs)
    await collection.create_index([("k", 1), ("_id", 1)])
    await collection.create_index([("j", 1), ("k", 1), ("_id", 1)])
    return collection


@pytest.mark.parametrize("odd", [False, True], ids=["numbers-and-strings", "with-other-types"])
async def test_an_indexed_find_answers_what_the_scan_answers(database: Any, odd: bool) -> None:
    collection = await indexed(database, "docs", documents(odd))

    for filter_, sort in queries():
        for limit in (0, 1, 5):
            indexed_find = [d async for d in collection.find(filter_).sort(sort).limit(limit)]
            scanned = [d async for d in collection.find({"$and": [filter_]}).sort(sort).limit(limit)]
            assert indexed_find == scanned, (filter_, sort, limit)


async def test_a_document_of_another_type_written_later_is_found_as_the_scan_finds_it(database: Any) -> None:
    collection = await indexed(database, "docs", documents(odd=False))
    await collection.insert_one({"_id": "000", "k": ["a", 1], "j": "a"})

    for filter_, sort in [({"k": "a"}, [("_id", 1)]), ({"k": {"$gte": 1}}, [("k", 1), ("_id", 1)])]:
        found = [d async for d in collection.find(filter_).sort(sort).limit(3)]
        assert found[0]["_id"] == "000", (filter_, found)
        assert found == [d async for d in collection.find({"$and": [filter_]}).sort(sort).limit(3)]

    await collection.delete_one({"_id": "000"})

    assert [d async for d in collection.find({"k": "a"}).sort("_id", 1)] == [
        d async for d in collection.find({"$and": [{"k": "a"}]}).sort("_id", 1)]


async def test_on_ferretdb_indexes_on_top_level_fields_are_built_in_sqlite(infra: Infra, database: Any) -> None:
    """The key indexes, the `_id` key index and the guard exist in SQLite; an index on a nested field does not."""
    if infra.engine != "ferretdb" or infra.store_dir is None:
        pytest.skip("about the FerretDB built here")
    collection = await indexed(database, "docs", documents(odd=False))
    await collection.create_index("nested.field")

    [path] = infra.store_dir.rglob(f"{database.name}.sqlite")
    with closing(sqlite3.connect(path)) as db:
        built = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}

    assert {n for n in built if n.endswith("__k")} == {n for n in built if n.endswith(("_k_1__id_1__k",
                                                                                       "_j_1_k_1__id_1__k",
                                                                                       "__ferretdb_id__k"))}
    assert len([n for n in built if n.endswith("__k")]) == 3, built
    assert any("__ferretdb_odd_" in n for n in built), built
    assert not any("nested" in n for n in built), built

    await collection.drop_index("k_1__id_1")
    await collection.drop_index("j_1_k_1__id_1")

    with closing(sqlite3.connect(path)) as db:
        left = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert not any(n.endswith("__k") or "__ferretdb_odd_" in n for n in left), left
