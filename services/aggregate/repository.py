"""Where submission records, view documents and progress live: the port, MongoDB, and in memory.

Hot-path reads and writes go by `_id` only (FerretDB scans the collection for anything else).
`query_view` is for the read API. View documents are shards (`<bucket>#p<partition>`, see
projection.py); `query_view` answers with whole buckets, one merged document per bucket, `_id`
the bucket key, in bucket order, so a page never splits a bucket's shards. Filters are equality
or ranges (`{"month": {"$gte": a, "$lte": b}}`) with `$gt`, `$gte`, `$lt`, `$lte` on dimensions;
a condition on `submissions` applies to the bucket's total and narrows the always-applied `> 0`.

The listing of submissions reads `listing`: one entry per received event, `_id`
`<partition>:<offset>` of the received topic, so that a page is found by `$in` over consecutive
offsets (see listing.py), never by a range.

A generation is one complete set of these collections: generation 0 is `submissions`,
`view_<name>`, `listing` and `progress`; generation N > 0 prefixes each with `g<N>_` (see generation.py).
"""

from __future__ import annotations

import asyncio
import operator
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Protocol, TypeVar

from pymongo import AsyncMongoClient, UpdateOne

from services.aggregate.projection import merge_shards
from shared.records import SUBMISSIONS, collection_prefix
from shared.store import Document, bulk_write, find_by_id, store_documents

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
K = TypeVar("K", bound=Hashable)
SHARDS_PER_READ = 200
"""Shards read per round trip; a bucket has at most one per partition."""


class Writes(Protocol):
    """What projecting a batch needs of a repository (worker.apply_records)."""

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]: ...

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]: ...

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        """Store `docs`; those in `new` were not found when loaded (a hint: they may be inserted)."""
        ...

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None: ...

    async def save_progress(self, docs: Iterable[Document]) -> None:
        """Record progress documents; `next_offset` never goes back."""
        ...

    async def save_listing(self, entries: Iterable[Document]) -> None:
        """Record listing entries (written once: an entry already stored is left as it is)."""
        ...


class Repository(Writes, Protocol):
    @property
    def generation(self) -> int: ...

    async def get_submission(self, submission_id: str) -> Document | None: ...

    async def scan_submissions(self, after: str | None, limit: int) -> list[Document]:
        """Submission records in `_id` order after `after` (for comparing generations)."""
        ...

    async def query_view(self, view: str, filters: Mapping[str, Any], after: str | None,
                         limit: int) -> list[Document]: ...

    async def load_progress(self) -> list[Document]:
        """Per topic partition, how far the worker has processed: `{kind, partition, next_offset, at}`."""
        ...

    async def load_listing(self, keys: Iterable[str]) -> list[Document]:
        """The listing entries stored among `keys`."""
        ...


class WriterCache:
    """A repository as its one writer sees it: the documents it last read or wrote, kept while it owns them.

    Every submission record and view shard has exactly one writer, the worker that owns its
    partition (worker.py); while it does, the copy it last read or wrote is the stored one, and
    reading it again is wasted work (on FerretDB a read by `_id` costs about what a write does).
    The owner calls `forget` whenever its partitions change; a failed write forgets everything
    too, since a bulk write may have been applied in part. Documents are never changed in place
    (projection.py copies before it changes), so a kept document is what was stored.
    """

    def __init__(self, inner: Writes, max_submissions: int = 5_000, max_views: int = 20_000) -> None:
        self.inner = inner
        self.max_submissions, self.max_views = max_submissions, max_views
        self._submissions: OrderedDict[str, Document] = OrderedDict()
        self._views: OrderedDict[ViewKey, Document] = OrderedDict()

    def forget(self) -> None:
        self._submissions.clear()
        self._views.clear()

    def kept_submission(self, submission_id: str) -> Document | None:
        """The record as stored, if kept here (a read that needs no round trip to the store)."""
        return self._submissions.get(submission_id)

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]:
        return await self._load(self._submissions, self.max_submissions, ids, self.inner.load_submissions)

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]:
        return await self._load(self._views, self.max_views, keys, self.inner.load_views)

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        await self._saving(self.inner.save_views(docs, new))
        _keep(self._views, self.max_views, docs.items())

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None:
        docs = list(docs)
        await self._saving(self.inner.save_submissions(docs, new))
        _keep(self._submissions, self.max_submissions, ((d["_id"], d) for d in docs))

    async def save_progress(self, docs: Iterable[Document]) -> None:
        await self.inner.save_progress(docs)

    async def save_listing(self, entries: Iterable[Document]) -> None:
        await self.inner.save_listing(entries)

    async def _saving(self, write: Awaitable[None]) -> None:
        try:
            await write
        except BaseException:
            self.forget()
            raise

    async def _load(self, kept: OrderedDict[K, Document], limit: int, keys: Iterable[K],
                    load: Callable[[list[K]], Awaitable[dict[K, Document]]]) -> dict[K, Document]:
        found: dict[K, Document] = {}
        missing: list[K] = []
        for key in keys:
            doc = kept.get(key)
            if doc is None:
                missing.append(key)
            else:
                kept.move_to_end(key)
                found[key] = doc
        if missing:
            loaded = await load(missing)
            _keep(kept, limit, loaded.items())
            found.update(loaded)
        return found


def _keep(kept: OrderedDict[K, Document], limit: int, items: Iterable[tuple[K, Document]]) -> None:
    for key, doc in items:
        kept[key] = doc
        kept.move_to_end(key)
    while len(kept) > limit:
        kept.popitem(last=False)


def split_filters(filters: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the query on shards' dimensions, the condition on a bucket's `submissions`); ValueError on other operators."""
    query = dict(filters)
    for name, condition in query.items():
        if isinstance(condition, Mapping) and (not condition or set(condition) - set(RANGE)):
            raise ValueError(f"filter on {name!r} uses operators other than {sorted(RANGE)}")
    count = query.pop("submissions", None)
    bounds = dict(count) if isinstance(count, Mapping) else {} if count is None else {"$gte": count, "$lte": count}
    return query, {**bounds, "$gt": max(bounds.get("$gt", 0), 0)}  # empty buckets stay hidden


def _matches(doc: Document, query: Mapping[str, Any]) -> bool:
    return all(_satisfies(doc.get(name), condition) for name, condition in query.items())


def _satisfies(value: Any, condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return bool(value == condition)
    try:
        return value is not None and all(RANGE[op](value, bound) for op, bound in condition.items())
    except TypeError:  # like MongoDB, values of another type never match a range
        return False


def buckets(view: str, shards: Iterable[Document], count: Mapping[str, Any]) -> list[Document]:
    """Consecutive shards of one bucket merged, keeping the buckets whose total `submissions` meets `count`."""
    found: list[Document] = []
    group: list[Document] = []
    for shard in [*shards, None]:
        if group and (shard is None or shard["bucket"] != group[0]["bucket"]):
            merged = merge_shards(view, group)
            if _satisfies(merged.get("submissions", 0), count):
                found.append(merged)
            group = []
        if shard is not None:
            group.append(shard)
    return found


def _shard_order(doc: Document) -> tuple[str, str]:
    return doc["bucket"], doc["_id"]


class InMemoryRepository:
    """Dictionaries standing in for the collections; for unit tests."""

    def __init__(self, generation: int = 0) -> None:
        self.generation = generation
        self.submissions: dict[str, Document] = {}
        self.views: dict[ViewKey, Document] = {}
        self.progress: dict[str, Document] = {}
        self.listing: dict[str, Document] = {}

    async def save_listing(self, entries: Iterable[Document]) -> None:
        for entry in entries:
            self.listing.setdefault(entry["_id"], entry)

    async def load_listing(self, keys: Iterable[str]) -> list[Document]:
        return [self.listing[k] for k in keys if k in self.listing]

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]:
        return {i: self.submissions[i] for i in ids if i in self.submissions}

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]:
        return {k: self.views[k] for k in keys if k in self.views}

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        self.views.update(docs)

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None:
        self.submissions.update({d["_id"]: d for d in docs})

    async def get_submission(self, submission_id: str) -> Document | None:
        return self.submissions.get(submission_id)

    async def scan_submissions(self, after: str | None, limit: int) -> list[Document]:
        return [self.submissions[i] for i in sorted(self.submissions) if after is None or i > after][:limit]

    async def query_view(self, view: str, filters: Mapping[str, Any], after: str | None,
                         limit: int) -> list[Document]:
        query, count = split_filters(filters)
        shards = sorted((d for (v, _), d in self.views.items() if v == view and "bucket" in d
                         and _matches(d, query) and (after is None or d["bucket"] > after)), key=_shard_order)
        return buckets(view, shards, count)[:limit]

    async def load_progress(self) -> list[Document]:
        return [dict(d) for _, d in sorted(self.progress.items())]

    async def save_progress(self, docs: Iterable[Document]) -> None:
        for doc in docs:
            held = self.progress.get(doc["_id"])
            self.progress[doc["_id"]] = {**doc, "next_offset": max(doc["next_offset"], held["next_offset"])
                                         if held else doc["next_offset"]}


class MongoRepository:
    """Collections `submissions`, `view_<name>`, `listing` and `progress` in one database, prefixed by generation."""

    def __init__(self, client: AsyncMongoClient[Document], database: str, generation: int = 0) -> None:
        self.generation = generation
        self.db = client[database]
        self.prefix = collection_prefix(generation)
        self.submissions = self.db[f"{self.prefix}{SUBMISSIONS}"]
        self.progress = self.db[f"{self.prefix}progress"]
        self.listing = self.db[f"{self.prefix}listing"]

    def view(self, name: str) -> Any:
        return self.db[f"{self.prefix}view_{name}"]

    def collection_names(self) -> list[str]:
        """Every collection of this generation."""
        return [f"{self.prefix}submissions", f"{self.prefix}progress", f"{self.prefix}listing",
                *(f"{self.prefix}view_{v}" for v in VIEWS)]

    async def ensure_indexes(self) -> None:
        for view in VIEWS:  # one at a time: each may create its collection
            for fields in [["bucket"], *INDEXES[view]]:
                await self.view(view).create_index([(name, 1) for name in fields])

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]:
        return {d["_id"]: d for d in await find_by_id(self.submissions, list(ids))}

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]:
        by_view: dict[str, list[str]] = {}
        for view, key in keys:
            by_view.setdefault(view, []).append(key)
        found = await asyncio.gather(*(find_by_id(self.view(v), ids) for v, ids in by_view.items()))
        return {(view, d["_id"]): d for view, docs in zip(by_view, found, strict=True) for d in docs}

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        by_view: dict[str, list[Document]] = {}
        for (view, key), doc in docs.items():
            by_view.setdefault(view, []).append(doc if doc.get("_id") == key else {**doc, "_id": key})
        await asyncio.gather(*(store_documents(self.view(v), view_docs, {key for name, key in new if name == v})
                               for v, view_docs in by_view.items()))

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None:
        docs = list(docs)
        if docs:
            await store_documents(self.submissions, docs, new)

    async def get_submission(self, submission_id: str) -> Document | None:
        doc: Document | None = await self.submissions.find_one({"_id": submission_id})
        return doc

    async def scan_submissions(self, after: str | None, limit: int) -> list[Document]:
        query = {} if after is None else {"_id": {"$gt": after}}
        return [d async for d in self.submissions.find(query).sort("_id", 1).limit(limit)]

    async def query_view(self, view: str, filters: Mapping[str, Any], after: str | None,
                         limit: int) -> list[Document]:
        query, count = split_filters(filters)
        collection = self.view(view)
        found: list[Document] = []
        last = after
        while len(found) < limit:
            where = {**query, **({"bucket": {"$gt": last}} if last is not None else {"bucket": {"$exists": True}})}
            shards = [d async for d in collection.find(where).sort([("bucket", 1), ("_id", 1)])
                      .limit(SHARDS_PER_READ)]
            exhausted = len(shards) < SHARDS_PER_READ
            if not exhausted:  # the last bucket may go on in the next read
                last_bucket = shards[-1]["bucket"]
                complete = [d for d in shards if d["bucket"] != last_bucket]
                if not complete:  # one bucket filled the read: read all of it
                    complete = [d async for d in collection.find({**query, "bucket": last_bucket}).sort("_id", 1)]
                shards = complete
            if shards:
                found += buckets(view, shards, count)
                last = shards[-1]["bucket"]
            if exhausted:
                break
        return found[:limit]

    async def load_progress(self) -> list[Document]:
        return [d async for d in self.progress.find({}).sort("_id", 1)]

    async def save_listing(self, entries: Iterable[Document]) -> None:
        entries = list(entries)
        if entries:
            await store_documents(self.listing, entries, {e["_id"] for e in entries}, keep_existing=True)

    async def load_listing(self, keys: Iterable[str]) -> list[Document]:
        return await find_by_id(self.listing, list(keys))

    async def save_progress(self, docs: Iterable[Document]) -> None:
        ops = [UpdateOne({"_id": d["_id"]}, {"$max": {"next_offset": d["next_offset"]},
                                             "$set": {k: v for k, v in d.items() if k not in ("_id", "next_offset")}},
                         upsert=True) for d in docs]
        if ops:
            await bulk_write(self.progress, ops)
