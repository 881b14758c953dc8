"""Writes to several collections of one database at once, updates of one document from several clients at once,
and the FerretDB build's WAL checkpoints, on the real store (see WRITER_TURN in infra/store.py and
infra/ferretdb/patches/12-update-turns.patch)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import InsertOne, ReplaceOne, UpdateOne

from shared.store import connect
from tests.conftest import Infra, eventually


@pytest.fixture
async def database(infra: Infra) -> AsyncIterator[Any]:
    client = connect(infra.mongodb_url, "tests")
    name = f"writers_{uuid.uuid4().hex[:10]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


async def test_writes_to_many_collections_of_one_database_at_once_all_land(database: Any) -> None:
    """Eight writers, each a collection of the same database, each inserting then replacing in turn: every
    write is applied and none waits forever for another's."""
    writers, rounds, per_command = 8, 15, 10

    async def writer(k: int) -> None:
        collection = database[f"c{k}"]
        for r in range(rounds):
            ids = [f"{k}-{r}-{i}" for i in range(per_command)]
            await collection.bulk_write([InsertOne({"_id": i, "v": 0}) for i in ids], ordered=False)
            await collection.bulk_write([ReplaceOne({"_id": i}, {"v": r + 1}, upsert=True) for i in ids],
                                        ordered=False)

    await asyncio.wait_for(asyncio.gather(*(writer(k) for k in range(writers))), timeout=60)

    for k in range(writers):
        docs = await database[f"c{k}"].find({}).to_list()
        assert len(docs) == rounds * per_command
        assert sorted(d["v"] for d in docs) == sorted(r + 1 for r in range(rounds) for _ in range(per_command))


async def test_updates_of_the_same_documents_from_several_clients_at_once_all_apply(database: Any) -> None:
    """Four clients push to the same documents at once, as aggregate processes owning different partitions do to
    a shared listing window: each round's upserts of new documents and every push to the documents that exist
    are all applied, none fails on a duplicate key and none is lost to another's write."""
    clients, rounds, fresh = 4, 30, 5
    collection = database["shared"]
    await collection.insert_many([{"_id": f"old-{j}"} for j in range(fresh)])

    async def client(k: int) -> None:
        for r in range(rounds):
            ids = [f"new-{r}-{j}" for j in range(fresh)] + [f"old-{j}" for j in range(fresh)]
            await collection.bulk_write([UpdateOne({"_id": i}, {"$push": {f"c{k}": r}}, upsert=True) for i in ids],
                                        ordered=False)

    await asyncio.wait_for(asyncio.gather(*(client(k) for k in range(clients))), timeout=60)

    docs = {d.pop("_id"): d async for d in collection.find({})}
    for r in range(rounds):
        for j in range(fresh):
            assert docs[f"new-{r}-{j}"] == {f"c{k}": [r] for k in range(clients)}
    for j in range(fresh):
        assert docs[f"old-{j}"] == {f"c{k}": list(range(rounds)) for k in range(clients)}


async def test_the_wal_is_checkpointed_without_waiting_for_more_writes(infra: Infra, database: Any) -> None:
    """About 1.5 MB written, well under the 1,000 pages after which SQLite checkpoints on its own, reaches the
    database file within seconds and with no further write (stock FerretDB leaves it in the WAL)."""
    if infra.engine != "ferretdb" or infra.store_dir is None:
        pytest.skip("FerretDB's SQLite files only")
    await database["docs"].insert_many([{"_id": i, "pad": "x" * 1500} for i in range(1000)])
    file = infra.store_dir / "ferretdb" / f"{database.name}.sqlite"
    assert (file.parent / f"{file.name}-wal").stat().st_size > 1_000_000

    assert eventually(lambda: file.stat().st_size > 1_000_000 or None, timeout=15)
