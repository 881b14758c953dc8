"""Seizure payloads for the benchmark: valid envelopes (tests/factories.py) varied a little."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from shared.envelope import (
    EVENT_RECEIVED,
    SubmissionReceived,
    cloudevent_headers,
    new_trace_id,
)
from shared.topics import Topics
from tests.factories import envelope

COUNTRIES = ("AFG", "IRN", "PAK", "TUR", "TJK", "UZB")
PLACES = ("Islam Qala border crossing", "Torkham", "Port of Bandar Abbas", "Kapikule", "Nizhny Panj")


@dataclass(frozen=True)
class Record:
    """One event to put on a topic, as ingest or validate would have published it."""

    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


POINTS = {"AFG": (34.35, 62.2), "IRN": (36.3, 59.6), "PAK": (34.0, 71.5), "TUR": (41.0, 28.97),
          "TJK": (38.56, 68.77), "UZB": (41.3, 69.24)}
"""A point inside each country; seizures sent with coordinates are placed within 0.2° of it (every one a
different place, as in real data: nothing can be remembered from one to the next)."""


def envelopes(n: int, seed: int) -> list[dict[str, Any]]:
    """`n` valid seizure envelopes as clients send them now (schema_version 2); country, date, place and
    quantity vary (a few dozen view buckets), and half carry coordinates (checked against the country)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    start = datetime(2023, 1, 1, tzinfo=UTC).date()
    out = []
    for _ in range(n):
        seized_on = start + timedelta(days=rng.randrange(0, 3 * 365))
        country = rng.choice(COUNTRIES)
        lat, lon = POINTS[country]
        lat, lon = round(lat + rng.uniform(-0.2, 0.2), 5), round(lon + rng.uniform(-0.2, 0.2), 5)
        where: dict[str, Any] = {"coordinates": {"lat": lat, "lon": lon}} if rng.random() < 0.5 else {}
        body = envelope(
            str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            country=country, seized_on=seized_on.isoformat(), place=rng.choice(PLACES),
            quantity=rng.choice((250, 500, 1500, 2000, 12500)) + rng.randrange(0, 1000),
            persons_arrested=rng.randrange(0, 5), **where)
        out.append({**body, "schema_version": 2})
    return out


def bodies(envs: list[dict[str, Any]]) -> list[bytes]:
    """The HTTP bodies for single POSTs."""
    return [orjson.dumps(e) for e in envs]


def received(envs: list[dict[str, Any]]) -> list[Record]:
    """The events ingest would publish on the received topic for these envelopes."""
    out = []
    now = datetime.now(UTC)
    for e in envs:
        trace_id = new_trace_id()
        event = SubmissionReceived(id=e["id"], type=e["type"], schema_version=e["schema_version"], data=e["data"],
                                   submitted_by="anonymous", received_at=now, trace_id=trace_id)
        out.append(Record(e["id"].encode(), event.encode(), cloudevent_headers(EVENT_RECEIVED, e["id"], trace_id, now)))
    return out


def validated(records: list[Record], topics: Topics) -> tuple[list[Record], int]:
    """The decisions validate would publish for `records` (pure `decide`); also how many were rejected."""
    from services.validate.decision import decide

    out, rejected = [], 0
    for offset, r in enumerate(records):
        o = decide(r.value, r.key, dict(r.headers), offset % 6, offset, topics)
        if not o.accepted:
            rejected += 1
            continue
        out.append(Record(o.key.encode(), o.value, list(o.headers)))
    return out, rejected


async def projected(records: list[Record], topics: Topics, primer: int,
              partitions: int) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """The documents aggregate writes for validated `records` (pure projection, in memory), by collection:
    those the first `primer` records leave, and those the rest add or change (each once, as it ends up)."""
    from aiokafka.partitioner import DefaultPartitioner

    from services.aggregate.apply import apply_batch
    from services.aggregate.events import to_event
    from services.aggregate.memory_repository import InMemoryRepository

    partitioner = DefaultPartitioner()
    every = list(range(partitions))
    offsets = dict.fromkeys(every, 0)
    events = []
    for r in records:  # partitions as the producer picks them, offsets as the broker gives them
        partition = partitioner(r.key, every, every)
        events.append(to_event(topics.validated, partition, offsets[partition], r.value, topics))
        offsets[partition] += 1
    repo = InMemoryRepository()
    await apply_batch(repo, [e for e in events[:primer] if e is not None])
    before = _documents(repo)
    await apply_batch(repo, [e for e in events[primer:] if e is not None])
    after = _documents(repo)
    changed = {name: [doc for doc in docs if before.get(name, {}).get(doc["_id"]) != doc]
               for name, docs in ((n, list(d.values())) for n, d in after.items())}
    return {name: list(docs.values()) for name, docs in before.items()}, changed


def _documents(repo: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Collection name (as aggregate's generation 0 names it) → _id → document, in its stored form."""
    from services.aggregate.record_codec import pack

    out: dict[str, dict[str, dict[str, Any]]] = {"submissions": {k: pack(v) for k, v in repo.submissions.items()}}
    for (view, key), doc in repo.views.items():
        out.setdefault(f"view_{view}", {})[key] = dict(doc)
    return out
