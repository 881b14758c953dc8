"""The one writer's copies of what it last read or wrote, in front of a repository."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import TypeVar

from services.aggregate.repository import ViewKey, Writes
from shared.store import Document

K = TypeVar("K", bound=Hashable)

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

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]:
        return await self._load(self._submissions, self.max_submissions, ids, self.inner.load_submissions)

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]:
        return await self._load(self._views, self.max_views, keys, self.inner.load_views)

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        await self._saving(self.inner.save_views(docs, new))
        keep(self._views, self.max_views, docs.items())

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None:
        docs = list(docs)
        await self._saving(self.inner.save_submissions(docs, new))
        keep(self._submissions, self.max_submissions, ((d["_id"], d) for d in docs))

    async def save_progress(self, docs: Iterable[Document]) -> None:
        await self.inner.save_progress(docs)

    async def save_listing(self, entries: Iterable[Document],
                           by_submitter: Mapping[str, Iterable[int]] | None = None,
                           by_value: Mapping[str, Mapping[int, Iterable[int]]] | None = None) -> None:
        await self.inner.save_listing(entries, by_submitter, by_value)

    async def load_listing(self, keys: Iterable[str]) -> list[Document]:
        return await self.inner.load_listing(keys)

    async def _saving(self, write: Awaitable[None]) -> None:
        try:
            await write
        except BaseException:
            self.forget()
            raise

    async def _load(self, kept: OrderedDict[K, Document], limit: int, keys: Iterable[K],
                    load: Callable[[list[K]], Awaitable[dict[K, Document]]]) -> dict[K, Document]:
        async def remembered(missing: list[K]) -> dict[K, Document]:
            loaded = await load(missing)
            keep(kept, limit, loaded.items())
            return loaded

        return await held_or_loaded(keys, lambda key: used(kept, key), remembered)


async def held_or_loaded(keys: Iterable[K], held: Callable[[K], Document | None],
                         load: Callable[[list[K]], Awaitable[dict[K, Document]]]) -> dict[K, Document]:
    """The documents of `keys`: those `held` has, and the others from one `load` of them all."""
    found: dict[K, Document] = {}
    missing: list[K] = []
    for key in keys:
        doc = held(key)
        if doc is None:
            missing.append(key)
        else:
            found[key] = doc
    if missing:
        found.update(await load(missing))
    return found


def used(kept: OrderedDict[K, Document], key: K) -> Document | None:
    """The document kept under `key`, now the most recently used; None if none is."""
    doc = kept.get(key)
    if doc is not None:
        kept.move_to_end(key)
    return doc


def keep(kept: OrderedDict[K, Document], limit: int, items: Iterable[tuple[K, Document]]) -> None:
    """Remember `items` as the most recently used, dropping the least recently used beyond `limit`."""
    for key, doc in items:
        kept[key] = doc
        kept.move_to_end(key)
    while len(kept) > limit:
        kept.popitem(last=False)
