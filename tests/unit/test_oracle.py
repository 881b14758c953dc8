"""Exactness as a property: whatever Kafka may deliver, and wherever the worker crashes, the views are what an
oracle computes from the current valid version of each submission.

A stream is a sequence of sends (new submissions, resubmissions of the same data, amendments, amendments that
validate rejects, and withdrawals) of several types over a few partitions. It is written to three logs the way
ingest and validate write them (keyed by submission id, so a submission's events share a partition number), then
consumed like a consumer group member does: batches take any number of records from each partition, in partition
order, interleaved arbitrarily across topics and partitions; a batch may crash after any number of document writes
(views, then records, then progress) or lose its commit, and the consumer then resumes from the last committed
offsets, so the whole uncommitted batch comes again, possibly split differently.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.aggregate.apply import apply_records
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.projection import DIMENSIONS, SPARSE, contributions
from services.aggregate.repository import VIEWS, ViewKey, Writes
from services.aggregate.writer_cache import WriterCache
from shared.envelope import (
    ErrorDetail,
    Provenance,
    SubmissionReceived,
    SubmissionRejected,
    SubmissionValidated,
    SubmissionWithdrawn,
    Withdrawal,
    WithdrawalRequested,
    content_hash,
)
from shared.store import Document
from shared.topics import Topics
from tests.oracle_rows import Rows, expected_rows, shown_rows
from tests.unit.test_views_projection import PERSON_A, PERSON_B, financial, price, seizure, training, treatment

TOPICS = Topics.under("oracle")
PARTITIONS = 3
KINDS = {"received": TOPICS.received, "validated": TOPICS.validated, "rejected": TOPICS.rejected}
AT = datetime(2024, 6, 1, tzinfo=UTC)
TRACE = "0af7651916cd43dd8448eb211c80319c"
WITHDRAWAL = Withdrawal(reason="entered by mistake", withdrawn_by="officer", role="officer")


def submitted(data: dict[str, Any]) -> dict[str, Any]:
    """What the officer sent: the validated data without what validate added."""
    return {k: v for k, v in data.items() if k != "normalised"}


seizures = st.builds(
    lambda country, drug, qty, day, route, point, cases, arrested: seizure(
        country=country, drug=drug, quantity=qty[0], unit=qty[1], seized_on=day, route=route, coordinates=point,
        cases=cases, persons_arrested=arrested),
    st.sampled_from(["AFG", "IRN"]), st.sampled_from(["heroin", "opium"]),
    st.sampled_from([(1500, "g"), (2.5, "kg"), (0.75, "kg"), (3, "g")]),
    st.sampled_from(["2023-12-30", "2024-01-15", "2024-03-02"]), st.sampled_from(["balkan", "northern"]),
    st.sampled_from([None, {"lat": 34.5, "lon": 61.25}, {"lat": 36.0, "lon": 59.5}]),
    st.integers(1, 3), st.integers(0, 2))
prices = st.builds(
    lambda country, market, typical, low, high, per: price(
        country=country, market=market, price_typical=typical * (1000 if per == "kg" else 1),
        price_min=None if low is None else low * (1000 if per == "kg" else 1),
        price_max=None if high is None else high * (1000 if per == "kg" else 1), per=per),
    st.sampled_from(["AFG", "TJK"]), st.sampled_from(["retail", "wholesale"]), st.sampled_from([2.0, 3.5, 4.0]),
    st.sampled_from([None, 1.0, 1.5]), st.sampled_from([None, 5.0, 6.25]), st.sampled_from(["g", "kg"]))
trainings = st.builds(
    lambda person, title, course, host, country, agency: training(
        person, title=title, course_id=course, host_country=host, participant={"country": country, "agency": agency}),
    st.sampled_from([PERSON_A, PERSON_B, "c" * 64]), st.sampled_from(["Container profiling", "Risk analysis"]),
    st.sampled_from(["CCP-1", "CCP-2"]), st.sampled_from(["TUR", "KGZ"]), st.sampled_from(["AFG", "TJK"]),
    st.sampled_from(["Customs", "Police"]))
treatments = st.builds(
    lambda facility, period, capacity, heroin: treatment(facility_id=facility, period=period, capacity=capacity,
                                                         in_treatment={"heroin": heroin, "opium": 3}),
    st.sampled_from(["KBL-01", "HRT-02"]), st.sampled_from(["2024-03", "2024-06", "2024"]),
    st.sampled_from([10, 40]), st.integers(0, 5))
financials = st.builds(
    lambda country, case_type, amount, currency, charged: financial(
        country=country, case_type=case_type, amount=amount, currency=currency, persons_charged=charged),
    st.sampled_from(["AFG", "UZB"]), st.sampled_from(["cash_smuggling", "money_laundering_investigation"]),
    st.sampled_from([250_000.5, 1_000, 0.25]), st.sampled_from(["USD", "EUR"]), st.integers(0, 3))
VERSIONS = {"seizure": seizures, "price": prices, "financial_case": financials, "training": trainings,
            "treatment_facility": treatments}


@dataclass(frozen=True)
class Send:
    """One version of a submission as ingest received it, and validate's verdict on it."""

    sid: str
    type: str
    partition: int
    data: dict[str, Any]
    """As validated (with `normalised`), or the submitted data of a rejected version; empty for a withdrawal."""
    valid: bool
    withdrawn: bool = False


@st.composite
def streams(draw: st.DrawFn) -> list[Send]:
    count = draw(st.integers(1, 6))
    subs = [(f"s{i}", draw(st.sampled_from(sorted(VERSIONS))), draw(st.integers(0, PARTITIONS - 1)))
            for i in range(count)]
    sends: list[Send] = []
    last: dict[str, Send] = {}
    for _ in range(draw(st.integers(1, 16))):
        sid, type_, partition = draw(st.sampled_from(subs))
        action = draw(st.sampled_from(["new", "new", "same", "rejected", "withdraw"]))
        if action == "withdraw" and sid in last:  # ingest withdraws only what aggregate has recorded
            sends.append(Send(sid, type_, partition, {}, valid=False, withdrawn=True))
            continue
        if action == "same" and sid in last:  # after a withdrawal: the same data again brings it back
            send = last[sid]
        elif action == "rejected":
            send = Send(sid, type_, partition, {"unreadable": draw(st.integers(0, 2))}, valid=False)
        else:
            send = Send(sid, type_, partition, draw(VERSIONS[type_]), valid=True)
        last[sid] = send
        sends.append(send)
    return sends


Log = dict[TopicPartition, list[bytes]]


def write_logs(sends: list[Send]) -> Log:
    """The received, validated and rejected topics as ingest and validate write them."""
    log: Log = {TopicPartition(topic, p): [] for topic in TOPICS.all() for p in range(PARTITIONS)}
    for send in sends:
        received = log[TopicPartition(TOPICS.received, send.partition)]
        seq = len(received)
        if send.withdrawn:
            request = WithdrawalRequested(id=send.sid, type=send.type, withdrawal=WITHDRAWAL, submitted_by="officer",
                                          received_at=AT, trace_id=TRACE)
            received.append(request.encode())
            log[TopicPartition(TOPICS.validated, send.partition)].append(SubmissionWithdrawn(
                id=send.sid, type=send.type, withdrawal=WITHDRAWAL,
                received=Provenance(partition=send.partition, seq=seq), submitted_by="officer", received_at=AT,
                withdrawn_at=AT, trace_id=TRACE).encode())
            continue
        data = submitted(send.data)
        received.append(SubmissionReceived(id=send.sid, type=send.type, schema_version=1, data=data, received_at=AT,
                                           submitted_by="officer", trace_id=TRACE).encode())
        common: dict[str, Any] = {
            "id": send.sid, "type": send.type, "received": Provenance(partition=send.partition, seq=seq),
            "data_hash": content_hash(send.type, 1, data), "submitted_by": "officer", "received_at": AT,
            "trace_id": TRACE}
        if send.valid:
            log[TopicPartition(TOPICS.validated, send.partition)].append(SubmissionValidated(
                **common, schema_version=1, data=send.data, validated_at=AT, validator="oracle").encode())
        else:
            log[TopicPartition(TOPICS.rejected, send.partition)].append(SubmissionRejected(
                **common, original={"data": data}, rejected_at=AT, rejected_by="oracle",
                errors=[ErrorDetail(loc=["data"], msg="unreadable", type="invalid")]).encode())
    return log


class Crash(Exception):
    """The worker process died."""


class CrashingRepository(InMemoryRepository):
    """Writes one document at a time, in an arbitrary order, and dies before the write `crash_at` counts down to."""

    def __init__(self, rnd: random.Random) -> None:
        super().__init__()
        self.rnd = rnd
        self.writes_left: int | None = None

    def _write(self) -> None:
        if self.writes_left is not None:
            if self.writes_left == 0:
                raise Crash
            self.writes_left -= 1

    def _shuffled(self, items: Iterable[Any]) -> list[Any]:
        found = list(items)
        self.rnd.shuffle(found)  # unordered bulk writes land in any order
        return found

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        for key, doc in self._shuffled(docs.items()):
            self._write()
            self.views[key] = doc

    async def save_submissions(self, docs: Iterable[Document], new: AbstractSet[str] = frozenset()) -> None:
        for doc in self._shuffled(docs):
            self._write()
            self.submissions[doc["_id"]] = doc

    async def save_progress(self, docs: Iterable[Document]) -> None:
        for doc in self._shuffled(docs):
            self._write()
            await super().save_progress([doc])


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes


async def consume(log: Log, repo: CrashingRepository, data: st.DataObject, writer: Writes | None = None) -> int:
    """Deliver `log` to apply_records as a consumer would, with crashes; returns how many batches crashed.

    With `writer` (a WriterCache over `repo`), batches go through it, and it outlives every crash: the
    worst case for it, a failure retried in the same process."""
    writer = writer or repo
    committed = {tp: 0 for tp in log}
    crashes = 0
    for round_ in range(1000):
        if all(committed[tp] == len(records) for tp, records in log.items()):
            return crashes
        queues: dict[TopicPartition, list[Record]] = {}
        for tp, records in log.items():
            left = len(records) - committed[tp]
            take = data.draw(st.integers(0, min(left, 4))) if left else 0
            if take:
                queues[tp] = [Record(o, records[o]) for o in range(committed[tp], committed[tp] + take)]
        if not queues:
            tp = next(tp for tp, records in log.items() if committed[tp] < len(records))
            queues[tp] = [Record(committed[tp], log[tp][committed[tp]])]
        # The partitions of a batch come in whatever order the consumer's fetches returned them.
        order = data.draw(st.permutations(sorted(queues)))
        batch = {tp: queues[tp] for tp in order}
        may_crash = round_ < 40
        repo.writes_left = data.draw(st.none() | st.integers(0, 30)) if may_crash else None
        try:
            await apply_records(writer, batch, TOPICS)  # as the worker applies a batch, its writes concurrent
            if may_crash and data.draw(st.integers(0, 5)) == 0:
                raise Crash  # died before the commit reached the broker
        except Crash:
            crashes += 1
            continue  # restart: the consumer resumes from the committed offsets
        finally:
            repo.writes_left = None
        for tp, taken in batch.items():
            committed[tp] = taken[-1].offset + 1
    raise AssertionError("the stream was never fully committed")


def current_versions(sends: list[Send]) -> dict[str, Send]:
    """The version of each submission the views count: its latest valid one, unless withdrawn since."""
    current: dict[str, Send] = {}
    for send in sends:
        if send.withdrawn:
            current.pop(send.sid, None)
        elif send.valid:
            current[send.sid] = send
    return current


def oracle(sends: list[Send]) -> Rows:
    """Every view's rows, computed from what was submitted in the current valid version of each submission."""
    return expected_rows((send.sid, send.type, submitted(send.data)) for send in current_versions(sends).values())


def shown(repo: InMemoryRepository) -> Rows:
    """Every view's rows as the read side gives them; repeats as the fact sheet reads them, one country at a time."""
    views = {view: asyncio.run(repo.query_view(view, {}, None, 1_000_000)) for view in VIEWS}
    countries = sorted({d["country"] for d in views["repeats"] if isinstance(d.get("country"), str)})
    views["repeats"] = [d for country in countries
                        for d in asyncio.run(repo.query_view("repeats", {"country": country}, None, 1_000_000))]
    return shown_rows(views)


def check_records(repo: InMemoryRepository, sends: list[Send]) -> None:
    """Each submission's status is its latest version's verdict, and the views count its current valid version.

    A withdrawal is a version of its own (withdrawing twice in a row is one version); it is the latest valid
    one until a valid version follows."""
    seqs: Counter[int] = Counter()
    latest: dict[str, tuple[str, int, int, str]] = {}  # sid → (status, version, valid seq, digest)
    for send in sends:
        seq = seqs[send.partition]
        seqs[send.partition] += 1
        digest = "withdrawal" if send.withdrawn else content_hash(send.type, 1, submitted(send.data))
        previous = latest.get(send.sid)
        version = 1 if previous is None else previous[1] + (digest != previous[3])
        valid_seq = seq if send.valid or send.withdrawn else (previous[2] if previous else -1)
        status = "withdrawn" if send.withdrawn else "validated" if send.valid else "rejected"
        latest[send.sid] = (status, version, valid_seq, digest)
    for sid, (status, version, valid_seq, _) in latest.items():
        record = repo.submissions[sid]
        assert (record["status"], record["version"]) == (status, version), sid
        assert (record["valid"]["seq"] if record["valid"] else -1) == valid_seq, sid


@pytest.mark.parametrize("through", ["store", "writer cache"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sends=streams(), rnd=st.randoms(use_true_random=False), data=st.data())
def test_views_equal_the_oracle_whatever_is_redelivered_and_wherever_the_worker_crashes(
        through: str, sends: list[Send], rnd: random.Random, data: st.DataObject) -> None:
    log = write_logs(sends)
    repo = CrashingRepository(rnd)
    asyncio.run(consume(log, repo, data, WriterCache(repo) if through == "writer cache" else None))

    assert shown(repo) == oracle(sends)
    check_records(repo, sends)
    assert {d["_id"]: d["next_offset"] for d in repo.progress.values()} == {
        f"{kind}#{tp.partition}": len(records) for tp, records in log.items() if records
        for kind, topic in KINDS.items() if topic == tp.topic}


def test_every_contribution_has_exactly_its_views_dimensions() -> None:
    """Reads sum every field that is not a dimension: a dimension missing from DIMENSIONS would be summed."""
    for data, type_ in ((seizure(), "seizure"), (price(), "price"), (training(), "training"),
                        (treatment(), "treatment_facility")):
        for c in contributions(type_, data, "s1"):
            assert set(c.dims) == set(DIMENSIONS[c.view]), c.view
            assert not set(c.figures) & set(DIMENSIONS[c.view])
            assert all(isinstance(v, int) for v in c.figures.values())
            assert all(not name.startswith(SPARSE) or v > 0 for name, v in c.figures.items())
