"""Document store adapter: one PyMongo async client per process, and its readiness check."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Container, Sequence
from typing import Any, TypeVar

import pymongo
from pymongo import AsyncMongoClient, InsertOne, ReplaceOne
from pymongo.errors import BulkWriteError
from starlette.types import ASGIApp, Receive, Scope, Send

Document = dict[str, Any]
A = TypeVar("A")
B = TypeVar("B")


def connect(url: str, app_name: str) -> AsyncMongoClient[Document]:
    """A client for `url`; nothing is sent until the first command."""
    return AsyncMongoClient(url, appname=app_name, serverSelectionTimeoutMS=5_000, connectTimeoutMS=5_000,
                            tz_aware=True)


async def store_reachable(client: AsyncMongoClient[Document]) -> bool:
    """True when the store answers `ping`."""
    await client.admin.command("ping")
    return True


class StoreDeadline:
    """ASGI middleware: the store operations one HTTP request makes share a deadline (PyMongo's client-side
    operation timeout, `timeoutMS`). A store that is up but not answering (paused, overloaded, cut off
    without a reset) fails them when it passes, so the request answers 503 with Retry-After
    (shared.health) instead of waiting on the socket. The consumers' writes are not HTTP requests
    and keep their own bound (`DMP_BATCH_TIMEOUT_S`): a large batch on a slow store may take longer.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with pymongo.timeout(self.seconds):
            await self.app(scope, receive, send)


BULK_CHUNK = 50
"""Most update statements per bulk write. A stock FerretDB 1.24 (SQLite) stops answering a single `update`
command that replaces about a hundred existing documents (the FerretDB built here does not: infra/store.py);
chunks of 50 stay well clear of that and cost MongoDB nothing measurable."""

INSERT_CHUNK = 1000
"""Most inserts per bulk write: an `insert` command has no such limit (FerretDB writes up to 100 documents per
SQLite transaction), and a large batch's new records go in a few round trips instead of twenty."""

INSERT_COMMANDS = 3
"""A large insert goes in this many commands, all in flight together (none under BULK_CHUNK documents, none over
INSERT_CHUNK, so more past 3,000): the store encodes their documents side by side (the FerretDB built here encodes
before it takes its turn to write, infra/store.py PREPARED_WRITES), which for a large batch of records is most of
the work."""


async def bulk_write(collection: Any, operations: Sequence[Any]) -> None:
    """Unordered bulk writes of at most BULK_CHUNK operations each, one after another."""
    for start in range(0, len(operations), BULK_CHUNK):
        await collection.bulk_write(list(operations[start:start + BULK_CHUNK]), ordered=False)


ID_CHUNK = 500
"""Most `_id`s per lookup. Well under the 1,000 FerretDB's `$in` push-down takes
(infra/ferretdb/patches/02-id-in-pushdown.patch)."""


async def find_by_id(collection: Any, ids: Sequence[Any]) -> list[Document]:
    """The stored documents among `ids`: one `$in` lookup per ID_CHUNK, all in flight together.

    Each answer is one batch, so a lookup is one round trip; MongoDB and the FerretDB built here both
    serve it from the `_id` index.
    """
    chunks = [ids[start:start + ID_CHUNK] for start in range(0, len(ids), ID_CHUNK)]
    found = await asyncio.gather(*(collection.find({"_id": {"$in": chunk}}, batch_size=len(chunk)).to_list()
                                   for chunk in chunks))
    return [doc for docs in found for doc in docs]


async def all_of(*steps: Awaitable[Any]) -> list[Any]:
    """Every result, in order; if any fails, the first error, once all have finished (nothing left running)."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def both(first: Awaitable[A], second: Awaitable[B]) -> tuple[A, B]:
    """Both results; if either fails, its error, once the other has finished too."""
    a, b = await all_of(first, second)
    return a, b


DUPLICATE_KEY = 11000


async def store_documents(collection: Any, docs: Sequence[Document], new: Container[Any] = (), *,
                          keep_existing: bool = False) -> None:
    """Write `docs` by `_id`: an insert for each `_id` in `new` (the writer knows it is not stored yet), in up to
    INSERT_COMMANDS commands at once, and meanwhile a replacing upsert for the others, BULK_CHUNK at a time; all
    unordered.

    On FerretDB an insert costs less than an upsert (which looks the document up first). A document in
    `new` that is stored after all (a write retried after it landed) is then replaced, or with
    `keep_existing` left as it is (entries that are only ever inserted, like the audit's).
    """
    inserts = [d for d in docs if d["_id"] in new]
    replacements = [d for d in docs if d["_id"] not in new]
    stored_already, _ = await both(_insert(collection, inserts), _replace(collection, replacements))
    if stored_already and not keep_existing:
        await _replace(collection, stored_already)


async def _insert(collection: Any, docs: list[Document]) -> list[Document]:
    """Insert `docs`; those whose `_id` turned out to be stored already are returned, not inserted."""
    size = min(INSERT_CHUNK, max(BULK_CHUNK, -(-len(docs) // INSERT_COMMANDS)))
    found = await all_of(*(_insert_chunk(collection, docs[start:start + size]) for start in range(0, len(docs), size)))
    return [doc for chunk in found for doc in chunk]


async def _insert_chunk(collection: Any, chunk: list[Document]) -> list[Document]:
    """Insert `chunk`; those whose `_id` turned out to be stored already are returned, not inserted."""
    try:
        await collection.bulk_write([InsertOne(d) for d in chunk], ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if not errors or any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return [chunk[e["index"]] for e in errors]
    return []


async def _replace(collection: Any, docs: list[Document]) -> None:
    await bulk_write(collection, [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs])
