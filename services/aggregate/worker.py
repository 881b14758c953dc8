"""aggregate's consumer loop: events → submission records and view documents, then commit."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter, Histogram

from services.aggregate.events import to_event
from services.aggregate.projection import Delta, Event, apply_delta, project
from services.aggregate.repository import Repository, ViewKey
from services.aggregate.settings import AggregateSettings
from shared.audit import Action, AuditLog
from shared.audit import entry as audit_entry
from shared.kafka import build_consumer, ensure_topics
from shared.service import FatalHandler
from shared.store import Document
from shared.worker import Batch, BatchWorker, last_offsets

STORE_WRITE_SECONDS = Histogram("dmp_store_write_seconds", "Time to write one batch's documents", ["collection"])
VIEW_UPDATES = Counter("dmp_aggregate_view_updates_total", "View documents written", ["view"])


class AggregateWorker(BatchWorker):
    """Writes views first, then submission records, then commits offsets (see projection.py)."""

    service = "aggregate"

    def __init__(self, settings: AggregateSettings, repository: Repository, audit: AuditLog | None = None,
                 on_fatal: FatalHandler | None = None) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.repository = repository
        self.audit = audit
        super().__init__(max_records=settings.max_batch, on_fatal=on_fatal)

    def make_consumer(self) -> AIOKafkaConsumer:
        return build_consumer(self.settings.kafka_bootstrap_servers, self.topics.all(), self.settings.group_id,
                              max_poll_records=self.settings.max_batch)

    async def open(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap_servers, self.topics.all(), self.settings.topic_partitions)

    async def process(self, batch: Batch) -> None:
        records = await apply_batch(self.repository, events := [
            event for tp, records in batch.items() for r in records
            if (event := to_event(tp.topic, tp.partition, r.offset, r.value, self.topics)) is not None])
        if self.audit is not None:
            await self.audit.record(submission_audit(records, events))
        assert self.consumer is not None
        await self.consumer.commit(last_offsets(batch))


async def apply_batch(repository: Repository, events: list[Event]) -> dict[str, Document]:
    """Project `events` (in partition order) onto the stored records and views, idempotently.

    Returns the submission records the batch touched, as saved.
    """
    records = await repository.load_submissions({e.id for e in events})
    touched: dict[str, Document] = {}
    deltas: list[Delta] = []
    for event in events:
        record, caused = project(records.get(event.id), event)
        records[event.id] = touched[event.id] = record
        deltas += caused
    views = await repository.load_views({(d.view, d.key) for d in deltas})
    changed: dict[ViewKey, Document] = {}
    for delta in deltas:
        key = (delta.view, delta.key)
        doc = apply_delta(views.get(key), delta)
        if doc is not None:
            views[key] = changed[key] = doc
    if changed:
        with STORE_WRITE_SECONDS.labels("views").time():
            await repository.save_views(changed)
        for view, _ in changed:
            VIEW_UPDATES.labels(view).inc()
    if touched:
        with STORE_WRITE_SECONDS.labels("submissions").time():
            await repository.save_submissions(touched.values())
    return touched


def submission_audit(records: dict[str, Document], events: list[Event]) -> list[Document]:
    """An audit entry per received version: submitted (first), amended (new data) or resubmitted (same data)."""
    entries = []
    for event in events:
        if event.kind != "received" or event.id not in records:
            continue
        history = records[event.id]["history"]
        index = next((i for i, h in enumerate(history) if h["seq"] == event.seq), None)
        if index is None:
            continue
        version = history[index]["version"]
        action: Action = ("submitted" if index == 0 else
                          "amended" if history[index - 1]["version"] != version else "resubmitted")
        entries.append(audit_entry(f"{event.id}:{event.seq}", event.received_at, event.submitted_by, action,
                                   event.id, type=event.type, version=version))
    return entries
