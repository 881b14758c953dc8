"""The consume loop both consumers share: batches, bounded retries, graceful stop, fatal exit."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import Counter, Histogram

from shared.errors import InfrastructureUnavailable
from shared.kafka import broker_reachable

log = logging.getLogger(__name__)

Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]

EVENTS_CONSUMED = Counter("dmp_events_consumed_total", "Events consumed", ["service", "topic"])
BATCH_SIZE = Histogram("dmp_consumer_batch_size", "Events per processed batch", ["service"],
                       buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000))
BATCH_SECONDS = Histogram("dmp_consumer_batch_seconds", "Time to process and commit one batch", ["service"])
BATCH_RETRIES = Counter("dmp_consumer_batch_retries_total", "Batches retried after an infrastructure error",
                        ["service"])


class BatchWorker(ABC):
    """Polls batches and hands each to `process`, which must make it durable and commit its offsets.

    A batch that fails on infrastructure is retried as it is, with backoff; after `max_attempts`
    the worker gives up and `on_fatal` is called, so the process exits and its supervisor restarts it.
    """

    service = "worker"

    def __init__(self, *, max_records: int = 500, max_attempts: int = 8,
                 on_fatal: Callable[[BaseException], None] | None = None) -> None:
        self.consumer: AIOKafkaConsumer | None = None
        self.max_records = max_records
        self.max_attempts = max_attempts
        self.on_fatal = on_fatal
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None

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

    async def start(self) -> None:
        await self.open()
        self.consumer = self.make_consumer()
        await self.consumer.start()
        self._task = asyncio.create_task(self._run(), name=f"{self.service}-loop")

    async def stop(self) -> None:
        """Finish the batch in hand, commit it, then close the clients."""
        self._stopping.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=30)
            except (TimeoutError, Exception):  # noqa: BLE001 - stopping regardless
                self._task.cancel()
        try:
            if self.consumer is not None:
                await self.consumer.stop()
        finally:
            await self.close()

    def assigned(self) -> bool:
        """True when the group has given this consumer partitions and the loop is running."""
        return (self.consumer is not None and bool(self.consumer.assignment()) and self._task is not None
                and not self._task.done())

    async def broker_ok(self) -> bool:
        """True when the consumer's connection to the broker answers a metadata request."""
        return self.consumer is not None and await broker_reachable(self.consumer._client)

    async def _run(self) -> None:
        assert self.consumer is not None
        try:
            while not self._stopping.is_set():
                batch = await self.consumer.getmany(timeout_ms=500, max_records=self.max_records)
                if batch:
                    await self._process_with_retries(batch)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self.failure = exc
            log.critical("consumer loop stopped", exc_info=exc)
            if self.on_fatal is not None:
                self.on_fatal(exc)

    async def _process_with_retries(self, batch: Batch) -> None:
        size = sum(len(records) for records in batch.values())
        for tp, records in batch.items():
            EVENTS_CONSUMED.labels(self.service, tp.topic).inc(len(records))
        BATCH_SIZE.labels(self.service).observe(size)
        for attempt in range(1, self.max_attempts + 1):
            try:
                with BATCH_SECONDS.labels(self.service).time():
                    await self.process(batch)
                return
            except (KafkaError, InfrastructureUnavailable, OSError, TimeoutError) as exc:
                if attempt == self.max_attempts:
                    raise InfrastructureUnavailable(f"batch failed {attempt} times: {exc!r}") from exc
                BATCH_RETRIES.labels(self.service).inc()
                delay = min(0.25 * 2 ** (attempt - 1), 8.0)
                log.warning("batch failed, retrying", extra={"attempt": attempt, "delay_s": delay, "error": repr(exc)})
                await asyncio.sleep(delay)


def last_offsets(batch: Batch) -> dict[TopicPartition, int]:
    """The offsets to commit after `batch`: one past the last record of each partition."""
    return {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
