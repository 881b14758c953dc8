"""The consume loop both consumers share: batches, bounded retries, lag, graceful stop, fatal exit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import Counter, Gauge, Histogram
from pymongo.errors import ConnectionFailure, ExecutionTimeout, WTimeoutError

from shared.errors import InfrastructureUnavailable
from shared.kafka import broker_reachable
from shared.lifecycle import LifecycleSettings, stop_requested, unless_stopped
from shared.liveness import Heartbeat
from shared.tracing import trace_id_of

log = logging.getLogger(__name__)

Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    KafkaError, InfrastructureUnavailable, OSError, TimeoutError, ConnectionFailure, ExecutionTimeout, WTimeoutError)
"""Errors that say the broker or the store is not there (retry the batch), not that the data is wrong."""

EVENTS_CONSUMED = Counter("dmp_events_consumed_total", "Events consumed", ["service", "topic"])
BATCH_SIZE = Histogram("dmp_consumer_batch_size", "Events per processed batch", ["service"],
                       buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000))
BATCH_SECONDS = Histogram("dmp_consumer_batch_seconds", "Time to process and commit one batch", ["service"])
BATCH_RETRIES = Counter("dmp_consumer_batch_retries_total", "Batches retried after an infrastructure error",
                        ["service"])
BATCHES_ABANDONED = Counter("dmp_consumer_batches_abandoned_total",
                            "Batches given up uncommitted, to be redelivered (rebalanced or stopping)",
                            ["service", "reason"])
CONSUMER_LAG = Gauge("dmp_consumer_lag", "Events on the partition not yet processed: end offset - position",
                     ["service", "topic", "partition"])
CONSUMER_STALLED = Gauge("dmp_consumer_stalled", "1 while a batch keeps failing on the broker or store",
                         ["service"])


class BatchWorker(ABC):
    """Polls batches and hands each to `process`, which must make it durable and commit its offsets.

    A batch that fails on infrastructure is retried as it is, with backoff, for up to
    `lifecycle.retry_budget_s` (each attempt bounded by `batch_timeout_s`); then the worker gives up
    and `on_fatal` is called, so the process exits non-zero and its supervisor restarts it. A batch
    whose partitions were reassigned meanwhile, or in hand when the process is asked to stop, is
    dropped uncommitted: the group redelivers it. Lag per partition is refreshed after every batch
    and, so that it keeps growing while a batch is stuck, every `probe_interval_s`.

    Every step of the loop (a poll, an attempt, a pause between attempts) sets `heartbeat`'s
    deadline: a step that overruns it by `stall_grace_s` makes the loop stuck, and /health/live 503.
    """

    service = "worker"

    def __init__(self, *, max_records: int = 500, max_attempts: int | None = None,
                 lifecycle: LifecycleSettings | None = None,
                 on_fatal: Callable[[BaseException], None] | None = None) -> None:
        self.consumer: AIOKafkaConsumer | None = None
        self.max_records = max_records
        self.max_attempts = max_attempts
        self.lifecycle = lifecycle or LifecycleSettings()
        self.on_fatal = on_fatal
        self.failure: BaseException | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None
        self._in_hand: dict[TopicPartition, int] = {}
        self._lag_labels: set[TopicPartition] = set()
        self.heartbeat = Heartbeat(f"{self.service} consumer loop", self.lifecycle.stall_grace_s)

    @abstractmethod
    def make_consumer(self) -> AIOKafkaConsumer:
        """The consumer to poll (aiokafka clients must be made inside the running loop)."""

    @abstractmethod
    async def process(self, batch: Batch) -> None:
        """Make the batch's effects durable, then commit its offsets."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Start the clients `process` needs besides the consumer."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Stop those clients."""

    async def recover(self, error: BaseException) -> None:  # noqa: B027 - optional hook
        """Called after a failed attempt, before the next: e.g. replace a client the failure left unusable."""

    async def start(self) -> None:
        """Start the clients and the loop; gives up at once (StopRequested) if the process is asked to stop."""
        try:
            await unless_stopped(self.open(), f"{self.service} start-up")
            self.consumer = self.make_consumer()
            await unless_stopped(self.consumer.start(), "the consumer's first connection")
        except BaseException:
            await self._close_clients()
            raise
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-loop")
        self._probe = asyncio.create_task(self._probe_lag(), name=f"{self.service}-lag")

    async def stop(self) -> None:
        """Finish the batch in hand (within `drain_timeout_s`), commit it, then close the clients."""
        self._stopping.set()
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task], timeout=self.lifecycle.drain_timeout_s)
            if not self._task.done():
                log.warning("the batch in hand did not finish in time; it will be redelivered",
                            extra={"drain_timeout_s": self.lifecycle.drain_timeout_s})
                BATCHES_ABANDONED.labels(self.service, "stopping").inc()
                self._task.cancel()
                await asyncio.gather(self._task, return_exceptions=True)
        await self._close_clients()

    async def _close_clients(self) -> None:
        try:
            if self.consumer is not None:
                # Leaving the group needs the broker; do not wait long for one that is gone.
                async with asyncio.timeout(min(self.lifecycle.leave_timeout_s, self.lifecycle.drain_timeout_s)):
                    await self.consumer.stop()
        except Exception as exc:  # noqa: BLE001 - stopping regardless
            log.warning("consumer did not stop cleanly", extra={"error": repr(exc)})
        finally:
            await self.close()

    def assigned(self) -> bool:
        """True when the group has given this consumer partitions and the loop is running."""
        return (self.consumer is not None and bool(self.consumer.assignment()) and self._task is not None
                and not self._task.done())

    async def broker_ok(self) -> bool:
        """True when the consumer's connection to the broker answers a metadata request."""
        return self.consumer is not None and await broker_reachable(self.consumer._client)

    def _should_stop(self) -> bool:
        return self._stopping.is_set() or stop_requested()

    async def _run(self) -> None:
        assert self.consumer is not None
        try:
            while not self._should_stop():
                self.heartbeat.step(self.lifecycle.batch_timeout_s)
                batch = await self.consumer.getmany(timeout_ms=500, max_records=self.max_records)
                if batch:
                    await self._process_with_retries(batch)
                self._refresh_lag_from_fetches()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.failure = exc
            log.critical("consumer loop stopped", exc_info=exc)
            if self.on_fatal is not None:
                self.on_fatal(exc)
        finally:
            self.heartbeat.rest()

    async def _process_with_retries(self, batch: Batch) -> None:
        size = sum(len(records) for records in batch.values())
        for tp, records in batch.items():
            EVENTS_CONSUMED.labels(self.service, tp.topic).inc(len(records))
        BATCH_SIZE.labels(self.service).observe(size)
        self._log_events(batch)
        self._in_hand = {tp: records[0].offset for tp, records in batch.items() if records}
        assignment = _assignment_of(self.consumer)
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        try:
            while True:
                attempt += 1
                self.heartbeat.step(self.lifecycle.batch_timeout_s)
                try:
                    with BATCH_SECONDS.labels(self.service).time():
                        async with asyncio.timeout(self.lifecycle.batch_timeout_s):
                            await self.process(batch)
                    return
                except CommitFailedError as exc:
                    self._abandon("rebalanced", exc)
                    return
                except INFRASTRUCTURE_ERRORS as exc:
                    elapsed = loop.time() - started
                    if elapsed >= self.lifecycle.retry_budget_s or (
                            self.max_attempts is not None and attempt >= self.max_attempts):
                        raise InfrastructureUnavailable(
                            f"batch failed {attempt} times over {elapsed:.0f}s: {exc!r}") from exc
                    if self._should_stop():
                        self._abandon("stopping", exc)
                        return
                    if _assignment_of(self.consumer) is not assignment:
                        self._abandon("rebalanced", exc)
                        return
                    CONSUMER_STALLED.labels(self.service).set(1)
                    BATCH_RETRIES.labels(self.service).inc()
                    delay = min(0.25 * 2 ** (attempt - 1), self.lifecycle.retry_max_delay_s,
                                max(0.0, self.lifecycle.retry_budget_s - elapsed))
                    log.warning("batch failed, retrying", extra={
                        "attempt": attempt, "delay_s": delay, "elapsed_s": round(elapsed, 1),
                        "budget_s": self.lifecycle.retry_budget_s, "error": repr(exc)})
                    self.heartbeat.step(self.lifecycle.batch_timeout_s + delay)
                    try:
                        await self.recover(exc)
                    except INFRASTRUCTURE_ERRORS as again:
                        log.warning("could not recover yet", extra={"error": repr(again)})
                    if await self._pause(delay):
                        self._abandon("stopping", exc)
                        return
        finally:
            self._in_hand = {}
            CONSUMER_STALLED.labels(self.service).set(0)

    def _abandon(self, reason: str, error: BaseException) -> None:
        """Drop the batch uncommitted: the group delivers it again from the last commit."""
        BATCHES_ABANDONED.labels(self.service, reason).inc()
        log.warning("batch dropped uncommitted; it will be redelivered", extra={"reason": reason, "error": repr(error)})

    async def _pause(self, delay: float) -> bool:
        """Sleep up to `delay`; True (early) when the worker or the process is stopping."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + delay
        while not self._should_stop():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=min(0.1, remaining))
        return True

    def _log_events(self, batch: Batch) -> None:
        if not log.isEnabledFor(logging.DEBUG):
            return
        for tp, records in batch.items():
            for record in records:
                log.debug("event consumed", extra={
                    "topic": tp.topic, "partition": tp.partition, "offset": record.offset,
                    "key": record.key.decode(errors="replace") if record.key else None,
                    "trace_id": trace_id_of(record.headers)})

    # -- lag -------------------------------------------------------------------------------------

    def _position(self, tp: TopicPartition) -> int | None:
        """The next offset this worker will make durable on `tp` (the batch in hand counts as not done)."""
        if tp in self._in_hand:
            return self._in_hand[tp]
        state = _partition_state(self.consumer, tp)
        if state is None or not getattr(state, "has_valid_position", False):
            return None
        position: int = state.position
        return position

    def _set_lag(self, ends: Mapping[TopicPartition, int | None]) -> None:
        for tp, end in ends.items():
            position = self._position(tp)
            if end is None or position is None:
                continue
            CONSUMER_LAG.labels(self.service, tp.topic, str(tp.partition)).set(max(0, end - position))
            self._lag_labels.add(tp)

    def _forget_revoked(self, assigned: set[TopicPartition]) -> None:
        for tp in self._lag_labels - assigned:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(self.service, tp.topic, str(tp.partition))
        self._lag_labels &= assigned

    def _refresh_lag_from_fetches(self) -> None:
        """Lag from what the last fetches said about the partitions' ends (no request to the broker)."""
        if self.consumer is None:
            return
        assigned = set(self.consumer.assignment())
        ends: dict[TopicPartition, int | None] = {}
        for tp in assigned:
            with contextlib.suppress(Exception):
                stable = self.consumer.last_stable_offset(tp)
                ends[tp] = stable if stable is not None else self.consumer.highwater(tp)
        self._set_lag(ends)
        self._forget_revoked(assigned)

    async def _probe_lag(self) -> None:
        """Ask the broker for the partitions' ends now and then, so lag shows while a batch is stuck."""
        interval = self.lifecycle.probe_interval_s
        while True:
            await asyncio.sleep(interval)
            if self.consumer is None:
                continue
            assigned = set(self.consumer.assignment())
            if not assigned:
                continue
            try:
                async with asyncio.timeout(max(interval, 3.0)):
                    ends = await self.consumer.end_offsets(sorted(assigned))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - no answer now; the gauge keeps its last value
                log.debug("lag probe failed", extra={"error": repr(exc)})
                continue
            self._set_lag(ends)
            self._forget_revoked(assigned)


def _assignment_of(consumer: AIOKafkaConsumer | None) -> Any:
    """The consumer's current assignment object; aiokafka makes a new one at every rebalance."""
    subscription = getattr(getattr(consumer, "_subscription", None), "subscription", None)
    return getattr(subscription, "assignment", None)


def _partition_state(consumer: AIOKafkaConsumer | None, tp: TopicPartition) -> Any:
    assignment = _assignment_of(consumer)
    return assignment.state_value(tp) if assignment is not None else None


def last_offsets(batch: Batch) -> dict[TopicPartition, int]:
    """The offsets to commit after `batch`: one past the last record of each partition."""
    return {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
