"""The repository in dictionaries standing in for the collections; for unit tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from services.aggregate.repository import FROM_FIELDS, ViewKey
from services.aggregate.view_query import buckets, matches, shard_order, split_filters
from shared.store import Document


class InMemoryRepository:
    """Dictionaries standing in for the collections; for unit tests."""

    def __init__(self, generation: int = 0) -> None:
        self.generation = generation
        self.submissions: dict[str, Document] = {}
        self.views: dict[ViewKey, Document] = {}
        self.progress: dict[str, Document] = {}
        self.listing: dict[str, Document] = {}
        self.view_writes = 0

    async def save_listing(self, entries: Iterable[Document],
                           by_submitter: Mapping[str, Iterable[int]] | None = None,
                           by_value: Mapping[str, Mapping[int, Iterable[int]]] | None = None) -> None:
        for entry in entries:
            self.listing.setdefault(entry["_id"], entry)
        for key, offsets in (by_submitter or {}).items():
            window = self.listing.setdefault(key, {"_id": key, "offsets": []})
            window["offsets"] = [*window["offsets"], *sorted(set(offsets) - set(window["offsets"]))]
        for key, partitions in (by_value or {}).items():
            window = self.listing.setdefault(key, {"_id": key})
            for p, offsets in partitions.items():
                window[f"o{p}"] = [*window.get(f"o{p}", []), *sorted(offsets)]

    async def load_listing(self, keys: Iterable[str]) -> list[Document]:
        return [self.listing[k] for k in keys if k in self.listing]

    async def load_listed(self, ids: Iterable[str]) -> dict[str, Document]:
        return {i: {k: v for k, v in self.submissions[i].items() if k not in ("history", "valid")}
                for i in ids if i in self.submissions}

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]:
        return {i: self.submissions[i] for i in ids if i in self.submissions}

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]:
        return {k: self.views[k] for k in keys if k in self.views}

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        self.views.update(docs)
        self.view_writes += 1

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
                         and matches(d, query) and (after is None or d["bucket"] > after)), key=shard_order)
        return buckets(view, shards, count)[:limit]

    async def load_progress(self) -> list[Document]:
        return [dict(d) for _, d in sorted(self.progress.items())]

    async def save_progress(self, docs: Iterable[Document]) -> None:
        for doc in docs:
            held = self.progress.get(doc["_id"]) or {}
            kept = {**held, **doc, "next_offset": max(doc["next_offset"], held.get("next_offset", 0))}
            for least in FROM_FIELDS:
                if least in held:
                    kept[least] = min(held[least], doc.get(least, held[least]))
            self.progress[doc["_id"]] = kept
