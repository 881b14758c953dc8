"""What a consumer of the fault suite's own sees on the topics, read from the beginning to their current end."""

from __future__ import annotations

import time
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition

Isolation = Literal["read_committed", "read_uncommitted"]


async def read_records(bootstrap: str, topics: list[str],
                       isolation: Isolation = "read_committed") -> dict[str, list[tuple[int, int, bytes]]]:
    """Every record a consumer with `isolation` sees in `topics` up to their end: (partition, offset, value)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation,
                                enable_auto_commit=False, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = []
        for topic in topics:
            await consumer._client.force_metadata_update()
            partitions += [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        seen: dict[str, list[tuple[int, int, bytes]]] = {t: [] for t in topics}
        deadline = time.monotonic() + 60
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            assert time.monotonic() < deadline, "the topics' ends not reached in 60s"
            batch = await consumer.getmany(timeout_ms=2000)
            for tp, records in batch.items():
                seen[tp.topic] += [(r.partition, r.offset, r.value or b"") for r in records]
        return seen
    finally:
        await consumer.stop()
