"""Filtered listings through value and late windows, written by the production path (apply_records)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import TopicPartition

from services.aggregate import apply, listing
from services.aggregate.apply import apply_records
from services.aggregate.listing import Selection, list_submissions
from services.aggregate.memory_repository import InMemoryRepository
from shared.envelope import ErrorDetail, Provenance, SubmissionRejected, SubmissionValidated
from shared.store import Document
from shared.topics import Topics

TOPICS = Topics.under("t")
PARTITIONS = 3
START = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
"""Recent: `updated_since` reads late windows of the days since."""
TYPES = ("seizure", "price", "training")
COUNTRIES = ("AFG", "TJK", "UZB", "KAZ")


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes


@dataclass
class Sent:
    """One submission as the test sent it: what its listing item must show."""

    id: str
    type: str
    partition: int
    received_at: datetime
    country: str = ""
    countries: set[str] = field(default_factory=set)
    """Every country a version of it reported."""
    status: str = "received"
    updated_at: datetime = START
    seq: int = -1
    """The offset of its latest version's received event."""


@dataclass
class Log:
    """What the test has sent: the topics' next offsets and every submission."""

    draw: random.Random
    offsets: dict[TopicPartition, int] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)
    clock: int = 0

    def append(self, batch: dict[TopicPartition, list[Record]], topic: str, partition: int, value: bytes) -> int:
        tp = TopicPartition(topic, partition)
        offset = self.offsets.get(tp, 0)
        self.offsets[tp] = offset + 1
        batch.setdefault(tp, []).append(Record(offset, value))
        return offset


def verdict(one: Sent, seq: int, at: datetime, rejected: bool) -> bytes:
    """A verdict on the version at `seq`. A validated one names a type no view counts: views are not tested here."""
    common: dict[str, object] = {"id": one.id, "data_hash": "0" * 64, "submitted_by": "k1", "trace_id": "0" * 32,
                                 "received": Provenance(partition=one.partition, seq=seq), "received_at": at}
    if rejected:
        event: SubmissionRejected | SubmissionValidated = SubmissionRejected(
            **common, type=one.type, original={"data": {}}, rejected_at=at, rejected_by="tests",
            errors=[ErrorDetail(loc=["data"], msg="bad", type="invalid")])
    else:
        event = SubmissionValidated(**common, type="uncounted", schema_version=1, data={}, validated_at=at,
                                    validator="tests")
    return orjson.dumps(event.model_dump(mode="json"))


async def send(repo: InMemoryRepository, log: Log, count: int, batch_size: int = 7) -> None:
    """`count` versions, one a second: new submissions, with a verdict at once, or amendments (a new country),
    with a verdict after all of them, a minute apart."""
    pending: list[tuple[Sent, int]] = []
    for _ in range(0, count, batch_size):
        batch: dict[TopicPartition, list[Record]] = {}
        for _ in range(batch_size):
            log.clock += 1
            at = START + timedelta(seconds=log.clock)
            if log.sent and log.draw.random() < 0.2:
                one = log.draw.choice(log.sent)
            else:
                sid = str(uuid.UUID(int=log.draw.getrandbits(128), version=4))
                one = Sent(sid, log.draw.choice(TYPES), uuid.UUID(sid).int % PARTITIONS, at)
                log.sent.append(one)
            one.country, one.status, one.updated_at = log.draw.choice(COUNTRIES), "received", at
            one.countries.add(one.country)
            event = {"id": one.id, "type": one.type, "schema_version": 1, "data": {"country": one.country},
                     "submitted_by": "k1", "received_at": at.isoformat(), "trace_id": "0" * 32}
            seq = one.seq = log.append(batch, TOPICS.received, one.partition, orjson.dumps(event))
            decided = log.draw.random()
            if decided < 0.8 and one.received_at != at:  # an amendment's verdict comes after the others
                pending.append((one, seq))
            elif decided < 0.8:
                rejected = decided < 0.3
                log.append(batch, TOPICS.rejected if rejected else TOPICS.validated, one.partition,
                           verdict(one, seq, at, rejected))
                one.status = "rejected" if rejected else "validated"
        await apply_records(repo, batch, TOPICS)
    for one, seq in pending:  # a minute apart, each on a version still the latest
        if seq == one.seq:
            log.clock += 60
            at = START + timedelta(seconds=log.clock)
            rejected = log.draw.random() < 0.5
            batch = {}
            log.append(batch, TOPICS.rejected if rejected else TOPICS.validated, one.partition,
                       verdict(one, seq, at, rejected))
            one.status, one.updated_at = ("rejected" if rejected else "validated"), at
            await apply_records(repo, batch, TOPICS)


def expected(log: Log, selection: Selection) -> list[str]:
    """The submissions `selection` asks for, from what was sent, in the order received."""
    return [s.id for s in sorted(log.sent, key=lambda s: s.received_at)
            if (selection.type is None or s.type == selection.type)
            and (selection.status is None or s.status == selection.status)
            and (selection.country is None or s.country == selection.country)
            and (selection.updated_since is None or s.updated_at >= selection.updated_since)
            and (selection.received_from is None or s.received_at >= selection.received_from)
            and (selection.received_to is None or s.received_at <= selection.received_to)]


async def listed(repo: InMemoryRepository, selection: Selection, limit: int) -> list[str]:
    ids: list[str] = []
    positions: dict[int, int] | None = None
    while True:
        items, positions = await list_submissions(repo, selection, positions, limit)
        assert len(items) <= limit
        ids += [i.id for i in items]
        if positions is None:
            return ids


def selections() -> list[Selection]:
    middle = START + timedelta(seconds=100)
    return [Selection(), Selection(type="price"), Selection(status="rejected"), Selection(status="received"),
            Selection(country="TJK"), Selection(updated_since=middle), Selection(received_from=middle),
            Selection(received_from=middle, received_to=middle + timedelta(seconds=40)),
            Selection(type="seizure", country="AFG", updated_since=middle - timedelta(seconds=50)),
            Selection(status="withdrawn")]


@pytest.fixture(autouse=True)
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows and reads of a few offsets, so that a page spans many of them; received times exactly in order."""
    monkeypatch.setattr(apply, "VALUE_WINDOW", 8)
    monkeypatch.setattr(listing, "VALUE_WINDOW", 8)
    monkeypatch.setattr(listing, "VALUE_WINDOWS_FIRST", 1)
    monkeypatch.setattr(listing, "WINDOWS_PER_READ", 2)
    monkeypatch.setattr(listing, "CHUNK", 3)
    monkeypatch.setattr(listing, "PROBES", 3)
    monkeypatch.setattr(listing, "CLOCK_SLACK", timedelta(0))


@pytest.mark.parametrize("limit", [1, 4, 50])
async def test_every_filter_pages_through_exactly_the_submissions_it_selects(limit: int) -> None:
    repo, log = InMemoryRepository(), Log(random.Random(limit))
    await send(repo, log, 210)
    for selection in selections():
        assert await listed(repo, selection, limit) == expected(log, selection), selection


def counting(repo: InMemoryRepository) -> list[str]:
    """The entries (not windows) the listing reads from `repo` from now on."""
    read: list[str] = []
    load = repo.load_listing

    async def counted(keys: Iterable[str]) -> list[Document]:
        wanted = list(keys)
        read.extend(k for k in wanted if k[0] not in "@#")
        return await load(wanted)

    repo.load_listing = counted  # type: ignore[method-assign]
    return read


async def test_a_filter_reads_only_the_entries_of_submissions_that_ever_had_its_value() -> None:
    repo, log = InMemoryRepository(), Log(random.Random(1))
    await send(repo, log, 140)
    read = counting(repo)
    assert await listed(repo, Selection(country="TJK"), 5) == expected(log, Selection(country="TJK"))
    ever = {s.id for s in log.sent if "TJK" in s.countries}
    assert read and {repo.listing[k]["id"] for k in read if k in repo.listing} <= ever


async def test_changed_since_reads_the_late_windows_before_what_was_received_since(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(apply, "LATE", timedelta(seconds=30))
    monkeypatch.setattr(listing, "LATE", timedelta(seconds=30))
    repo, log = InMemoryRepository(), Log(random.Random(4))
    await send(repo, log, 280)
    selection = Selection(updated_since=START + timedelta(seconds=250))
    read = counting(repo)
    assert await listed(repo, selection, 10) == expected(log, selection)
    windowed = len(read)
    monkeypatch.setattr(listing, "LATE_DAYS", 0)  # every entry read instead
    read.clear()
    assert await listed(repo, selection, 10) == expected(log, selection)
    assert windowed < len(read)


async def test_an_amendment_or_a_verdict_does_not_move_a_records_position() -> None:
    repo, log = InMemoryRepository(), Log(random.Random(2))
    await send(repo, log, 140)
    entries = [(int(key.partition(":")[2]), entry["id"]) for key, entry in repo.listing.items()
               if key[0] not in "@#"]
    first_offsets: dict[str, int] = {}
    for offset, sid in sorted(entries):
        first_offsets.setdefault(sid, offset)
    assert {r["_id"]: r["listed_offset"] for r in repo.submissions.values()} == first_offsets


async def test_records_written_before_they_carried_positions_are_listed_too() -> None:
    """Data applied by a version that wrote no value windows: those entries are walked, the later ones windowed."""
    repo, log = InMemoryRepository(), Log(random.Random(3))
    await send(repo, log, 70)
    for record in repo.submissions.values():
        del record["listed_partition"], record["listed_offset"]
    for key in [k for k in repo.listing if k.startswith("#")]:
        del repo.listing[key]
    for progress in repo.progress.values():
        progress.pop("windowed_from", None)
    await send(repo, log, 70)
    assert min(d["windowed_from"] for d in repo.progress.values() if d["kind"] == "received") > 0
    for selection in selections():
        assert await listed(repo, selection, 4) == expected(log, selection), selection


@pytest.mark.parametrize("kept_order", [True, False], ids=["order kept by the writer", "order read back"])
async def test_from_and_updated_since_find_submissions_stamped_long_before_their_event_was_appended(
        kept_order: bool) -> None:
    """Some events carry a received time two hours before the events appended ahead of them in their partition
    (an ingest process that stamped them, then waited on the broker), far beyond CLOCK_SLACK (0 here): `from` and
    `updated_since` still list exactly the submissions they select, each once. With the writer's order kept
    across batches, or read back from the entry before each batch (after a restart or a rebalance)."""
    repo, log = InMemoryRepository(), Log(random.Random(9))
    order = apply.ReceivedOrder() if kept_order else None
    for _ in range(40):
        batch: dict[TopicPartition, list[Record]] = {}
        for _ in range(7):
            log.clock += 1
            now = START + timedelta(seconds=log.clock)
            stamped = now - timedelta(hours=2) if log.draw.random() < 0.15 else now
            sid = str(uuid.UUID(int=log.draw.getrandbits(128), version=4))
            one = Sent(sid, "seizure", uuid.UUID(sid).int % PARTITIONS, stamped, updated_at=stamped)
            log.sent.append(one)
            event = {"id": one.id, "type": one.type, "schema_version": 1, "data": {"country": "AFG"},
                     "submitted_by": "k1", "received_at": stamped.isoformat(), "trace_id": "0" * 32}
            seq = log.append(batch, TOPICS.received, one.partition, orjson.dumps(event))
            if log.draw.random() < 0.5:  # decided as it is appended: long after a stamp two hours early
                log.append(batch, TOPICS.validated, one.partition, verdict(one, seq, now, False))
                one.status, one.updated_at = "validated", now
        await apply_records(repo, batch, TOPICS, order=order)
    assert any(s.received_at < START for s in log.sent)
    for since in (START + timedelta(seconds=n) for n in (1, 90, 200, 279)):
        for selection in (Selection(received_from=since), Selection(updated_since=since)):
            found = await listed(repo, selection, 6)
            assert sorted(found) == sorted(expected(log, selection)), selection


async def test_entries_written_before_they_carried_the_latest_time_are_searched_by_their_own() -> None:
    """Data applied by a version whose entries said nothing of their partition's order: `from` and `updated_since`
    search those entries by their own received time (with CLOCK_SLACK), the later ones by the latest."""
    repo, log = InMemoryRepository(), Log(random.Random(5))
    await send(repo, log, 70)
    for progress in repo.progress.values():
        progress.pop("ordered_from", None)
    await send(repo, log, 70)
    assert min(d["ordered_from"] for d in repo.progress.values() if d["kind"] == "received") > 0
    for selection in selections():
        assert await listed(repo, selection, 4) == expected(log, selection), selection
