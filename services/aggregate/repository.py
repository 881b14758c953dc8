"""Where submission records and view documents live: the port, MongoDB, and in memory.

Hot-path reads and writes go by `_id` only (FerretDB scans the collection for anything else).
`query_view` is for the read API: equality filters, and ranges (`{"month": {"$gte": a, "$lte": b}}`)
with `$gt`, `$gte`, `$lt`, `$lte`; a range on `submissions` narrows the always-applied `> 0`.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from pymongo import AsyncMongoClient, ReplaceOne

from shared.store import Document

VIEWS = ("seizures", "routes", "map", "prices", "financial", "treatment", "courses", "trainees", "repeats")
RANGE = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}
INDEXES: dict[str, list[list[str]]] = {
    "seizures": [["country", "year", "drug"]],
    "routes": [["route", "month", "drug"], ["drug", "month"]],
    "map": [["drug", "seized_on"], ["seized_on"]],
    "prices": [["country", "year", "drug", "market"]],
    "financial": [["country", "year", "case_type"]],
    "treatment": [["country", "year"]],
    "courses": [["country", "year"]],
    "trainees": [["country", "year"]],
    "repeats": [["submissions"]],
}
ViewKey = tuple[str, str]


class Repository(Protocol):
    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]: ...

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]: ...

    async def save_views(self, docs: Mapping[ViewKey, Document]) -> None: ...

    async def save_submissions(self, docs: Iterable[Document]) -> None: ...

    async def get_submission(self, submission_id: str) -> Document | None: ...

    async def query_view(self, view: str, filters: Mapping[str, Any], after: str | None,
                         limit: int) -> list[Document]: ...


def view_query(filters: Mapping[str, Any], after: str | None) -> dict[str, Any]:
    """The store query for `filters` on non-empty documents after `after`; ValueError on other operators."""
    query = dict(filters)
    for name, condition in query.items():
        if isinstance(condition, Mapping) and (not condition or set(condition) - set(RANGE)):
            raise ValueError(f"filter on {name!r} uses operators other than {sorted(RANGE)}")
    count = query.pop("submissions", None)
    bounds = dict(count) if isinstance(count, Mapping) else {} if count is None else {"$gte": count, "$lte": count}
    query["submissions"] = {**bounds, "$gt": max(bounds.get("$gt", 0), 0)}  # empty buckets stay hidden
    if after is not None:
        query["_id"] = {"$gt": after}
    return query


def _matches(doc: Document, query: Mapping[str, Any]) -> bool:
    return all(_satisfies(doc.get(name), condition) for name, condition in query.items())


def _satisfies(value: Any, condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return bool(value == condition)
    try:
        return value is not None and all(RANGE[op](value, bound) for op, bound in condition.items())
    except TypeError:  # like MongoDB, values of another type never match a range
        return False


class InMemoryRepository:
    """Dictionaries standing in for the collections; for unit tests."""

    def __init__(self) -> None:
        self.submissions: dict[str, Document] = {}
        self.views: dict[ViewKey, Document] = {}

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]:
        return {i: self.submissions[i] for i in ids if i in self.submissions}

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]:
        return {k: self.views[k] for k in keys if k in self.views}

    async def save_views(self, docs: Mapping[ViewKey, Document]) -> None:
        self.views.update(docs)

    async def save_submissions(self, docs: Iterable[Document]) -> None:
        self.submissions.update({d["_id"]: d for d in docs})

    async def get_submission(self, submission_id: str) -> Document | None:
        return self.submissions.get(submission_id)

    async def query_view(self, view: str, filters: Mapping[str, Any], after: str | None,
                         limit: int) -> list[Document]:
        query = view_query(filters, after)
        docs = sorted((d for (v, _), d in self.views.items() if v == view and _matches(d, query)),
                      key=lambda d: d["_id"])
        return docs[:limit]


class MongoRepository:
    """Collections `submissions` and `view_<name>` in one database."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self.db = client[database]
        self.submissions = self.db["submissions"]

    def view(self, name: str) -> Any:
        return self.db[f"view_{name}"]

    async def ensure_indexes(self) -> None:
        for view, indexes in INDEXES.items():  # one at a time: each may create its collection
            for fields in indexes:
                await self.view(view).create_index([(name, 1) for name in fields])

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]:
        found = await asyncio.gather(*(self.submissions.find_one({"_id": i}) for i in ids))
        return {d["_id"]: d for d in found if d is not None}

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]:
        keys = list(keys)
        found = await asyncio.gather(*(self.view(v).find_one({"_id": k}) for v, k in keys))
        return {key: doc for key, doc in zip(keys, found, strict=True) if doc is not None}

    async def save_views(self, docs: Mapping[ViewKey, Document]) -> None:
        by_view: dict[str, list[ReplaceOne[Document]]] = {}
        for (view, key), doc in docs.items():
            by_view.setdefault(view, []).append(ReplaceOne({"_id": key}, doc, upsert=True))
        await asyncio.gather(*(self.view(v).bulk_write(ops, ordered=False) for v, ops in by_view.items()))

    async def save_submissions(self, docs: Iterable[Document]) -> None:
        ops = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs]
        if ops:
            await self.submissions.bulk_write(ops, ordered=False)

    async def get_submission(self, submission_id: str) -> Document | None:
        doc: Document | None = await self.submissions.find_one({"_id": submission_id})
        return doc

    async def query_view(self, view: str, filters: Mapping[str, Any], after: str | None,
                         limit: int) -> list[Document]:
        query = view_query(filters, after)
        cursor = self.view(view).find(query, {"wm": 0}).sort("_id", 1).limit(limit)
        return [doc async for doc in cursor]
