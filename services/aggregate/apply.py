"""aggregate's service layer: one batch of records applied to the submission records, the views, the listing,
progress and audit, in the order that keeps them exact under crashes (projection.py says why).

Views are written first; the records go together with progress, listing and audit, which every write that says
the batch is done must follow. The consumer (worker.py) calls `apply_records` and then commits the offsets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from aiokafka import ConsumerRecord, TopicPartition
from prometheus_client import Counter, Histogram

from services.aggregate.events import to_event
from services.aggregate.projection import OWN_BUCKET_VIEWS, Delta, Event, apply_delta, project
from services.aggregate.repository import FROM_FIELDS, ViewKey, Writes
from shared.audit import Action, AuditLog
from shared.audit import entry as audit_entry
from shared.envelope import utcnow
from shared.store import Document, all_of, both
from shared.topics import Topics

STORE_WRITE_SECONDS = Histogram("dmp_store_write_seconds", "Time to write one batch's documents", ["collection"])
STORE_READ_SECONDS = Histogram("dmp_store_read_seconds", "Time to load one batch's documents not kept in memory: "
                               "submissions = the records, and with them the views their validated events are "
                               "expected to change; views = the others",
                               ["collection"])
VIEW_UPDATES = Counter("dmp_aggregate_view_updates_total", "View documents written", ["view"])

EARLY_VIEW_READS = 100
"""Batches up to this size read the views their validated events are expected to change together with the
records: mostly those of the event's own version, known before its record is read (the rest are read after).
That saves a round trip, which a small batch feels; a larger one spends more projecting twice than it saves."""
Records = Mapping[TopicPartition, Sequence[ConsumerRecord[bytes, bytes]]]



@dataclass
class ReceivedOrder:
    """Per received partition, the offset after the last entry its writer listed and the latest received time of
    the entries up to it: where the next batch's entries go on from (`listing_entries`). Kept by the writer
    across batches; a batch that does not start there reads the entry before it instead."""

    latest: dict[int, tuple[int, str | None]] = field(default_factory=dict)


async def apply_records(repository: Writes, batch: Records, topics: Topics, audit: AuditLog | None = None,
                        order: ReceivedOrder | None = None) -> None:
    """Apply one batch of records (in partition order), recording, together with the submission records, how
    far each partition got and, with an `audit` log, who submitted what.

    The batch's listing entries are written meanwhile, its value windows (known once the records are projected)
    with the records, and its progress after both: the listing reads progress as the end of what it may page
    through (listing.py)."""
    events: list[Event] = []
    received: dict[int, list[Event]] = {}
    for tp, records in batch.items():
        for r in records:
            event = to_event(tp.topic, tp.partition, r.offset, r.value, topics)
            if event is not None:
                events.append(event)
                if event.kind == "received":
                    received.setdefault(tp.partition, []).append(event)
    entries = await listing_entries(repository, received, order or ReceivedOrder())
    windows: dict[str, set[int]] = {}
    listed_in: dict[tuple[str, int], int] = {}
    for partition, partition_events in received.items():
        for event in partition_events:
            windows.setdefault(window_key(event.submitted_by, partition, event.seq), set()).add(event.seq)
            listed_in[(event.id, event.seq)] = partition
    listed = asyncio.ensure_future(_timed("listing", repository.save_listing(entries, windows)))
    by_value: dict[str, dict[int, set[int]]] = {}

    async def progress() -> None:
        await listed
        if by_value:
            await _timed("listing", repository.save_listing([], None, by_value))
        await _timed("progress", repository.save_progress(progress_documents(batch, topics)))

    def bookkeeping(touched: dict[str, Document]) -> list[Awaitable[None]]:
        writes: list[Awaitable[None]] = [progress()]
        if audit is not None:
            writes.append(_timed("audit", audit.record(submission_audit(touched, events))))
        return writes

    try:
        await apply_batch(repository, events, alongside_records=bookkeeping, listed_in=listed_in, windows=by_value)
    finally:
        await listed


LISTING_WINDOW = 1024
"""Offsets of a received partition per submitter or value window: a filtered page reads a few windows of
offsets, then only the entries at them."""
WINDOWED = ("type", "country", "status")
"""The record fields with value windows: a submission's entry joins the window of each value its record takes
(its type once; each country and status it moves to, but `received`, which every submission starts with), and
stays there: a window is a superset, the record says whether it still has the value."""
LATE = timedelta(minutes=1)
"""A change to a submission this long after it was received is late (an amendment, a withdrawal, a verdict
after a backlog): its entry joins the late windows of the day and of the hour of the change, so that
`updated_since` finds the few older submissions changed since a time without reading every entry (those received
since, less this and listing.CLOCK_SLACK, it reads all)."""


def window_key(submitter: str, partition: int, offset: int) -> str:
    """The window document holding `submitter`'s offsets near `offset` of a received partition."""
    return f"@{submitter}:{partition}:{offset // LISTING_WINDOW}"


VALUE_WINDOW = 256
"""Offsets of every received partition per value window: a batch rewrites each window it adds to, so they stay
small (a value most submissions have fills one in about a batch)."""


def value_key(name: str, value: str, offset: int) -> str:
    """The window document holding, per partition, the offsets near `offset` of the entries with `value`."""
    return f"#{name}:{value}:{offset // VALUE_WINDOW}"


def late_key(day: date, hour: int | None = None) -> str:
    """The window document holding, per partition, the offsets of the entries changed late on `day` (UTC), or in
    its `hour`."""
    return f"#late:{day.isoformat()}" if hour is None else f"#late:{day.isoformat()}T{hour:02d}"


def value_windows(before: Document | None, record: Document) -> list[str]:
    """The windows `record`'s entry joins as it changes from `before` (none until it has a position)."""
    if "listed_offset" not in record:
        return []
    offset, placed = record["listed_offset"], before is None or "listed_offset" not in before
    keys = [value_key("type", record["type"], offset)] if placed else []
    for name in WINDOWED[1:]:
        value = record.get(name)
        if value is not None and value != "received" and (placed or before is None or before.get(name) != value):
            keys.append(value_key(name, value, offset))
    # the record's change time, as `updated_since` compares it (a record placed after changes keeps their time)
    if placed or before is None or before.get("updated_at") != record["updated_at"]:
        changed = datetime.fromisoformat(record["updated_at"]).astimezone(UTC)
        if changed - datetime.fromisoformat(record["received_at"]) > LATE:
            keys += [late_key(changed.date()), late_key(changed.date(), changed.hour)]
    return keys


def place(record: Document, partition: int, event: Event) -> None:
    """Record where `record`'s listing entry is, if `event` (received in `partition`) is the one that lists it: the
    first received event with the record's received time (listing.py); the least such offset, should two have it."""
    if datetime.fromisoformat(event.received_at) != datetime.fromisoformat(record["received_at"]):
        return
    if "listed_offset" in record and (record["listed_partition"], record["listed_offset"]) <= (partition, event.seq):
        return
    record["listed_partition"], record["listed_offset"] = partition, event.seq


def latest_received(entry: Document) -> str:
    """The latest received time up to a listing entry written by `listing_entries`: its `m`, or its own."""
    return str(entry["m"] if "m" in entry else entry["received_at"])


def listing_entry(partition: int, event: Event) -> Document:
    """A received event's listing entry: `_id` `<partition>:<offset>` of the received topic."""
    return {"_id": f"{partition}:{event.seq}", "id": event.id, "received_at": event.received_at,
            "submitted_by": event.submitted_by}


async def listing_entries(repository: Writes, received: Mapping[int, Sequence[Event]],
                          order: ReceivedOrder) -> list[Document]:
    """The entries of each partition's received events (in offset order). An entry received before one at an
    earlier offset of its partition (ingest processes stamp and append in their own time) also carries `m`,
    the latest received time up to it, so that the offsets' latest times only grow: the listing searches them
    for where a time starts (listing._starts)."""
    firsts = {p: events[0].seq for p, events in received.items() if events}
    latest = {p: order.latest[p][1] for p, first in firsts.items()
              if p in order.latest and order.latest[p][0] == first}
    unknown = {p: f"{p}:{first - 1}" for p, first in firsts.items() if p not in latest and first > 0}
    if unknown:
        before = {e["_id"]: e for e in await repository.load_listing(unknown.values())}
        for p, key in unknown.items():
            latest[p] = latest_received(before[key]) if key in before else None
    entries: list[Document] = []
    for p, events in received.items():
        top = latest.get(p)
        top_at = datetime.fromisoformat(top) if top is not None else None
        for event in events:
            entry = listing_entry(p, event)
            at = datetime.fromisoformat(event.received_at)
            if top_at is not None and at < top_at:
                entry["m"] = top
            else:
                top, top_at = event.received_at, at
            entries.append(entry)
        if events:
            order.latest[p] = (events[-1].seq + 1, top)
    return entries


async def _timed(collection: str, write: Awaitable[None]) -> None:
    with STORE_WRITE_SECONDS.labels(collection).time():
        await write


def progress_documents(batch: Records, topics: Topics) -> list[Document]:
    """One document per topic partition in `batch`: `_id` `<kind>#<partition>`, the next offset to process; on
    received partitions also `listed_from`, the first offset whose submitter window was written, and
    `windowed_from`, the first from which records carry their entry's position (`place`) and value windows hold
    their offsets, and `ordered_from`, the first from which entries carry `m` (`listing_entries`): the earliest
    such batch's (the store keeps the least, FROM_FIELDS), before which entries are read (all of them, or a
    submitter's) and searched by received time with listing.CLOCK_SLACK."""
    kinds = dict(zip(topics.all(), ("received", "validated", "rejected"), strict=True))
    at = utcnow().isoformat()
    return [{"_id": f"{kinds[tp.topic]}#{tp.partition}", "kind": kinds[tp.topic], "topic": tp.topic,
             "partition": tp.partition, "next_offset": records[-1].offset + 1, "at": at,
             **(dict.fromkeys(FROM_FIELDS, records[0].offset) if kinds[tp.topic] == "received" else {})}
            for tp, records in batch.items() if records and tp.topic in kinds]


async def apply_batch(repository: Writes, events: list[Event], alongside_records: Callable[
        [dict[str, Document]], list[Awaitable[None]]] | None = None,
        listed_in: Mapping[tuple[str, int], int] | None = None,
        windows: dict[str, dict[int, set[int]]] | None = None) -> dict[str, Document]:
    """Project `events` (in partition order) onto the stored records and views, idempotently.

    Returns the submission records the batch touched, as saved. `alongside_records(touched)`: writes made
    together with the records' (after the views', which every write that says the batch is done must follow).
    `listed_in`: the received partition of each received event, by (submission id, seq), to `place` records;
    `windows` gathers the value windows their entries join (`value_windows`), by key, partition and offset.
    """
    expected: set[ViewKey] = set()
    if len(events) <= EARLY_VIEW_READS:
        expected = {(d.view, d.key) for e in events if e.kind == "validated"
                    for d in project(None, e)[1] if d.view not in OWN_BUCKET_VIEWS}
    with STORE_READ_SECONDS.labels("submissions").time():
        records, views = await both(repository.load_submissions({e.id for e in events}),
                                    repository.load_views(expected))
    stored = set(records)
    touched: dict[str, Document] = {}
    deltas: list[Delta] = []
    for event in events:
        before = records.get(event.id)
        record, caused = project(before, event)
        if listed_in is not None and (partition := listed_in.get((event.id, event.seq))) is not None:
            place(record, partition, event)
        if windows is not None:
            for joined in value_windows(before, record):
                offsets = windows.setdefault(joined, {}).setdefault(record["listed_partition"], set())
                offsets.add(record["listed_offset"])
        records[event.id] = touched[event.id] = record
        deltas += caused
    # A submission without a stored record has had no batch committed (its record is written before the
    # offsets), so all its events are in this batch or later ones, and the documents only it writes are
    # rebuilt from them: they need no read. Any left by a failed attempt are replaced (save_* `new`).
    unread = {(d.view, d.key) for d in deltas if d.view in OWN_BUCKET_VIEWS and d.dims.get("bucket") not in stored}
    with STORE_READ_SECONDS.labels("views").time():
        views.update(await repository.load_views({(d.view, d.key) for d in deltas} - unread - expected))
    views_stored = set(views)
    changed: dict[ViewKey, Document] = {}
    for delta in deltas:
        key = (delta.view, delta.key)
        doc = apply_delta(views.get(key), delta)
        if doc is not None:
            views[key] = changed[key] = doc
    if changed:
        with STORE_WRITE_SECONDS.labels("views").time():
            await repository.save_views(changed, changed.keys() - views_stored)
        for view, _ in changed:
            VIEW_UPDATES.labels(view).inc()
    writes = alongside_records(touched) if alongside_records is not None else []
    if touched:
        writes.append(_timed("submissions", repository.save_submissions(touched.values(), touched.keys() - stored)))
    await all_of(*writes)
    return touched


def submission_audit(records: dict[str, Document], events: list[Event]) -> list[Document]:
    """An audit entry per received version: submitted (first), amended (new data), resubmitted (same data) or
    withdrawn (by its withdrawer)."""
    entries = []
    for event in events:
        if event.kind != "received" or event.id not in records:
            continue
        history = records[event.id]["history"]
        index = next((i for i, h in enumerate(history) if h["seq"] == event.seq), None)
        if index is None:
            continue
        version = history[index]["version"]
        if event.withdrawal is not None:
            entries.append(audit_entry(f"{event.id}:{event.seq}", event.received_at,
                                       event.withdrawal["withdrawn_by"], "withdrawn", event.id, type=event.type,
                                       version=version, reason=event.withdrawal["reason"]))
            continue
        action: Action = ("submitted" if index == 0 else
                          "amended" if history[index - 1]["version"] != version else "resubmitted")
        entries.append(audit_entry(f"{event.id}:{event.seq}", event.received_at, event.submitted_by, action,
                                   event.id, type=event.type, version=version))
    return entries
