"""Document store adapter: one PyMongo async client per process, and its readiness check."""

from __future__ import annotations

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
