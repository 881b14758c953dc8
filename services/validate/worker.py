"""validate's consumer loop: received → rules → validated | rejected, exactly once per batch."""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import Counter, Histogram

from services.validate.decision import Outgoing, decide
from services.validate.settings import ValidateSettings
from services.validate.transactions import Transactions
from shared.errors import InfrastructureUnavailable
from shared.health import labelled
from shared.kafka import EVENTS_PRODUCED, EVENTS_REJECTED, build_consumer, ensure_topics
from shared.lifecycle import LifecycleSettings
from shared.service import FatalHandler
from shared.tracing import traced
from shared.worker import Batch, BatchWorker, last_offsets

log = logging.getLogger(__name__)

DECISIONS = Counter("dmp_validate_decisions_total", "Submissions decided", ["type", "outcome"])
PHASE_SECONDS = Histogram(
    "dmp_validate_batch_phase_seconds", "Each phase of a committed batch: deciding (the rules), handing the "
    "decisions to the broker until it has them all, adding the offsets to the transaction, committing", ["phase"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5))


class ValidateWorker(BatchWorker):
    """Each batch's events and its consumer offsets are committed in one Kafka transaction."""

    service = "validate"

    def __init__(self, settings: ValidateSettings, on_fatal: FatalHandler | None = None,
                 lifecycle: LifecycleSettings | None = None) -> None:
        self.settings = settings
        self.topics = settings.topics
        super().__init__(max_records=settings.max_batch, lifecycle=lifecycle, on_fatal=on_fatal)
        self.transactions = Transactions(settings.kafka_bootstrap_servers, settings.transactional_id,
                                         start_timeout_s=settings.producer_start_timeout_s,
                                         close_timeout_s=settings.producer_close_timeout_s)
        self.decided_up_to: dict[TopicPartition, int] = {}
        """Per partition, the offset this worker's last committed transaction moved the group to."""

    def make_consumer(self) -> AIOKafkaConsumer:
        return build_consumer(self.settings.kafka_bootstrap_servers, [self.topics.received], self.settings.group_id,
                              max_poll_records=self.settings.max_batch, gather_ms=self.settings.gather_ms,
                              gather_bytes=self.settings.gather_bytes)

    async def open(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap_servers, self.topics.all(), self.settings.topic_layout)
        await self.transactions.start()

    async def close(self) -> None:
        await self.transactions.close()

    async def recover(self, error: BaseException) -> None:
        """A transaction that failed midway can leave its producer unusable: start new ones.

        The new producers have the same transactional ids, so the broker fences the old ones and
        aborts whatever transaction they left open; the batch is then sent again, whole, in a new
        transaction.
        """
        await self.close()
        await self.transactions.start()

    async def process(self, batch: Batch) -> None:
        if not self.transactions.started:
            raise InfrastructureUnavailable("no transactional producer (the broker was unreachable)")
        batch = self._undecided(batch)
        if not batch:
            return
        started = time.perf_counter()
        outgoing = [decide(r.value, r.key, dict(r.headers), r.partition, r.offset, self.topics)
                    for records in batch.values() for r in records]
        decided = time.perf_counter()
        async with self.transactions.transaction() as producer:
            sent = [await producer.send(o.topic, value=o.value, key=o.key.encode(), headers=o.headers)
                    for o in outgoing]
            await asyncio.gather(*sent)
            delivered = time.perf_counter()
            committing = last_offsets(batch)
            await producer.send_offsets_to_transaction(committing, self.settings.group_id)
            offsets_added = time.perf_counter()
        self.decided_up_to.update(committing)
        _phases(decide=decided - started, send=delivered - decided, offsets=offsets_added - delivered,
                commit=time.perf_counter() - offsets_added)
        for o in outgoing:
            _produced(self.service, o.topic).inc()
            _decisions(o.type or "unknown", _outcome(o)).inc()
            if not o.accepted:
                _rejected(self.service, self.topics.received).inc()
            _log_decision(o)

    def _undecided(self, batch: Batch) -> Batch:
        """`batch` without the records a transaction of this worker's has already decided and committed.

        When the group loses this worker (its link to the broker cut longer than the session timeout)
        while a transaction is open, the worker rejoins and reads its starting offsets before that
        transaction's offsets are settled: aiokafka cannot ask the broker to wait for them (KIP-447's
        require_stable), so it gets the offsets from before, and the group hands the same records out
        again. They are skipped here; offsets only move forward, so any offset this worker committed is
        one no one needs to decide below.
        """
        kept: Batch = {}
        skipped = 0
        for tp, records in batch.items():
            done = self.decided_up_to.get(tp, 0)
            fresh = [r for r in records if r.offset >= done]
            skipped += len(records) - len(fresh)
            if fresh:
                kept[tp] = fresh
        if skipped:
            log.warning("skipped records this worker had already decided and committed",
                        extra={"records": skipped})
        return kept


_produced, _decisions, _rejected = labelled(EVENTS_PRODUCED), labelled(DECISIONS), labelled(EVENTS_REJECTED)
_phase = labelled(PHASE_SECONDS)


def _phases(**seconds: float) -> None:
    for phase, value in seconds.items():
        _phase(phase).observe(value)


def _outcome(outgoing: Outgoing) -> str:
    return "withdrawn" if outgoing.withdrawal else "validated" if outgoing.accepted else "rejected"


def _log_decision(outgoing: Outgoing) -> None:
    """One line per decision, with the submission's trace id: rejections and withdrawals at info, the rest at debug."""
    level = logging.DEBUG if outgoing.accepted and not outgoing.withdrawal else logging.INFO
    if log.isEnabledFor(level):
        with traced(outgoing.trace_id or None):
            log.log(level, f"submission {_outcome(outgoing)}",
                    extra={"submission_id": outgoing.key, "type": outgoing.type, "topic": outgoing.topic})
