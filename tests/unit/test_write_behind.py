"""A rebuild's write-behind repository: batches projected while the one before is written end as the live path's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from aiokafka import TopicPartition

from bench.payloads import envelopes, received, validated
from services.aggregate.apply import apply_records
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.repository import ViewKey
from services.aggregate.write_behind import WriteBehind
from shared.store import Document
from shared.topics import Topics

TOPICS = Topics()


class Record:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.value = offset, value


def batches() -> list[dict[TopicPartition, list[Any]]]:
    """Thirty submissions, a third of them sent again, their received and validated events cut into batches at
    different places, so that most submissions' events span two batches."""
    sent = envelopes(30, seed=11)
    events = received(sent + sent[::3])
    decided, _ = validated(events, TOPICS)
    incoming = [Record(i, e.value) for i, e in enumerate(events)]
    outgoing = [Record(i, e.value) for i, e in enumerate(decided)]
    cuts = [(incoming[start:start + 7], outgoing[max(start - 4, 0):start + 3]) for start in range(0, len(events), 7)]
    cuts.append(([], outgoing[len(events) - 4:]))
    return [{tp: records for tp, records in ((TopicPartition(TOPICS.received, 0), ins),
                                            (TopicPartition(TOPICS.validated, 0), outs)) if records}
            for ins, outs in cuts]


def progress(repository: InMemoryRepository) -> dict[str, tuple[int, int | None]]:
    return {key: (doc["next_offset"], doc.get("listed_from")) for key, doc in repository.progress.items()}


async def test_batches_projected_while_the_previous_is_written_store_what_the_live_path_stores() -> None:
    replayed = batches()
    live = InMemoryRepository()
    for batch in replayed:
        await apply_records(live, batch, TOPICS)

    store = InMemoryRepository()
    behind = WriteBehind(store, max_submissions=3, max_views=5)  # most documents are read back from the store
    writing: asyncio.Future[None] | None = None
    for batch in replayed:
        await apply_records(behind, batch, TOPICS)
        if writing is not None:
            await writing
        writing = asyncio.ensure_future(behind.flush(behind.take()))
    assert writing is not None
    await writing

    assert len(live.submissions) == 30 and live.views
    assert store.views == live.views
    assert store.submissions == live.submissions
    assert store.listing == live.listing
    assert progress(store) == progress(live)


class LoggingRepository(InMemoryRepository):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def _step(self, name: str) -> None:
        self.log.append(f"start {name}")
        for _ in range(3):  # a write that takes a few turns of the loop, as a round trip to the store does
            await asyncio.sleep(0)
        self.log.append(f"end {name}")

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        await self._step("views")
        await super().save_views(docs, new)

    async def save_listing(self, entries: Iterable[Document],
                           by_submitter: Mapping[str, Iterable[int]] | None = None,
                           by_value: Mapping[str, Mapping[int, Iterable[int]]] | None = None) -> None:
        entries = list(entries)
        await self._step("listing")
        await super().save_listing(entries, by_submitter, by_value)

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None:
        docs = list(docs)
        await self._step("submissions")
        await super().save_submissions(docs, new)

    async def save_progress(self, docs: Iterable[Document]) -> None:
        docs = list(docs)
        await self._step("progress")
        await super().save_progress(docs)


async def test_a_flush_writes_views_and_listing_before_records_and_progress() -> None:
    log: list[str] = []
    behind = WriteBehind(LoggingRepository(log), max_submissions=100, max_views=100)
    await apply_records(behind, batches()[1], TOPICS)
    assert log == []  # nothing is written until the batch is flushed
    await behind.flush(behind.take())
    first_done = max(log.index("end views"), log.index("end listing"))
    assert min(log.index("start submissions"), log.index("start progress")) > first_done, log
