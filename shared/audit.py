"""The audit trail: who submitted, amended, withdrew, exported, made or revoked what, and when. Append-only.

Entries are keyed by what they record (`<submission id>:<seq>` for a submission version), so
writing one again after a replay changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from pymongo import AsyncMongoClient

from shared.store import Document, store_documents

FILTERS = ("actor", "action", "target")
"""What the trail is filtered on (by equality)."""

Action = Literal["submitted", "amended", "resubmitted", "withdrawn", "exported", "key_created", "key_revoked"]


def entry(key: str, at: datetime | str, actor: str, action: Action, target: str, **details: Any) -> Document:
    """An entry whose `_id` sorts by time; `key` makes it unique (and a replayed write a no-op)."""
    when = at if isinstance(at, str) else at.isoformat()
    return {"_id": f"{when}~{key}", "at": when, "actor": actor, "action": action, "target": target,
            **({"details": details} if details else {})}


class AuditLog(Protocol):
    async def record(self, entries: Iterable[Document]) -> None: ...

    async def query(self, filters: Mapping[str, Any], after: str | None, limit: int) -> list[Document]: ...


@dataclass
class InMemoryAuditLog:
    entries: dict[str, Document] = field(default_factory=dict)

    async def record(self, entries: Iterable[Document]) -> None:
        for item in entries:
            self.entries.setdefault(item["_id"], dict(item))

    async def query(self, filters: Mapping[str, Any], after: str | None, limit: int) -> list[Document]:
        found = [e for e in self.entries.values()
                 if all(e.get(k) == v for k, v in filters.items()) and (after is None or e["_id"] > after)]
        return sorted(found, key=lambda e: e["_id"])[:limit]


class MongoAuditLog:
    """Collection `audit`; entries are only ever inserted (`$setOnInsert`), never changed."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self.collection = client[database]["audit"]

    async def ensure_indexes(self) -> None:
        """The trail is read oldest first, all of it or one actor's, action's or target's (`query`)."""
        for name in FILTERS:
            await self.collection.create_index([(name, 1), ("_id", 1)])

    async def record(self, entries: Iterable[Document]) -> None:
        entries = list(entries)
        if entries:  # inserted; an entry already there (an event redelivered) is kept as it was
            await store_documents(self.collection, entries, {e["_id"] for e in entries}, keep_existing=True)

    async def query(self, filters: Mapping[str, Any], after: str | None, limit: int) -> list[Document]:
        query: dict[str, Any] = dict(filters)
        if after is not None:
            query["_id"] = {"$gt": after}
        return [e async for e in self.collection.find(query).sort("_id", 1).limit(limit)]
