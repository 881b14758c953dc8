"""aggregate's writer cache: each document read from the store once while owned, forgotten on doubt."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet

import pytest

from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.repository import ViewKey
from services.aggregate.writer_cache import WriterCache
from shared.store import Document


class CountingRepository(InMemoryRepository):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []
        self.fail_writes = False

    async def load_submissions(self, ids: Iterable[str]) -> dict[str, Document]:
        ids = list(ids)
        self.reads += ids
        return await super().load_submissions(ids)

    async def load_views(self, keys: Iterable[ViewKey]) -> dict[ViewKey, Document]:
        keys = list(keys)
        self.reads += [key for _, key in keys]
        return await super().load_views(keys)

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        items = list(docs.items())
        await super().save_views(dict(items[:1]))  # a bulk write that lands in part
        if self.fail_writes:
            raise ConnectionError("store gone")
        await super().save_views(dict(items[1:]))


async def test_what_was_read_or_written_is_not_read_again() -> None:
    repo = CountingRepository()
    cache = WriterCache(repo)
    await repo.save_submissions([{"_id": "a", "v": 1}])
    assert await cache.load_submissions(["a", "b"]) == {"a": {"_id": "a", "v": 1}}
    await cache.save_submissions([{"_id": "b", "v": 2}])
    await cache.save_views({("seizures", "k#p0"): {"_id": "k#p0", "cases": 1}})
    assert await cache.load_submissions(["a", "b"]) == {"a": {"_id": "a", "v": 1}, "b": {"_id": "b", "v": 2}}
    assert await cache.load_views([("seizures", "k#p0")]) == {("seizures", "k#p0"): {"_id": "k#p0", "cases": 1}}
    assert repo.reads == ["a", "b"]  # absent documents are read again: another event may have created them


async def test_forget_and_a_failed_write_send_every_read_back_to_the_store() -> None:
    repo = CountingRepository()
    cache = WriterCache(repo)
    views = {("seizures", "k#p0"): {"_id": "k#p0", "cases": 1}, ("seizures", "j#p0"): {"_id": "j#p0", "cases": 1}}
    await cache.save_views(views)
    repo.fail_writes = True
    with pytest.raises(ConnectionError):
        await cache.save_views({key: {**doc, "cases": 2} for key, doc in views.items()})
    loaded = await cache.load_views(views)
    assert sorted(repo.reads) == ["j#p0", "k#p0"]
    assert loaded[("seizures", "k#p0")]["cases"] == 2  # what the store holds after the partial write
    cache.forget()
    await cache.load_views(views)
    assert len(repo.reads) == 4


async def test_it_keeps_at_most_its_limit_least_recently_used_first_out() -> None:
    repo = CountingRepository()
    cache = WriterCache(repo, max_submissions=2)
    await cache.save_submissions([{"_id": i} for i in ("a", "b", "c")])
    await cache.load_submissions(["a", "b", "c"])
    assert repo.reads == ["a"]
