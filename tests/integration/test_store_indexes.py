"""Indexes on the real store: listed, sized and dropped as asked, unique ones enforced."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo.errors import DuplicateKeyError

from shared.store import connect
from tests.conftest import Infra


@pytest.fixture
async def collection(infra: Infra) -> AsyncIterator[Any]:
    client = connect(infra.mongodb_url, "tests")
    database = f"indexes_{uuid.uuid4().hex[:10]}"
    try:
        yield client[database]["docs"]
    finally:
        await client.drop_database(database)
        await client.close()


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


async def test_on_ferretdb_only_unique_indexes_are_built_in_sqlite(infra: Infra, collection: Any) -> None:
    """FerretDB's SQLite backend reads no index but `_id`'s: any other that enforces nothing is only write cost
    (infra/store.py UNUSED_INDEXES)."""
    if infra.engine != "ferretdb" or infra.store_dir is None:
        pytest.skip("about the FerretDB built here")
    await collection.insert_one({"_id": "a", "country": "AFG", "code": "x"})
    await collection.create_index("country")
    await collection.create_index("code", unique=True)

    [path] = infra.store_dir.rglob(f"{collection.database.name}.sqlite")
    with sqlite3.connect(path) as db:
        built = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}

    assert any(name.endswith("_code_1") for name in built), built
    assert not any(name.endswith("_country_1") for name in built), built
