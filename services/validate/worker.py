"""validate's consumer loop: received → rules → validated | rejected, exactly once per batch."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import Counter

from services.validate.decision import decide
from services.validate.settings import ValidateSettings
from shared.kafka import EVENTS_PRODUCED, build_consumer, ensure_topics
from shared.service import FatalHandler
from shared.worker import Batch, BatchWorker, last_offsets

DECISIONS = Counter("dmp_validate_decisions_total", "Submissions decided", ["type", "outcome"])


class ValidateWorker(BatchWorker):
    """Each batch's events and its consumer offsets are committed in one Kafka transaction."""

    service = "validate"

    def __init__(self, settings: ValidateSettings, on_fatal: FatalHandler | None = None) -> None:
        self.settings = settings
        self.topics = settings.topics
        super().__init__(max_records=settings.max_batch, on_fatal=on_fatal)
        self.producer: AIOKafkaProducer | None = None

    def make_consumer(self) -> AIOKafkaConsumer:
        return build_consumer(self.settings.kafka_bootstrap_servers, [self.topics.received], self.settings.group_id,
                              max_poll_records=self.settings.max_batch)

    async def open(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap_servers, self.topics.all(), self.settings.topic_partitions)
        self.producer = AIOKafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap_servers,
                                         transactional_id=self.settings.transactional_id,
                                         enable_idempotence=True, acks="all", linger_ms=2)
        await self.producer.start()

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def process(self, batch: Batch) -> None:
        assert self.producer is not None
        outgoing = [decide(r.value, r.key, dict(r.headers), r.partition, r.offset, self.topics)
                    for records in batch.values() for r in records]
        async with self.producer.transaction():
            sent = [await self.producer.send(o.topic, value=o.value, key=o.key.encode(), headers=o.headers)
                    for o in outgoing]
            await asyncio.gather(*sent)
            await self.producer.send_offsets_to_transaction(last_offsets(batch), self.settings.group_id)
        for o in outgoing:
            EVENTS_PRODUCED.labels(self.service, o.topic).inc()
            DECISIONS.labels(o.type or "unknown", "validated" if o.accepted else "rejected").inc()
