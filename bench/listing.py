"""`python -m bench.listing`: how long pages of `GET /v1/submissions` take over 100,000 submissions.

Starts a store of its own (FerretDB unless `mongod` is on PATH; `DMP_FORCE_FERRETDB=1` forces it),
writes `--submissions` submissions through the worker's own code (worker.apply_records): their
received events, a verdict for each a second later (3 % rejected, the rest validated) and amendments
of 5 % of them (a new received event and verdict), with types and countries drawn as the scale
benchmark draws them (bench/scale_load.py). Verdicts carry no view data: the views are not what this
measures. It then times the listing's pages, filtered and not, through its core
(listing.list_submissions) over the real store. Not part of `make bench`: run it by hand.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from aiokafka import TopicPartition
from pymongo import AsyncMongoClient

from bench.own_store import on_own_store
from bench.scale_load import AMENDED, COUNTRIES, COUNTRY_WEIGHTS, REJECTED, TYPE_SHARES
from services.aggregate.apply import apply_records
from services.aggregate.listing import Selection, list_submissions
from services.aggregate.mongo_repository import MongoRepository
from shared.envelope import ErrorDetail, Provenance, SubmissionRejected, SubmissionValidated
from shared.store import Document
from shared.topics import Topics

PARTITIONS = 6
OFFICERS = 50
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes


@dataclass
class Log:
    """The three topics' partitions as the bench fills them: the next offset of each."""

    next: dict[TopicPartition, int]

    def append(self, batch: dict[TopicPartition, list[Record]], topic: str, partition: int, value: bytes) -> int:
        tp = TopicPartition(topic, partition)
        offset = self.next.get(tp, 0)
        self.next[tp] = offset + 1
        batch.setdefault(tp, []).append(Record(offset, value))
        return offset


def verdict(sid: str, type_: str, partition: int, seq: int, officer: str, received_at: datetime,
            rejected: bool) -> bytes:
    """A verdict a second after receipt. A validated one names a type no view counts (its data is empty)."""
    common: dict[str, object] = {"id": sid, "data_hash": "0" * 64, "received": Provenance(partition=partition, seq=seq),
                                 "submitted_by": officer, "received_at": received_at, "trace_id": "0" * 32}
    decided = received_at + timedelta(seconds=1)
    if rejected:
        return orjson.dumps(SubmissionRejected(**common, type=type_, original={"data": {}}, rejected_at=decided,
                                               rejected_by="bench", errors=[ErrorDetail(
                                                   loc=["data"], msg="bad", type="invalid")]).model_dump(mode="json"))
    return orjson.dumps(SubmissionValidated(**common, type="bench", schema_version=1, data={}, validated_at=decided,
                                            validator="bench").model_dump(mode="json"))


async def fill(repository: MongoRepository, topics: Topics, count: int, batch: int = 1000) -> None:
    """`count` submissions, one a second from START, with verdicts and amendments (see the module docstring)."""
    rng = random.Random(7)  # noqa: S311 - reproducible test data, not secrets
    log = Log({})
    sent: list[tuple[str, str, str]] = []
    for first in range(0, count, batch):
        records: dict[TopicPartition, list[Record]] = {}
        for n in range(first, min(first + batch, count)):
            amended = sent and rng.random() < AMENDED
            if amended:
                sid, type_, officer = sent[rng.randrange(len(sent))]
            else:
                sid, officer = str(uuid.UUID(int=rng.getrandbits(128), version=4)), f"officer{n % OFFICERS:02d}"
                type_ = rng.choices(tuple(TYPE_SHARES), weights=tuple(TYPE_SHARES.values()))[0]
                sent.append((sid, type_, officer))
            at = START + timedelta(seconds=n)
            partition = uuid.UUID(sid).int % PARTITIONS
            event = {"id": sid, "type": type_, "schema_version": 1,
                     "data": {"country": rng.choices(COUNTRIES, weights=COUNTRY_WEIGHTS)[0], "quantity": n},
                     "submitted_by": officer, "received_at": at.isoformat(), "trace_id": "0" * 32}
            seq = log.append(records, topics.received, partition, orjson.dumps(event))
            rejected = rng.random() < REJECTED
            log.append(records, topics.rejected if rejected else topics.validated, partition,
                       verdict(sid, type_, partition, seq, officer, at, rejected))
        await apply_records(repository, records, topics)


async def timed(what: str, run: Callable[[], Awaitable[tuple[int, bool]]], rounds: int) -> None:
    seconds = []
    for _ in range(rounds):
        began = time.perf_counter()
        items, more = await run()
        seconds.append(time.perf_counter() - began)
    print(f"{what:<52} {items:>4} items  next={'yes' if more else 'no ':<3}  "
          f"median {statistics.median(seconds) * 1000:7.1f} ms  max {max(seconds) * 1000:7.1f} ms", flush=True)


async def measure(url: str, count: int, rounds: int) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url)
    repository = MongoRepository(client, f"listing_{uuid.uuid4().hex[:8]}")
    topics = Topics.under("bench")
    await repository.ensure_indexes()
    began = time.perf_counter()
    await fill(repository, topics, count)
    print(f"{count} submissions written in {time.perf_counter() - began:.1f} s", flush=True)
    middle = START + timedelta(seconds=count // 2)

    def page(selection: Selection, limit: int = 100) -> Callable[[], Awaitable[tuple[int, bool]]]:
        async def run() -> tuple[int, bool]:
            items, positions = await list_submissions(repository, selection, None, limit)
            return len(items), positions is not None
        return run

    await timed("first page, no filter", page(Selection()), rounds)
    await timed("first page, limit 1000", page(Selection(), 1000), rounds)
    await timed("one type (`type=price`, 14 %)", page(Selection(type="price")), rounds)
    await timed("rejected (`status=rejected`, 3 %)", page(Selection(status="rejected")), rounds)
    await timed("one country (`country=TJK`)", page(Selection(country="TJK")), rounds)
    await timed("received in the newer half (`from`)", page(Selection(received_from=middle)), rounds)
    await timed("changed in the newer half (`updated_since`)", page(Selection(updated_since=middle)), rounds)
    await timed("changed in the last minute (`updated_since`)", page(Selection(
        updated_since=START + timedelta(seconds=count - 60))), rounds)
    await timed(f"one officer's own (1 in {OFFICERS})", page(Selection(submitted_by="officer07")), rounds)
    await timed("one hour in the middle (`from` and `to`)", page(Selection(
        received_from=middle, received_to=middle + timedelta(hours=1))), rounds)
    await timed("a status none has (`status=withdrawn`)", page(Selection(status="withdrawn")), rounds)
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    on_own_store(Path("var") / "bench-listing" / uuid.uuid4().hex[:8],
                 lambda url: measure(url, args.submissions, args.rounds))


if __name__ == "__main__":
    main()
