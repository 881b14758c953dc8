"""One submitter's listing through their windows, written by the production path (apply_records)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import TopicPartition

from services.aggregate import apply, listing
from services.aggregate.apply import apply_records
from services.aggregate.listing import Selection, list_submissions
from services.aggregate.memory_repository import InMemoryRepository
from shared.store import Document
from shared.topics import Topics

TOPICS = Topics.under("t")
PARTITIONS = 3
START = datetime(2026, 5, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes


@dataclass(frozen=True)
class Sent:
    id: str
    officer: str
    received_at: str


def received(n: int, officer: str) -> tuple[Sent, bytes]:
    sent = Sent(str(uuid.UUID(int=n)), officer, (START + timedelta(seconds=n)).isoformat())
    event = {"id": sent.id, "type": "seizure", "schema_version": 1, "data": {"country": "TJK"},
             "submitted_by": officer, "received_at": sent.received_at, "trace_id": "0" * 32}
    return sent, orjson.dumps(event)


async def send(repo: InMemoryRepository, officers: list[str], count: int, first: int = 0) -> list[Sent]:
    """`count` submissions, partition n % PARTITIONS, officers drawn at random, in batches of 7."""
    draw = random.Random(first)
    sent: list[Sent] = []
    offsets = {p: sum(1 for e in repo.listing if e.startswith(f"{p}:")) for p in range(PARTITIONS)}
    for start in range(first, first + count, 7):
        batch: dict[TopicPartition, list[Record]] = {}
        for n in range(start, min(start + 7, first + count)):
            one, value = received(n, draw.choice(officers))
            sent.append(one)
            partition = n % PARTITIONS
            batch.setdefault(TopicPartition(TOPICS.received, partition), []).append(Record(offsets[partition], value))
            offsets[partition] += 1
        await apply_records(repo, batch, TOPICS)
    return sent


async def listed(repo: InMemoryRepository, officer: str, limit: int) -> list[str]:
    ids: list[str] = []
    positions: dict[int, int] | None = None
    while True:
        items, positions = await list_submissions(repo, Selection(submitted_by=officer), positions, limit)
        assert len(items) <= limit
        ids += [i.id for i in items]
        if positions is None:
            return ids


@pytest.fixture(autouse=True)
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows and reads of a few offsets, so that a page spans many of them."""
    monkeypatch.setattr(apply, "LISTING_WINDOW", 4)
    monkeypatch.setattr(listing, "LISTING_WINDOW", 4)
    monkeypatch.setattr(listing, "CHUNK", 3)
    monkeypatch.setattr(listing, "WINDOWS_PER_READ", 2)


@pytest.mark.parametrize("limit", [1, 2, 5, 50])
async def test_an_officers_pages_hold_exactly_their_submissions_in_received_order(limit: int) -> None:
    repo = InMemoryRepository()
    sent = await send(repo, ["rare", "k1", "k2", "k3", "k4", "k5"], 120)
    for officer in ("rare", "k1"):
        expected = [s.id for s in sorted(sent, key=lambda s: s.received_at) if s.officer == officer]
        assert expected and await listed(repo, officer, limit) == expected


async def test_an_officers_listing_reads_their_entries_only() -> None:
    repo = InMemoryRepository()
    sent = await send(repo, ["rare", *(f"k{n}" for n in range(10))], 300)
    read: list[str] = []
    load = repo.load_listing

    async def counted(keys: Iterable[str]) -> list[Document]:
        wanted = list(keys)
        read.extend(k for k in wanted if not k.startswith("@"))
        return await load(wanted)

    repo.load_listing = counted  # type: ignore[method-assign]
    ids = await listed(repo, "rare", 100)
    assert sorted(ids) == sorted(s.id for s in sent if s.officer == "rare")
    assert len(read) == len(ids)


async def test_entries_applied_before_windows_were_written_are_listed_too() -> None:
    """Data applied by a version that wrote no windows: those entries are read in full, the later ones by window."""
    repo = InMemoryRepository()
    officers = ["rare", "k1", "k2"]
    before = await send(repo, officers, 40)
    for key in [k for k in repo.listing if k.startswith("@")]:
        del repo.listing[key]
    for progress in repo.progress.values():
        progress.pop("listed_from", None)
    after = await send(repo, officers, 40, first=40)
    assert min(d["listed_from"] for d in repo.progress.values() if d["kind"] == "received") > 0
    expected = [s.id for s in sorted(before + after, key=lambda s: s.received_at) if s.officer == "rare"]
    assert await listed(repo, "rare", 3) == expected
