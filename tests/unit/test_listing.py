"""The listing's walk over the received partitions, on the in-memory repository."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.aggregate import listing
from services.aggregate.listing import Selection, list_submissions
from services.aggregate.memory_repository import InMemoryRepository

START = datetime(2026, 3, 1, tzinfo=UTC)


def at(second: int) -> str:
    return (START + timedelta(seconds=second)).isoformat()


def receive(repo: InMemoryRepository, partition: int, offset: int, submission_id: str, second: int,
            officer: str = "k1", record: bool = True, country: str = "TJK") -> None:
    """A received event as the worker leaves it: its listing entry, the record, progress past it."""
    repo.listing[f"{partition}:{offset}"] = {"_id": f"{partition}:{offset}", "id": submission_id,
                                             "received_at": at(second), "submitted_by": officer}
    if record and submission_id not in repo.submissions:
        repo.submissions[submission_id] = {"_id": submission_id, "type": "seizure", "status": "received",
                                           "country": country, "submitted_by": officer, "version": 1,
                                           "received_at": at(second), "updated_at": at(second), "errors": []}
    held = repo.progress.get(f"received#{partition}", {"next_offset": 0})["next_offset"]
    repo.progress[f"received#{partition}"] = {"_id": f"received#{partition}", "kind": "received",
                                              "partition": partition, "next_offset": max(held, offset + 1)}


async def walk(repo: InMemoryRepository, limit: int, selection: Selection | None = None) -> list[list[str]]:
    pages: list[list[str]] = []
    positions: dict[int, int] | None = None
    while True:
        items, positions = await list_submissions(repo, selection or Selection(), positions, limit)
        pages.append([i.id for i in items])
        if positions is None:
            return pages


@pytest.fixture
def repo() -> InMemoryRepository:
    """Three partitions with gaps (transaction markers), received times interleaved across them."""
    repo = InMemoryRepository()
    seconds = {0: [1, 4, 5, 9, 20], 1: [2, 3, 10, 11], 2: [6, 7, 8, 12, 13, 14]}
    for partition, times in seconds.items():
        for n, second in enumerate(times):
            receive(repo, partition, 2 * n + 1, f"s{second:02d}", second, officer=f"k{second % 2}")
    return repo


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 100])
async def test_pages_merge_partitions_by_received_time_whatever_their_size(repo: InMemoryRepository,
                                                                           limit: int) -> None:
    expected = [e["id"] for e in sorted(repo.listing.values(), key=lambda e: e["received_at"])]
    pages = await walk(repo, limit)
    assert [i for page in pages for i in page] == expected
    assert all(len(page) <= limit for page in pages)


async def test_an_amendment_does_not_list_its_submission_again(repo: InMemoryRepository) -> None:
    receive(repo, 1, 40, "s02", 30)
    assert [i for page in await walk(repo, 4) for i in page].count("s02") == 1


async def test_an_entry_whose_record_is_not_written_yet_holds_its_partition_back(repo: InMemoryRepository) -> None:
    receive(repo, 2, 40, "late", 15, record=False)
    receive(repo, 2, 41, "later", 16)
    items, positions = await list_submissions(repo, Selection(), None, 100)
    assert "late" not in [i.id for i in items] and "later" not in [i.id for i in items]
    assert positions is not None
    receive(repo, 2, 40, "late", 15)
    rest, after = await list_submissions(repo, Selection(), positions, 100)
    assert [i.id for i in rest] == ["late", "later"] and after is None


async def test_a_selective_filter_answers_within_its_budget_and_the_cursor_goes_on(
        repo: InMemoryRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "SCAN_BUDGET", 4)
    monkeypatch.setattr(listing, "CHUNK", 2)
    receive(repo, 0, 60, "wanted", 50, officer="rare")
    pages = await walk(repo, 10, Selection(submitted_by="rare"))
    assert len(pages) > 1
    assert [i for page in pages for i in page] == ["wanted"]


def expected_between(repo: InMemoryRepository, low: int, high: int) -> list[str]:
    entries: list[dict[str, Any]] = sorted(repo.listing.values(), key=lambda e: e["received_at"])
    return [e["id"] for e in entries if at(low) <= e["received_at"] <= at(high)]


async def test_received_range_starts_and_stops_within_the_range(repo: InMemoryRepository,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listing, "CLOCK_SLACK", timedelta(0))
    selection = Selection(received_from=START + timedelta(seconds=5), received_to=START + timedelta(seconds=11))
    assert [i for page in await walk(repo, 2, selection) for i in page] == expected_between(repo, 5, 11)


async def test_a_range_at_the_ends_of_the_calendar_is_no_error(repo: InMemoryRepository) -> None:
    earliest, latest = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    pages = await walk(repo, 100, Selection(received_from=earliest, received_to=latest))
    assert len([i for page in pages for i in page]) == len(repo.listing)
