"""The order of aggregate's writes for one batch: views, then records together with progress and audit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

import pytest
from aiokafka import TopicPartition

from bench.payloads import envelopes, received, validated
from services.aggregate.apply import apply_records
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.repository import ViewKey
from shared.audit import InMemoryAuditLog
from shared.store import Document
from shared.topics import Topics

TOPICS = Topics()


class Record:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset, self.value = offset, value


async def _step(log: list[str], name: str) -> None:
    log.append(f"start {name}")
    for _ in range(3):  # a write that takes a few turns of the loop, as a round trip to the store does
        await asyncio.sleep(0)
    log.append(f"end {name}")


class LoggingRepository(InMemoryRepository):
    def __init__(self, log: list[str], fail: str | None = None) -> None:
        super().__init__()
        self.log, self.fail = log, fail

    async def _write(self, name: str) -> None:
        await _step(self.log, name)
        if name == self.fail:
            raise ConnectionError(f"{name}: store gone")

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        await self._write("views")
        await super().save_views(docs, new)

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None:
        docs = list(docs)
        await self._write("submissions")
        await super().save_submissions(docs, new)

    async def save_progress(self, docs: Iterable[Document]) -> None:
        docs = list(docs)
        await self._write("progress")
        await super().save_progress(docs)


class LoggingAudit(InMemoryAuditLog):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def record(self, entries: Iterable[Document]) -> None:
        entries = list(entries)
        await _step(self.log, "audit")
        await super().record(entries)


def batch() -> dict[TopicPartition, list[Any]]:
    """Four new submissions' received events and their validated events, in one batch."""
    events = received(envelopes(4, seed=5))
    decided, _ = validated(events, TOPICS)
    return {TopicPartition(TOPICS.received, 0): [Record(i, e.value) for i, e in enumerate(events)],
            TopicPartition(TOPICS.validated, 0): [Record(i, e.value) for i, e in enumerate(decided)]}


async def test_records_progress_and_audit_are_written_together_after_the_views() -> None:
    log: list[str] = []
    repository, audit = LoggingRepository(log), LoggingAudit(log)
    await apply_records(repository, batch(), TOPICS, audit)
    views_done = log.index("end views")
    together = ("submissions", "progress", "audit")
    assert all(log.index(f"start {name}") > views_done for name in together), log
    first_end = min(log.index(f"end {name}") for name in together)
    assert all(log.index(f"start {name}") < first_end for name in together), log  # in flight at once
    assert len(repository.submissions) == 4 and len(audit.entries) == 4
    assert {p["next_offset"] for p in repository.progress.values()} == {4}


async def test_a_failed_record_write_fails_the_batch_once_the_others_have_finished() -> None:
    log: list[str] = []
    repository = LoggingRepository(log, fail="submissions")
    with pytest.raises(ConnectionError, match="submissions"):
        await apply_records(repository, batch(), TOPICS, LoggingAudit(log))
    assert {"end progress", "end audit"} <= set(log)  # nothing left running when the batch is retried
    assert not repository.submissions
