"""aggregate's consumer loop: events → submission records and view documents, then commit.

Several workers may share one consumer group. Each view document and submission record must have
exactly one writer (the store has no transactions or locks), so:

* the range assignor gives partition N of the received, validated and rejected topics (all keyed
  by submission id, with equal partition counts) to the same worker: a submission's record has
  one writer;
* view documents are sharded by validated partition (projection.py): a shard has one writer;
* a partition is handed over only between batches: when the group rebalances, the worker finishes
  and commits the batch in hand before giving partitions up, and drops what it fetched for
  partitions it no longer owns.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from prometheus_client import Histogram

from services.aggregate.apply import ReceivedOrder, apply_records
from services.aggregate.repository import Repository
from services.aggregate.settings import AggregateSettings
from services.aggregate.writer_cache import WriterCache
from shared.audit import AuditLog
from shared.kafka import ensure_topics
from shared.service import FatalHandler
from shared.worker import Batch, BatchWorker, last_offsets

COMMIT_SECONDS = Histogram("dmp_aggregate_commit_seconds", "Time to commit one batch's offsets to the broker")


def make_consumer(settings: AggregateSettings, group_id: str, listener: ConsumerRebalanceListener | None = None,
                  fetch_bytes: int = 1_048_576) -> AIOKafkaConsumer:
    """A manual-commit, read-committed consumer of the three topics with the range assignor, fetching up to
    `fetch_bytes` per partition at a time."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=settings.max_batch,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
        partition_assignment_strategy=(RangePartitionAssignor,),
        fetch_max_wait_ms=settings.fetch_wait_ms,
        max_partition_fetch_bytes=fetch_bytes,
    )
    consumer.subscribe(list(settings.topics.all()), listener=listener)
    return consumer


class AggregateWorker(BatchWorker):
    """Writes views first, then submission records together with progress and audit, then commits offsets
    (see projection.py)."""

    service = "aggregate"

    def __init__(self, settings: AggregateSettings, repository: Repository, audit: AuditLog | None = None,
                 on_fatal: FatalHandler | None = None, group_id: str | None = None) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.repository = repository
        self.audit = audit
        self.group_id = group_id or settings.group_id
        self.documents = WriterCache(repository)
        """What `process` reads and writes through: each document is read from the store once while owned."""
        self.order = ReceivedOrder()
        """Where the listing entries of each received partition go on from (apply.listing_entries)."""
        self.owned: set[TopicPartition] = set()
        self.assignments: list[frozenset[TopicPartition]] = []
        """Every assignment this worker was given, in order (for operators and tests)."""
        self._working = asyncio.Lock()
        super().__init__(max_records=settings.max_batch, on_fatal=on_fatal)

    def make_consumer(self) -> AIOKafkaConsumer:
        return make_consumer(self.settings, self.group_id, _Handover(self))

    async def open(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap_servers, self.topics.all(), self.settings.topic_layout)

    async def process(self, batch: Batch) -> None:
        async with self._working:
            mine = {tp: records for tp, records in batch.items() if tp in self.owned and records}
            if not mine:
                return
            await apply_records(self.documents, mine, self.topics, self.audit, self.order)
            assert self.consumer is not None
            with COMMIT_SECONDS.time():
                await self.consumer.commit(last_offsets(mine))


class _Handover(ConsumerRebalanceListener):  # type: ignore[misc]
    """Gives partitions up only between batches, so two workers never write one partition's documents at once."""

    def __init__(self, worker: AggregateWorker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self.worker._working:  # the batch in hand is written and committed first
            self.worker.owned.difference_update(revoked)
            self.worker.documents.forget()  # another worker may write them before they come back

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.worker.documents.forget()
        self.worker.owned.update(assigned)
        self.worker.assignments.append(frozenset(assigned))
