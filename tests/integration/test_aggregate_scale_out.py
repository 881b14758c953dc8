"""Two aggregate workers in one consumer group split the partitions, never write one document at once, and keep
the views exact, on the real broker and store, through rebalances."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.structs import RecordMetadata
from pymongo import AsyncMongoClient

from services.aggregate.mongo_repository import MongoRepository
from services.aggregate.repository import VIEWS, Repository, ViewKey
from services.aggregate.settings import AggregateSettings
from services.aggregate.worker import AggregateWorker
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
    dumps,
)
from shared.store import Document, connect
from tests.conftest import Infra
from tests.oracle_rows import Rows, shown_rows
from tests.unit.test_oracle import Send, oracle, submitted
from tests.unit.test_views_projection import PERSON_A, PERSON_B, price, seizure, training

T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T]], timeout: float = 90.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


class Feeder:
    """Writes the three topics as ingest and validate do (keyed by submission id) and remembers what it sent."""

    def __init__(self, bootstrap: str, settings: AggregateSettings) -> None:
        self.topics = settings.topics
        self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all")
        self.sends: list[Send] = []

    async def __aenter__(self) -> Feeder:
        await self.producer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.producer.stop()

    async def feed(self, versions: Iterable[tuple[str, str, dict[str, Any], bool]]) -> None:
        """Send (id, type, validated data, valid?) versions in order: the received events, then the verdicts."""
        versions = list(versions)
        now = datetime.now(UTC)
        received = [await self.producer.send(self.topics.received, dumps(SubmissionReceived(
            id=sid, type=type_, schema_version=1, data=submitted(data), submitted_by="officer", received_at=now,
            trace_id="1" * 32)), key=sid.encode()) for sid, type_, data, _ in versions]
        placed: list[RecordMetadata] = list(await asyncio.gather(*received))
        verdicts = []
        for (sid, type_, data, valid), where in zip(versions, placed, strict=True):
            common = {"id": sid, "type": type_, "data_hash": content_hash(type_, 1, submitted(data)),
                      "received": Provenance(partition=where.partition, seq=where.offset), "submitted_by": "officer",
                      "received_at": now, "trace_id": "1" * 32}
            if valid:
                event: Any = SubmissionValidated(**common, schema_version=1, data=data, validated_at=now,
                                                 validator="tests")
                topic = self.topics.validated
            else:
                event = SubmissionRejected(**common, original={"data": submitted(data)}, rejected_at=now,
                                           rejected_by="tests",
                                           errors=[ErrorDetail(loc=["data"], msg="bad", type="invalid")])
                topic = self.topics.rejected
            verdicts.append(await self.producer.send(topic, dumps(event), key=sid.encode()))
            self.sends.append(Send(sid, type_, where.partition, data, valid))
        await asyncio.gather(*verdicts)

    async def withdraw(self, submissions: Iterable[tuple[str, str]]) -> None:
        """Withdraw (id, type) submissions in order, as ingest and validate do: the request, then the decision."""
        now = datetime.now(UTC)
        withdrawal = Withdrawal(reason="entered by mistake", withdrawn_by="officer", role="officer")
        for sid, type_ in submissions:
            where = await (await self.producer.send(self.topics.received, dumps(WithdrawalRequested(
                id=sid, type=type_, withdrawal=withdrawal, submitted_by="officer", received_at=now,
                trace_id="1" * 32)), key=sid.encode()))
            await (await self.producer.send(self.topics.validated, dumps(SubmissionWithdrawn(
                id=sid, type=type_, withdrawal=withdrawal, received=Provenance(partition=where.partition,
                                                                               seq=where.offset),
                submitted_by="officer", received_at=now, withdrawn_at=now, trace_id="1" * 32)), key=sid.encode()))
            self.sends.append(Send(sid, type_, where.partition, {}, valid=False, withdrawn=True))


PLACES = {"AFG": {"lat": 34.5, "lon": 61.25}, "IRN": {"lat": 36.3, "lon": 59.6}, "TUR": {"lat": 41.0, "lon": 28.97}}


def workload(rng: random.Random, prefix: str, count: int, earlier: list[tuple[str, str]] | None = None,
             ) -> list[tuple[str, str, dict[str, Any], bool]]:
    """New submissions of three types, each followed now and then by a resubmission, an amendment that moves it to
    another bucket (so other partitions' shards), or an amendment validate rejects; plus amendments of `earlier`."""
    def version(type_: str) -> dict[str, Any]:
        if type_ == "seizure":
            country = rng.choice(["AFG", "IRN", "TUR"])
            return seizure(country=country, drug=rng.choice(["heroin", "opium"]),
                           quantity=rng.randint(1, 5000), unit="g", cases=rng.randint(1, 3),
                           persons_arrested=rng.randint(0, 3), seized_on=f"2024-0{rng.randint(1, 9)}-11",
                           coordinates=rng.choice([None, PLACES[country]]))
        if type_ == "price":
            return price(country=rng.choice(["AFG", "TJK"]), market=rng.choice(["retail", "wholesale"]),
                         price_typical=rng.choice([2.5, 3.0, 4.0]), price_min=rng.choice([None, 1.5]))
        return training(rng.choice([PERSON_A, PERSON_B, "c" * 64]), title=rng.choice(["Profiling", "Risk"]),
                        participant={"country": rng.choice(["AFG", "TJK"])})

    found: list[tuple[str, str, dict[str, Any], bool]] = []
    subs = [(f"{prefix}-{i}", rng.choice(["seizure", "seizure", "price", "training"])) for i in range(count)]
    for sid, type_ in subs:
        data = version(type_)
        found.append((sid, type_, data, True))
        roll = rng.random()
        if roll < 0.2:
            found.append((sid, type_, data, True))  # sent again, unchanged
        elif roll < 0.5:
            found.append((sid, type_, version(type_), True))  # amended
        elif roll < 0.6:
            found.append((sid, type_, {"quantity": -1}, False))  # an amendment validate rejects
    for sid, type_ in earlier or []:
        found.append((sid, type_, version(type_), True))
    return found


async def visible_views(repository: Repository) -> Rows:
    """Every view's rows as the read side gives them."""
    return shown_rows({view: await repository.query_view(view, {}, None, 100_000) for view in VIEWS})


async def processed_everything(repository: Repository, feeder: Feeder) -> bool:
    """True once the progress documents reach the last record of every partition the feeder wrote."""
    last: dict[str, int] = {}
    for send in feeder.sends:
        last[f"received#{send.partition}"] = last.get(f"received#{send.partition}", 0) + 1
        kind = "validated" if send.valid or send.withdrawn else "rejected"
        last[f"{kind}#{send.partition}"] = last.get(f"{kind}#{send.partition}", 0) + 1
    progress = {p["_id"]: p["next_offset"] for p in await repository.load_progress()}
    # each partition holds exactly the records the feeder sent; transaction markers are not used here
    return all(progress.get(key, 0) >= count for key, count in last.items())


def expected_status(sends: list[Send]) -> dict[str, str]:
    latest: dict[str, str] = {}
    for send in sends:
        latest[send.sid] = "withdrawn" if send.withdrawn else "validated" if send.valid else "rejected"
    return latest


class Guarded:
    """A repository that records every write of a document whose partition its worker does not own at that moment."""

    def __init__(self, inner: MongoRepository, topics: Any) -> None:
        self.inner = inner
        self.topics = topics
        self.worker: AggregateWorker | None = None
        self.violations: list[str] = []
        self.generation = inner.generation

    def _owns(self, topic: str, partition: int, what: str) -> None:
        assert self.worker is not None
        if TopicPartition(topic, partition) not in self.worker.owned:
            self.violations.append(f"{what} written without owning {topic}#{partition}")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def save_views(self, docs: Mapping[ViewKey, Document], new: AbstractSet[ViewKey] = frozenset()) -> None:
        for (view, key), doc in docs.items():
            self._owns(self.topics.validated, doc["partition"], f"{view}/{key}")
        await self.inner.save_views(docs, new)

    async def save_progress(self, docs: Iterable[Document]) -> None:
        docs = list(docs)
        for doc in docs:
            self._owns(doc["topic"], doc["partition"], f"progress/{doc['_id']}")
        await self.inner.save_progress(docs)


@pytest.fixture
async def store(infra: Infra) -> AsyncIterator[tuple[AsyncMongoClient[Document], str]]:
    client = connect(infra.mongodb_url, "tests")
    database = f"scale_{uuid.uuid4().hex[:10]}"
    try:
        yield client, database
    finally:
        await client.drop_database(database)
        await client.close()


def make_settings(infra: Infra, database: str, **overrides: Any) -> AggregateSettings:
    namespace = f"a{uuid.uuid4().hex[:8]}"
    return AggregateSettings(kafka_bootstrap_servers=infra.bootstrap, mongodb_url=infra.mongodb_url,
                             mongodb_database=database, topic_namespace=namespace, group_id=f"{namespace}-aggregate",
                             **overrides)


async def test_two_workers_split_partitions_and_keep_views_exact_through_rebalances(
        infra: Infra, store: tuple[AsyncMongoClient[Document], str]) -> None:
    client, database = store
    settings = make_settings(infra, database, max_batch=40)
    repository = MongoRepository(client, database)
    await repository.ensure_indexes()
    guards: list[Guarded] = []

    async def start_worker() -> AggregateWorker:
        guard = Guarded(repository, settings.topics)
        worker = AggregateWorker(settings, guard)
        guard.worker = worker
        guards.append(guard)
        await worker.start()
        return worker

    rng = random.Random(11)
    first, second = await start_worker(), await start_worker()
    third: AggregateWorker | None = None
    try:
        async def split() -> bool:
            return bool(first.owned) and bool(second.owned) and len(first.owned | second.owned) == 18
        await until(split, what="both workers owning partitions")

        async with Feeder(infra.bootstrap, settings) as feeder:
            await feeder.feed(workload(rng, "a", 90))
            await second.stop()  # hands its partitions over mid-stream
            await feeder.feed(workload(rng, "b", 60, earlier=[(s.sid, s.type) for s in feeder.sends[:40:3]]))
            third = await start_worker()  # takes some back
            await feeder.feed(workload(rng, "c", 60, earlier=[(s.sid, s.type) for s in feeder.sends[5:120:4]]))
            await until(lambda: processed_everything(repository, feeder), what="every event processed")
            sends = feeder.sends
    finally:
        for worker in (first, second, third):
            if worker is not None:
                await worker.stop()

    assert len(sends) >= 300
    assert await visible_views(repository) == oracle(sends)
    records = {sid: (await repository.get_submission(sid) or {}).get("status") for sid in expected_status(sends)}
    assert records == expected_status(sends)
    assert [v for g in guards for v in g.violations] == []
    for worker in (first, second, third):
        assert worker is not None and worker.assignments, "every worker got partitions"
        for assignment in worker.assignments:  # partition N of the three topics always on one worker
            by_topic = {t: {tp.partition for tp in assignment if tp.topic == t} for t in settings.topics.all()}
            assert by_topic[settings.topics.received] == by_topic[settings.topics.validated] \
                == by_topic[settings.topics.rejected]
    assert any(a and len(a) < 18 for a in first.assignments), "the first worker shared its partitions"


async def test_more_workers_than_partitions_leaves_the_extra_one_idle_and_not_ready_with_views_exact(
        infra: Infra, store: tuple[AsyncMongoClient[Document], str]) -> None:
    """docs/views.md: more processes than partitions leaves the extra ones idle (and not ready)."""
    client, database = store
    settings = make_settings(infra, database, max_batch=40, topic_partitions=2)
    repository = MongoRepository(client, database)
    await repository.ensure_indexes()
    guards: list[Guarded] = []
    workers: list[AggregateWorker] = []
    try:
        for _ in range(3):
            guard = Guarded(repository, settings.topics)
            worker = AggregateWorker(settings, guard)
            guard.worker = worker
            guards.append(guard)
            await worker.start()
            workers.append(worker)

        async def settled() -> bool:
            owned = [{tp.partition for tp in w.owned} for w in workers]
            return sorted(len(o) for o in owned) == [0, 1, 1] and set().union(*owned) == {0, 1}
        await until(settled, what="two workers owning one partition each, the third none")
        async with Feeder(infra.bootstrap, settings) as feeder:
            await feeder.feed(workload(random.Random(5), "m", 80))
            await until(lambda: processed_everything(repository, feeder), what="every event processed")
            sends = feeder.sends
        idle = [w for w in workers if not w.owned]
        assert len(idle) == 1
        assert not idle[0].assigned(), "an idle worker does not report itself ready"
        assert all(w.assigned() for w in workers if w.owned)
    finally:
        for worker in workers:
            await worker.stop()

    assert await visible_views(repository) == oracle(sends)
    assert [v for g in guards for v in g.violations] == []
