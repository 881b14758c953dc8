"""validate's consumer loop: received → rules → validated | rejected, exactly once per batch."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import Counter

from services.validate.decision import Outgoing, decide
from services.validate.settings import ValidateSettings
from shared.errors import InfrastructureUnavailable
from shared.health import labelled
from shared.kafka import EVENTS_PRODUCED, EVENTS_REJECTED, build_consumer, close_producer, ensure_topics
from shared.lifecycle import LifecycleSettings
from shared.service import FatalHandler
from shared.tracing import traced
from shared.worker import Batch, BatchWorker, last_offsets

log = logging.getLogger(__name__)

DECISIONS = Counter("dmp_validate_decisions_total", "Submissions decided", ["type", "outcome"])
TRANSACTIONAL_PRODUCER: dict[str, Any] = {"enable_idempotence": True, "acks": "all", "linger_ms": 2}
"""How validate's transactional producer is configured (the benchmark's passthrough uses the same).

A transaction costs about 30 ms however small on Kafka 3.9 (measured): one begun right after the
last meets CONCURRENT_TRANSACTIONS while the broker writes the last one's markers, and the client
waits 20 ms before it adds its partitions again (KAFKA-5477). Batches grow under load, so this
bounds how often validate commits, not how much it validates."""


class ValidateWorker(BatchWorker):
    """Each batch's events and its consumer offsets are committed in one Kafka transaction."""

    service = "validate"

    def __init__(self, settings: ValidateSettings, on_fatal: FatalHandler | None = None,
                 lifecycle: LifecycleSettings | None = None) -> None:
        self.settings = settings
        self.topics = settings.topics
        super().__init__(max_records=settings.max_batch, lifecycle=lifecycle, on_fatal=on_fatal)
        self.producer: AIOKafkaProducer | None = None

    def make_consumer(self) -> AIOKafkaConsumer:
        return build_consumer(self.settings.kafka_bootstrap_servers, [self.topics.received], self.settings.group_id,
                              max_poll_records=self.settings.max_batch)

    async def open(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap_servers, self.topics.all(), self.settings.topic_partitions)
        await self._start_producer()

    async def close(self) -> None:
        if self.producer is not None:
            await close_producer(self.producer, self.settings.producer_close_timeout_s)
            self.producer = None

    async def recover(self, error: BaseException) -> None:
        """A transaction that failed midway can leave the producer unusable: start a new one.

        The new producer has the same transactional id, so the broker fences the old one and aborts
        whatever transaction it left open; the batch is then sent again, whole, in a new transaction.
        """
        await self.close()
        await self._start_producer()

    async def _start_producer(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap_servers,
                                    transactional_id=self.settings.transactional_id, **TRANSACTIONAL_PRODUCER)
        try:
            async with asyncio.timeout(self.settings.producer_start_timeout_s):
                await producer.start()
        except BaseException:
            await close_producer(producer, self.settings.producer_close_timeout_s)
            raise
        self.producer = producer

    async def process(self, batch: Batch) -> None:
        if self.producer is None:
            raise InfrastructureUnavailable("no transactional producer (the broker was unreachable)")
        producer = self.producer
        outgoing = [decide(r.value, r.key, dict(r.headers), r.partition, r.offset, self.topics)
                    for records in batch.values() for r in records]
        async with producer.transaction():
            sent = [await producer.send(o.topic, value=o.value, key=o.key.encode(), headers=o.headers)
                    for o in outgoing]
            await asyncio.gather(*sent)
            await producer.send_offsets_to_transaction(last_offsets(batch), self.settings.group_id)
        for o in outgoing:
            _produced(self.service, o.topic).inc()
            _decisions(o.type or "unknown", "validated" if o.accepted else "rejected").inc()
            if not o.accepted:
                _rejected(self.service, self.topics.received).inc()
            _log_decision(o)


_produced, _decisions, _rejected = labelled(EVENTS_PRODUCED), labelled(DECISIONS), labelled(EVENTS_REJECTED)


def _log_decision(outgoing: Outgoing) -> None:
    """One line per decision, with the submission's trace id: rejections at info, the rest at debug."""
    level = logging.DEBUG if outgoing.accepted else logging.INFO
    if log.isEnabledFor(level):
        with traced(outgoing.trace_id or None):
            log.log(level, "submission validated" if outgoing.accepted else "submission rejected",
                    extra={"submission_id": outgoing.key, "type": outgoing.type, "topic": outgoing.topic})
