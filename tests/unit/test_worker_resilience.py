"""The shared consume loop: retries within a time budget, exit after it, redelivery instead of stale commits, lag."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect

from shared.errors import InfrastructureUnavailable
from shared.lifecycle import (
    LifecycleSettings,
    StopRequested,
    clear_stop_request,
    request_stop,
    sleep_unless_stopped,
    unless_stopped,
)
from shared.worker import Batch, BatchWorker

TP = TopicPartition("t", 0)


@dataclass
class Record:
    offset: int
    key: bytes = b"k"
    value: bytes = b"{}"
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass
class FakeConsumer:
    batches: list[Batch]
    end: int = 0
    _client: Any = None
    started: bool = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Batch:
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(0.005)
        return {}

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    def last_stable_offset(self, tp: TopicPartition) -> int:
        return self.end

    def highwater(self, tp: TopicPartition) -> int:
        return self.end

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.end for tp in partitions}


def batch(first: int, size: int = 3) -> Batch:
    return {TP: [Record(offset) for offset in range(first, first + size)]}


@dataclass
class Worker(BatchWorker):
    """Fails `failures` times (with `error`) before each batch goes through; records what was done."""

    consumer_batches: list[Batch] = field(default_factory=list)
    failures: int = 0
    error: BaseException = field(default_factory=lambda: AutoReconnect("store away"))
    hang_s: float = 0.0
    attempts: int = 0
    done: list[int] = field(default_factory=list)
    fatal: list[BaseException] = field(default_factory=list)
    settings: LifecycleSettings = field(default_factory=lambda: LifecycleSettings(
        retry_budget_s=10, retry_max_delay_s=0.001, batch_timeout_s=5, probe_interval_s=60))
    name: str = "test-worker"
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        BatchWorker.__init__(self, lifecycle=self.settings, on_fatal=self._fatal)
        self.service = self.name

    def _fatal(self, exc: BaseException) -> None:
        self.fatal.append(exc)
        self.progress.set()

    def make_consumer(self) -> Any:
        return FakeConsumer(self.consumer_batches, end=100)

    async def process(self, batch: Batch) -> None:
        self.attempts += 1
        self.progress.set()
        if self.hang_s:
            hang, self.hang_s = self.hang_s, 0.0
            await asyncio.sleep(hang)
        if self.failures:
            self.failures -= 1
            raise self.error
        self.done.append(batch[TP][0].offset)
        self.progress.set()

    async def until(self, condition: Any, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                await self.progress.wait()
                self.progress.clear()


async def run_until(worker: Worker, condition: Any, timeout: float = 5.0) -> None:
    await worker.start()
    try:
        await worker.until(condition, timeout)
    finally:
        await worker.stop()


async def test_a_batch_is_retried_through_many_store_failures_while_the_budget_lasts() -> None:
    worker = Worker(consumer_batches=[batch(0), batch(3)], failures=12)
    await run_until(worker, lambda: len(worker.done) == 2)
    assert worker.done == [0, 3]
    assert worker.attempts == 14
    assert not worker.fatal


async def test_a_batch_failing_past_the_budget_ends_the_process() -> None:
    worker = Worker(consumer_batches=[batch(0)], failures=10**6,
                    settings=LifecycleSettings(retry_budget_s=0.2, retry_max_delay_s=0.01, probe_interval_s=60))
    await run_until(worker, lambda: worker.fatal)
    [fatal] = worker.fatal
    assert isinstance(fatal, InfrastructureUnavailable)
    assert isinstance(fatal.__cause__, AutoReconnect)
    assert worker.attempts > 1 and not worker.done


async def test_a_batch_whose_partitions_were_taken_away_is_dropped_for_redelivery_not_retried() -> None:
    worker = Worker(consumer_batches=[batch(0), batch(3)], failures=1, error=CommitFailedError("rebalanced"),
                    name="test-rebalanced")
    await run_until(worker, lambda: worker.done == [3])
    assert worker.attempts == 2 and not worker.fatal
    assert REGISTRY.get_sample_value("dmp_consumer_batches_abandoned_total",
                                     {"service": "test-rebalanced", "reason": "rebalanced"}) == 1


async def test_stopping_while_a_batch_keeps_failing_is_quick_and_commits_nothing() -> None:
    worker = Worker(consumer_batches=[batch(0)], failures=10**6,
                    settings=LifecycleSettings(retry_budget_s=600, retry_max_delay_s=5, probe_interval_s=60))
    await worker.start()
    await worker.until(lambda: worker.attempts >= 3)
    started = time.monotonic()
    await worker.stop()
    assert time.monotonic() - started < 1.0
    assert not worker.done and not worker.fatal


async def test_one_attempt_is_bounded_in_time_so_a_hung_store_call_is_retried() -> None:
    worker = Worker(consumer_batches=[batch(0)], hang_s=30,
                    settings=LifecycleSettings(retry_budget_s=10, retry_max_delay_s=0.01, batch_timeout_s=0.1,
                                               probe_interval_s=60))
    await run_until(worker, lambda: worker.done)
    assert worker.done == [0] and worker.attempts == 2


async def test_lag_counts_the_batch_in_hand_as_not_done() -> None:
    worker = Worker(name="test-lag")
    worker.consumer = worker.make_consumer()
    worker._in_hand = {TP: 40}
    labels = {"service": "test-lag", "topic": "t", "partition": "0"}
    worker._set_lag({TP: 100})
    assert REGISTRY.get_sample_value("dmp_consumer_lag", labels) == 60
    worker._forget_revoked(set())
    assert REGISTRY.get_sample_value("dmp_consumer_lag", labels) is None


async def test_a_stop_request_ends_start_up_waits_at_once() -> None:
    try:
        waiting = asyncio.create_task(unless_stopped(asyncio.sleep(30), "a long wait"))
        await asyncio.sleep(0.05)
        request_stop()
        async with asyncio.timeout(1):
            with pytest.raises(StopRequested):
                await waiting
        assert await sleep_unless_stopped(30) is True
    finally:
        clear_stop_request()
    assert await sleep_unless_stopped(0.01) is False


async def test_aggregate_lets_the_broker_hold_a_fetch_only_briefly() -> None:
    """A fetch held for partitions whose only news is a committed transaction was answered when Kafka's
    500 ms wait ran out; aggregate's consumer asks for its own, short wait (a setting)."""
    from services.aggregate.settings import AggregateSettings
    from services.aggregate.worker import make_consumer

    for wait in (50, 20):
        consumer = make_consumer(AggregateSettings(fetch_wait_ms=wait), "group")
        try:
            assert consumer._fetch_max_wait_ms == wait
        finally:
            await consumer.stop()
    assert AggregateSettings().fetch_wait_ms < 500
