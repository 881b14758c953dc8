"""`python -m bench.listing`: how long pages of `GET /v1/submissions` take over 100,000 submissions.

Starts a store of its own (FerretDB unless `mongod` is on PATH; `DMP_FORCE_FERRETDB=1` forces it),
writes received events for `--submissions` submissions through the worker's own code
(worker.apply_records) and times the listing's pages, filtered and not, through its core
(listing.list_submissions) over the real store. Not part of `make bench`: run it by hand.
"""

from __future__ import annotations

import argparse
import asyncio
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

from infra import store
from services.aggregate.apply import apply_records
from services.aggregate.listing import Selection, list_submissions
from services.aggregate.mongo_repository import MongoRepository
from shared.store import Document
from shared.topics import Topics

PARTITIONS = 6
OFFICERS = 50
COUNTRIES = ("AFG", "KAZ", "KGZ", "TJK", "UZB")


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes


async def fill(repository: MongoRepository, topics: Topics, count: int, batch: int = 1000) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, count, batch):
        records: dict[TopicPartition, list[Record]] = {}
        for n in range(first, min(first + batch, count)):
            partition = n % PARTITIONS
            at = (start + timedelta(seconds=n)).isoformat()
            event = {"id": str(uuid.uuid4()), "type": "seizure", "schema_version": 1,
                     "data": {"country": COUNTRIES[n % len(COUNTRIES)], "quantity": n},
                     "submitted_by": f"officer{n % OFFICERS:02d}", "received_at": at, "trace_id": "0" * 32}
            records.setdefault(TopicPartition(topics.received, partition), []).append(
                Record(n // PARTITIONS, orjson.dumps(event)))
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
    began = time.perf_counter()
    await fill(repository, topics, count)
    print(f"{count} submissions written in {time.perf_counter() - began:.1f} s", flush=True)
    middle = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=count // 2)

    def page(selection: Selection, limit: int = 100) -> Callable[[], Awaitable[tuple[int, bool]]]:
        async def run() -> tuple[int, bool]:
            items, positions = await list_submissions(repository, selection, None, limit)
            return len(items), positions is not None
        return run

    await timed("first page, no filter", page(Selection()), rounds)
    await timed("first page, limit 1000", page(Selection(), 1000), rounds)
    await timed("page from the middle (`from`)", page(Selection(received_from=middle)), rounds)
    await timed("one country (1 in 5)", page(Selection(country="TJK")), rounds)
    await timed(f"one officer's own (1 in {OFFICERS})", page(Selection(submitted_by="officer07")), rounds)
    await timed("one hour in the middle (`from` and `to`)", page(Selection(
        received_from=middle, received_to=middle + timedelta(hours=1))), rounds)
    await timed("a status none has (reads its budget, then answers)", page(Selection(status="rejected")), rounds)
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    local = store.start(Path("var") / "bench-listing" / uuid.uuid4().hex[:8])
    try:
        print(f"store: {local.engine}", flush=True)
        asyncio.run(measure(local.url, args.submissions, args.rounds))
    finally:
        local.stop()


if __name__ == "__main__":
    main()
