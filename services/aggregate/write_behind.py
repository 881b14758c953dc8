"""A rebuild's repository: a batch is projected in memory, and its writes go to the store while the next is projected.

A rebuilt generation has one writer, the replay (rebuild.py), until it is swapped in. `apply_records` runs
against a `WriteBehind` without waiting for the store: what it saves is held as the batch's writes, and what
it loads comes from them, from the documents last written (kept while they fit) or else from the store.
`flush` then makes the batch durable in the order the live worker writes one (projection.py): the views and
the listing entries first, then the submission records and progress; the caller commits the offsets after.
One batch is written at a time, so the store receives exactly the live path's sequence of writes; only the
projecting of batch N+1 (decoding, deltas: work in this process) overlaps the store's work on batch N.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TypeVar

from services.aggregate.repository import ViewKey, Writes
from services.aggregate.writer_cache import held_or_loaded, keep, used
from shared.store import Document, all_of

K = TypeVar("K", bound=Hashable)


@dataclass
class Held:
    """One batch's writes, as `apply_records` made them."""

    views: dict[ViewKey, Document] = field(default_factory=dict)
    new_views: set[ViewKey] = field(default_factory=set)
    submissions: dict[str, Document] = field(default_factory=dict)
    new_submissions: set[str] = field(default_factory=set)
    listing: list[Document] = field(default_factory=list)
    windows: dict[str, set[int]] = field(default_factory=dict)
    values: dict[str, dict[int, set[int]]] = field(default_factory=dict)
    progress: list[Document] = field(default_factory=list)


class WriteBehind:
    """`Writes` whose saves are held until `flush`; loads see held and in-flight documents first."""

    def __init__(self, inner: Writes, max_submissions: int, max_views: int) -> None:
        self.inner = inner
        self.max_submissions, self.max_views = max_submissions, max_views
        self.held = Held()
        """The batch being projected."""
        self.flushing = Held()
        """The batch being written (its documents are not all in the store yet)."""
        self._submissions: OrderedDict[str, Document] = OrderedDict()
        self._views: OrderedDict[ViewKey, Document] = OrderedDict()

    def take(self) -> Held:
        """The writes held so far, as the batch to flush next (the one before must be written); holding starts
        anew, and loads see the batch taken until it is written."""
        self.flushing, self.held = self.held, Held()
        return self.flushing

    async def flush(self, batch: Held) -> None:
        """Write `batch` (the one taken last): views and listing, then records and progress."""
        await all_of(self.inner.save_views(batch.views, batch.new_views),
                     self.inner.save_listing(batch.listing, batch.windows, batch.values))
        await all_of(self.inner.save_submissions(batch.submissions.values(), batch.new_submissions),
                     self.inner.save_progress(batch.progress))
        keep(self._views, self.max_views, batch.views.items())
        keep(self._submissions, self.max_submissions, batch.submissions.items())
        self.flushing = Held()

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]:
        return await held_or_loaded(ids, lambda key: _held(key, self.held.submissions, self.flushing.submissions,
                                                           self._submissions), self.inner.load_submissions)

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]:
        return await held_or_loaded(keys, lambda key: _held(key, self.held.views, self.flushing.views, self._views),
                                    self.inner.load_views)

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        self.held.views.update(docs)
        self.held.new_views |= new

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None:
        for doc in docs:
            self.held.submissions[doc["_id"]] = doc
        self.held.new_submissions |= new

    async def save_progress(self, docs: Iterable[Document]) -> None:
        self.held.progress.extend(docs)

    async def load_listing(self, keys: Iterable[str]) -> list[Document]:
        wanted = set(keys)
        held = [e for e in (*self.held.listing, *self.flushing.listing) if e["_id"] in wanted]
        stored = await self.inner.load_listing(wanted - {e["_id"] for e in held}) if len(held) < len(wanted) else []
        return held + stored

    async def save_listing(self, entries: Iterable[Document],
                           by_submitter: Mapping[str, Iterable[int]] | None = None,
                           by_value: Mapping[str, Mapping[int, Iterable[int]]] | None = None) -> None:
        self.held.listing.extend(entries)
        for key, offsets in (by_submitter or {}).items():
            self.held.windows.setdefault(key, set()).update(offsets)
        for key, partitions in (by_value or {}).items():
            for partition, offsets in partitions.items():
                self.held.values.setdefault(key, {}).setdefault(partition, set()).update(offsets)


def _held(key: K, held: dict[K, Document], flushing: dict[K, Document],
          kept: OrderedDict[K, Document]) -> Document | None:
    doc = held.get(key)
    if doc is None:
        doc = flushing.get(key)
    return doc if doc is not None else used(kept, key)

