"""Comparing two generations of the views, row by row, in bounded memory.

Both sides are read a page at a time and looked up by `_id` (the one lookup every supported store
serves from an index): each side is streamed once in its stored order, and each page's rows are
fetched from the other side with one `$in` per collection. A view row is a bucket, the sum of its
shards (`<bucket>#p<partition>`, projection.py), so a page's buckets are read whole from both sides.
Memory holds a page, never a whole generation.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from services.aggregate.mongo_repository import MongoRepository
from services.aggregate.projection import merge_shards, shard_key
from services.aggregate.record_codec import unpack
from services.aggregate.repository import VIEWS
from shared.store import Document, both, find_by_id

PAGE = 1000
RECORDS = "submissions"
"""The name a difference in a submission record carries in place of a view's."""
Progress = Callable[[int], None]


@dataclass(frozen=True)
class Difference:
    """One row that is not the same in the live and the rebuilt generation."""

    view: str
    """A view name, or `submissions` for a submission record."""
    key: str
    kind: Literal["only_live", "only_rebuilt", "differs"]
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """For `differs`: field → (live value, rebuilt value)."""


def visible(doc: Document) -> Document:
    """What a reader sees of a merged bucket: its figures and dimensions, not its bookkeeping."""
    return {k: v for k, v in doc.items() if k not in ("_id", "wm")}


def record_fields(doc: Document) -> Document:
    """What must agree between two generations' records of one submission."""
    valid = doc.get("valid") or {}
    return {"type": doc.get("type"), "status": doc.get("status"), "version": doc.get("version"),
            "valid_seq": valid.get("seq"), "valid_hash": valid.get("hash"), "errors": doc.get("errors")}


def diff_rows(view: str, live: dict[str, Document], rebuilt: dict[str, Document]) -> list[Difference]:
    """The differences between two sets of rows keyed alike."""
    found = []
    for key in sorted(live.keys() | rebuilt.keys()):
        a, b = live.get(key), rebuilt.get(key)
        if b is None:
            found.append(Difference(view, key, "only_live"))
        elif a is None:
            found.append(Difference(view, key, "only_rebuilt"))
        elif a != b:
            found.append(Difference(view, key, "differs", {name: (a.get(name), b.get(name))
                                                           for name in sorted(a.keys() | b.keys())
                                                           if a.get(name) != b.get(name)}))
    return found


async def _pages(collection: Any, fields: dict[str, int] | None = None) -> AsyncIterator[list[Document]]:
    """Every document of `collection`, a page at a time, in the order the store keeps them (no sort: a
    sort the store cannot take from an index would hold the whole collection in its memory)."""
    page: list[Document] = []
    async for doc in collection.find({}, fields, batch_size=PAGE):
        page.append(doc)
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


async def _shards(repository: MongoRepository, view: str, keys: Iterable[str],
                  sources: Sequence[str]) -> dict[str, list[Document]]:
    """The stored shards of the buckets `keys` of `view`, by bucket, in `_id` order."""
    shards: dict[str, list[Document]] = {}
    ids = [shard_key(key, source) for key in keys for source in sources]
    for doc in sorted(await find_by_id(repository.view(view), ids), key=lambda d: d["_id"]):
        shards.setdefault(doc["bucket"], []).append(doc)
    return shards


def _rows(view: str, shards: dict[str, list[Document]]) -> dict[str, Document]:
    """Buckets as a reader sees them: shards merged, empty buckets absent."""
    merged = {key: merge_shards(view, docs) for key, docs in shards.items()}
    return {key: visible(doc) for key, doc in merged.items() if int(doc.get("submissions", 0)) > 0}


async def _records(repository: MongoRepository, ids: Sequence[str]) -> dict[str, Document]:
    return {d["_id"]: record_fields(unpack(d)) for d in await find_by_id(repository.submissions, list(ids))}


async def _compare_view(live: MongoRepository, rebuilt: MongoRepository, view: str, sources: Sequence[str],
                        progress: Progress) -> tuple[int, list[Difference]]:
    """Every bucket of `view` compared once: the live side's in a first pass, then those only the rebuilt
    side has. A bucket is taken up at its first shard (by `_id`), so no set of keys is kept."""
    compared, found = 0, []
    for side in (live, rebuilt):
        async for page in _pages(side.view(view), {"_id": 1, "bucket": 1}):
            keys = {d["bucket"] for d in page if "bucket" in d}
            a, b = await both(_shards(live, view, keys, sources), _shards(rebuilt, view, keys, sources))
            mine = a if side is live else b
            firsts = {d["_id"] for d in page}
            keys = {k for k in keys if mine.get(k) and mine[k][0]["_id"] in firsts
                    and (side is live or k not in a)}
            rows_a = _rows(view, {k: a[k] for k in keys if k in a})
            rows_b = _rows(view, {k: b[k] for k in keys if k in b})
            compared += len(rows_a.keys() | rows_b.keys())
            found += diff_rows(view, rows_a, rows_b)
            progress(len(page))
    return compared, found


async def _compare_records(live: MongoRepository, rebuilt: MongoRepository,
                           progress: Progress) -> tuple[int, list[Difference]]:
    compared, found = 0, []
    async for page in _pages(live.submissions):
        a = {d["_id"]: record_fields(unpack(d)) for d in page}
        b = await _records(rebuilt, list(a))
        compared += len(a)
        found += diff_rows(RECORDS, a, b)
        progress(len(page))
    async for page in _pages(rebuilt.submissions, {"_id": 1}):
        ids = [d["_id"] for d in page]
        known = {d["_id"] for d in await find_by_id(live.submissions, ids)}
        missing = [i for i in ids if i not in known]
        b = await _records(rebuilt, missing)
        compared += len(b)
        found += diff_rows(RECORDS, {}, b)
        progress(len(page))
    return compared, found


async def _compare_only(live: MongoRepository, rebuilt: MongoRepository, only: Iterable[tuple[str, str]],
                        sources: Sequence[str]) -> tuple[int, list[Difference]]:
    by_view: dict[str, list[str]] = {}
    for view, key in only:
        by_view.setdefault(view, []).append(key)
    compared, found = 0, list[Difference]()
    for view, keys in sorted(by_view.items()):
        if view == RECORDS:
            a, b = await both(_records(live, keys), _records(rebuilt, keys))
        else:
            shards_a, shards_b = await both(_shards(live, view, keys, sources), _shards(rebuilt, view, keys, sources))
            a, b = _rows(view, shards_a), _rows(view, shards_b)
        compared += len(a.keys() | b.keys())
        found += diff_rows(view, a, b)
    return compared, found


async def compare(live: MongoRepository, rebuilt: MongoRepository, sources: Sequence[str],
                  only: Iterable[tuple[str, str]] | None = None,
                  progress: Progress | None = None) -> tuple[int, list[Difference]]:
    """(rows compared, differences) between every view and submission record of two generations.

    `sources` are the validated topic's partitions (a bucket's shards); `only` limits the comparison to
    those (view, key) pairs (a re-check of earlier differences); `progress` is told of every page read.
    """
    if only is not None:
        return await _compare_only(live, rebuilt, only, sources)
    tell = progress or (lambda _rows: None)
    compared, found = 0, list[Difference]()
    for view in VIEWS:
        n, diffs = await _compare_view(live, rebuilt, view, sources, tell)
        compared, found = compared + n, found + diffs
    n, diffs = await _compare_records(live, rebuilt, tell)
    return compared + n, sorted(found + diffs, key=lambda d: (d.view, d.key))


@dataclass
class Pace:
    """Counts work done against a total and says, at most every `every` seconds, how far, how fast, how long."""

    say: Callable[[str], None]
    what: str
    total: int | None = None
    every: float = 2.0
    done: int = 0
    started: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)

    def __call__(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.say(self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self.started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.what}: {self.done:,}"
        if self.total:
            text += f" of {self.total:,} ({100 * self.done / self.total:.0f}%)"
        text += f", {rate:,.0f}/s"
        if self.total and rate > 0:
            text += f", about {max(self.total - self.done, 0) / rate:,.0f} s left"
        return text
