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


class TransactionWatch:
    """The topics' ends as a read_committed and a read_uncommitted consumer see them, asked over and over.

    A partition whose last stable offset is behind its high watermark holds records of a transaction
    still open: written, neither committed nor aborted yet.
    """

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self._committed: AIOKafkaConsumer | None = None
        self._uncommitted: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []

    async def start(self) -> None:
        self._committed, self._uncommitted = (
            AIOKafkaConsumer(bootstrap_servers=self.bootstrap, isolation_level=isolation, enable_auto_commit=False,
                             group_id=None) for isolation in ("read_committed", "read_uncommitted"))
        await self._committed.start()
        await self._uncommitted.start()
        await self._committed._client.force_metadata_update()
        self._partitions = [TopicPartition(topic, p) for topic in self.topics
                            for p in sorted(self._committed.partitions_for_topic(topic) or ())]
        assert self._partitions, f"no partitions found for {self.topics}"

    async def stop(self) -> None:
        for consumer in (self._committed, self._uncommitted):
            if consumer is not None:
                await consumer.stop()

    async def open_records(self) -> int:
        """How many records sit past the last stable offsets: records of transactions still open now.

        The high watermarks are asked first: both ends only grow, so a last stable offset behind a
        high watermark read before it is a record that was written and still is not settled.
        """
        assert self._committed is not None and self._uncommitted is not None, "start() first"
        high = await self._uncommitted.end_offsets(self._partitions)
        stable = await self._committed.end_offsets(self._partitions)
        return sum(max(0, high[tp] - stable[tp]) for tp in self._partitions)
