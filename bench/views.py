"""`python -m bench.views`: how long the trainings view, the fact sheet, the map and the export take over
100,000 submissions of all five types.

Starts a store of its own (FerretDB unless `mongod` is on PATH; `DMP_FORCE_FERRETDB=1` forces it), makes
`--submissions` submissions as `make bench-scale` does (bench/scale_load.py: same shares, amendments and
rejections), pseudonymises and validates them with ingest's and validate's own code, applies the events
through the worker's (apply.apply_records), and times the routes through aggregate's read API in process
(no socket). Each read is timed warm (the same request again, nothing written since) and cold (right after
one more submission was applied). Not part of `make bench`: run it by hand.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import TopicPartition
from pymongo import AsyncMongoClient

from bench.own_store import on_own_store
from bench.scale_load import Corpus
from services.aggregate.app import create_app
from services.aggregate.apply import apply_records
from services.aggregate.mongo_repository import MongoRepository
from services.aggregate.settings import AggregateSettings
from services.ingest.pseudonym import pseudonymise_training
from services.validate.decision import decide
from shared.auth import InMemoryKeyStore, make_key
from shared.envelope import SubmissionReceived
from shared.settings import DEV_AUTH_PEPPER
from shared.store import Document
from shared.topics import Topics

PARTITIONS = 6
BATCH = 1000
PSEUDONYM_KEY = b"bench-views"


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes


class Feed:
    """Submissions in, as the pipeline turns them into events: received, then validated or rejected."""

    def __init__(self, repository: MongoRepository, topics: Topics) -> None:
        self.repository, self.topics = repository, topics
        self.next_offset: dict[tuple[str, int], int] = {}

    async def resume(self) -> int:
        """Go on after what the store holds; how many validated events it has applied."""
        names = dict(zip(("received", "validated", "rejected"), self.topics.all(), strict=True))
        progress = await self.repository.load_progress()
        self.next_offset = {(names[p["kind"]], int(p["partition"])): int(p["next_offset"]) for p in progress}
        return sum(int(p["next_offset"]) for p in progress if p["kind"] == "validated")

    def _record(self, topic: str, partition: int, value: bytes) -> tuple[TopicPartition, Record]:
        offset = self.next_offset.get((topic, partition), 0)
        self.next_offset[(topic, partition)] = offset + 1
        return TopicPartition(topic, partition), Record(offset, value)

    async def apply(self, bodies: list[dict[str, Any]]) -> None:
        received: dict[TopicPartition, list[Record]] = {}
        decided: dict[TopicPartition, list[Record]] = {}
        for body in bodies:
            data = body["data"]
            if body["type"] == "training":
                data, _ = pseudonymise_training(data, PSEUDONYM_KEY)
            event = SubmissionReceived(id=body["id"], type=body["type"], schema_version=body["schema_version"],
                                       data=data, submitted_by="bench", received_at=datetime.now(UTC),
                                       trace_id="0" * 32).encode()
            partition = zlib.crc32(body["id"].encode()) % PARTITIONS
            tp, record = self._record(self.topics.received, partition, event)
            received.setdefault(tp, []).append(record)
            out = decide(event, body["id"].encode(), {}, partition, record.offset, self.topics)
            tp, record = self._record(out.topic, partition, out.value)
            decided.setdefault(tp, []).append(record)
        # the received events first, as the topics order them for one submission
        await apply_records(self.repository, received, self.topics)
        await apply_records(self.repository, decided, self.topics)


async def timed(client: httpx.AsyncClient, what: str, path: str, rounds: int, feed: Feed | None = None,
                corpus: Corpus | None = None) -> None:
    """`rounds` reads of `path`, after one untimed one; cold ones each after one more submission is applied."""
    (await client.get(path)).raise_for_status()
    seconds = []
    for _ in range(rounds):
        if feed is not None and corpus is not None:
            await feed.apply(corpus.next(1))
        began = time.perf_counter()
        response = await client.get(path)
        seconds.append(time.perf_counter() - began)
        response.raise_for_status()
    seconds.sort()
    p99 = seconds[min(len(seconds) - 1, round(0.99 * len(seconds) + 0.5) - 1)]
    print(f"{what:<34} {'cold' if feed else 'warm'}  p50 {statistics.median(seconds) * 1000:7.1f} ms  "
          f"p99 {p99 * 1000:7.1f} ms  ({len(response.content):,} bytes)", flush=True)


async def measure(url: str, count: int, rounds: int) -> None:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url)
    repository = MongoRepository(client, "views")
    await repository.ensure_indexes()
    topics = Topics.under("bench")
    feed = Feed(repository, topics)
    if await feed.resume():
        print("the store's views are kept from an earlier run (--store): not loaded again", flush=True)
        corpus = Corpus(seed=int(time.time()))
    else:
        corpus = Corpus(seed=7)
        began = time.perf_counter()
        sent = 0
        while corpus.submissions < count:
            bodies = corpus.next(min(BATCH, count - corpus.submissions))
            sent += len(bodies)
            await feed.apply(bodies)
        print(f"{corpus.submissions:,} submissions ({sent:,} with amendments) applied in "
              f"{time.perf_counter() - began:.1f} s", flush=True)
    if not rounds:
        await client.close()
        return
    keys = InMemoryKeyStore()
    analyst = make_key(DEV_AUTH_PEPPER.encode(), "analyst", None, "bench")
    keys.records[analyst.record["_id"]] = analyst.record
    # a deadline far past any read, so that a slow one is timed rather than answered 503
    app = create_app(AggregateSettings(store_timeout_s=300), repository=repository, keys=keys)
    headers = {"Authorization": f"Bearer {analyst.key}"}
    reads = [("trainings", "/v1/views/trainings"),
             ("trainings country+year", "/v1/views/trainings?country=AFG&year=2020"),
             ("fact-sheet", "/v1/views/fact-sheet?country=AFG&year=2020"),
             ("map", "/v1/views/map"),
             ("map drug+from+to", "/v1/views/map?drug=heroin&from=2020-01-01&to=2020-12-31"),
             ("export arq", "/v1/exports/arq?country=AFG&year=2020")]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                 headers=headers, timeout=60) as http:
        for what, path in reads:
            await timed(http, what, path, rounds)
            await timed(http, what, path, rounds, feed, corpus)
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10, help="Reads timed per route and state; 0: only load")
    parser.add_argument("--store", type=Path, help="The store's folder: kept, and its views read again by "
                                                   "the next run given it (default: a new one under var/)")
    args = parser.parse_args()
    on_own_store(args.store or Path("var") / "bench-views" / uuid.uuid4().hex[:8],
                 lambda url: measure(url, args.submissions, args.rounds))


if __name__ == "__main__":
    main()
