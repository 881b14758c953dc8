"""The repository in MongoDB (or FerretDB): one collection per kind of document, prefixed by generation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from pymongo import AsyncMongoClient, UpdateOne

from services.aggregate.record_codec import pack, unpack
from services.aggregate.repository import FROM_FIELDS, INDEXES, VIEWS, ViewKey
from services.aggregate.view_query import buckets, split_filters
from shared.records import SUBMISSIONS, collection_prefix
from shared.store import ID_CHUNK, Document, bulk_write, find_by_id, store_documents

SHARDS_PER_READ = 200
"""Shards read per round trip; a bucket has at most one per partition."""
LISTED_FIELDS = {"packed": 0, "history": 0, "valid": 0}
"""A record without what the listing never shows (a record stored before packing has no `packed`)."""

class MongoRepository:
    """Collections `submissions`, `view_<name>`, `listing` and `progress` in one database, prefixed by generation."""

    def __init__(self, client: AsyncMongoClient[Document], database: str, generation: int = 0) -> None:
        self.generation = generation
        self.db = client[database]
        self.prefix = collection_prefix(generation)
        self.submissions = self.db[f"{self.prefix}{SUBMISSIONS}"]
        self.progress = self.db[f"{self.prefix}progress"]
        self.listing = self.db[f"{self.prefix}listing"]
        self.view_writes = 0

    def view(self, name: str) -> Any:
        return self.db[f"{self.prefix}view_{name}"]

    def collection_names(self) -> list[str]:
        """Every collection of this generation."""
        return [f"{self.prefix}submissions", f"{self.prefix}progress", f"{self.prefix}listing",
                *(f"{self.prefix}view_{v}" for v in VIEWS)]

    async def ensure_indexes(self) -> None:
        """Create each view's INDEXES and drop any other it has (each one costs every write)."""
        for view in VIEWS:  # one at a time: each may create its collection
            collection = self.view(view)
            wanted = {await collection.create_index([(name, 1) for name in fields]) for fields in INDEXES[view]}
            for name in set(await collection.index_information()) - wanted - {"_id_"}:
                await collection.drop_index(name)

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]:
        return {d["_id"]: unpack(d) for d in await find_by_id(self.submissions, list(ids))}

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
        try:
            await asyncio.gather(*(store_documents(self.view(v), view_docs, {key for name, key in new if name == v})
                                   for v, view_docs in by_view.items()))
        finally:  # counted even if it failed: some documents may have been written
            self.view_writes += 1

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None:
        stored = [pack(d) for d in docs]
        if stored:
            await store_documents(self.submissions, stored, new)

    async def get_submission(self, submission_id: str) -> Document | None:
        doc: Document | None = await self.submissions.find_one({"_id": submission_id})
        return unpack(doc) if doc is not None else None

    async def scan_submissions(self, after: str | None, limit: int) -> list[Document]:
        query = {} if after is None else {"_id": {"$gt": after}}
        return [unpack(d) async for d in self.submissions.find(query).sort("_id", 1).limit(limit)]

    async def query_view(self, view: str, filters: Mapping[str, Any], after: str | None,
                         limit: int) -> list[Document]:
        query, count = split_filters(filters)
        collection = self.view(view)
        found: list[Document] = []
        last = after
        while len(found) < limit:
            # every shard's bucket is a string: `$gte ""` selects them all, as a range the bucket index answers
            where = {**query, "bucket": {"$gt": last} if last is not None else {"$gte": ""}}
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

    async def save_listing(self, entries: Iterable[Document],
                           by_submitter: Mapping[str, Iterable[int]] | None = None,
                           by_value: Mapping[str, Mapping[int, Iterable[int]]] | None = None) -> None:
        entries = list(entries)
        windows = [UpdateOne({"_id": key}, {"$addToSet": {"offsets": {"$each": sorted(offsets)}}}, upsert=True)
                   for key, offsets in (by_submitter or {}).items()]
        # appended, not added as a set: the store checks a set against every offset held; a replay may repeat some
        windows += [UpdateOne({"_id": key}, {"$push": {f"o{p}": {"$each": sorted(offsets)}
                                                       for p, offsets in sorted(partitions.items())}},
                              upsert=True) for key, partitions in (by_value or {}).items()]
        writes = []
        if entries:
            writes.append(store_documents(self.listing, entries, {e["_id"] for e in entries}, keep_existing=True))
        if windows:
            writes.append(bulk_write(self.listing, windows))
        await asyncio.gather(*writes)

    async def load_listing(self, keys: Iterable[str]) -> list[Document]:
        return await find_by_id(self.listing, list(keys))

    async def load_listed(self, ids: Iterable[str]) -> dict[str, Document]:
        wanted = list(ids)
        chunks = [wanted[start:start + ID_CHUNK] for start in range(0, len(wanted), ID_CHUNK)]
        found = await asyncio.gather(*(self.submissions.find({"_id": {"$in": chunk}}, LISTED_FIELDS,
                                                             batch_size=len(chunk)).to_list() for chunk in chunks))
        return {d["_id"]: d for docs in found for d in docs}

    async def save_progress(self, docs: Iterable[Document]) -> None:
        least = FROM_FIELDS
        kept = ("_id", "next_offset", *least)
        ops = [UpdateOne({"_id": d["_id"]}, {"$max": {"next_offset": d["next_offset"]},
                                             "$set": {k: v for k, v in d.items() if k not in kept},
                                             **({"$min": {k: d[k] for k in least if k in d}}
                                                if any(k in d for k in least) else {})},
                         upsert=True) for d in docs]
        if ops:
            await bulk_write(self.progress, ops)
