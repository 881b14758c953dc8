"""Document store adapter: one PyMongo async client per process, and its readiness check."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import AsyncMongoClient

Document = dict[str, Any]


def connect(url: str, app_name: str) -> AsyncMongoClient[Document]:
    """A client for `url`; nothing is sent until the first command."""
    return AsyncMongoClient(url, appname=app_name, serverSelectionTimeoutMS=5_000, connectTimeoutMS=5_000,
                            tz_aware=True)


async def store_reachable(client: AsyncMongoClient[Document]) -> bool:
    """True when the store answers `ping`."""
    await client.admin.command("ping")
    return True


BULK_CHUNK = 50
"""Most operations per bulk write. FerretDB 1.24 (SQLite) stops answering a single `update` command
that replaces about a hundred existing documents; chunks of 50 stay well clear of that and cost
MongoDB nothing measurable."""


async def bulk_write(collection: Any, operations: Sequence[Any]) -> None:
    """Unordered bulk writes of at most BULK_CHUNK operations each, one after another."""
    for start in range(0, len(operations), BULK_CHUNK):
        await collection.bulk_write(list(operations[start:start + BULK_CHUNK]), ordered=False)
