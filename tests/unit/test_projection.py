"""The view projection is exact under duplicates, amendments, redelivery and crashes between writes."""

from __future__ import annotations

from typing import Any

import pytest

from services.aggregate.apply import apply_batch
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.projection import Event
from shared.envelope import content_hash
from tests.factories import seizure_data
from tests.unit.test_views_projection import shown


def validated(sid: str, seq: int, offset: int, partition: int = 0, **overrides: Any) -> Event:
    data = seizure_data(**overrides)
    quantity, unit = data["quantity"], data["unit"]
    factor = {"g": 0.001, "kg": 1.0}[unit]
    data["normalised"] = {"quantity": quantity * factor, "unit": "kg", "rules": "units.v1"}
    return Event("validated", sid, "seizure", seq, content_hash("seizure", 1, seizure_data(**overrides)),
                 f"2024-01-01T00:00:{seq:02d}+00:00", "officer", "2024-01-01T00:00:00+00:00", data=data,
                 source=str(partition), offset=offset)


def rejected(sid: str, seq: int) -> Event:
    return Event("rejected", sid, "seizure", seq, f"bad-{seq}", "2024-01-01T00:00:00+00:00", "officer",
                 "2024-01-01T00:00:00+00:00", errors=[{"loc": ["data", "quantity"], "msg": "x", "type": "y"}])


def rows(repo: InMemoryRepository) -> dict[str, tuple[int, int, int, int]]:
    return {key: (d["cases"], d["quantity_micro"], d["persons_arrested"], d["submissions"])
            for key, d in shown(repo, "seizures").items()}


async def test_redelivered_and_resubmitted_events_count_once() -> None:
    repo = InMemoryRepository()
    first = validated("a", seq=1, offset=10)
    await apply_batch(repo, [first])
    await apply_batch(repo, [first])  # redelivery
    await apply_batch(repo, [validated("a", seq=5, offset=11)])  # same data sent again
    assert rows(repo) == {"AFG:2024:heroin:kg": (1, 1_500_000, 2, 1)}
    assert repo.submissions["a"]["version"] == 1


async def test_amendment_moves_figures_and_old_bucket_empties() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("a", 1, 10), validated("b", 2, 11, quantity=500)])
    await apply_batch(repo, [validated("a", 3, 12, country="IRN")])
    assert rows(repo) == {"AFG:2024:heroin:kg": (1, 500_000, 2, 1), "IRN:2024:heroin:kg": (1, 1_500_000, 2, 1)}
    assert repo.submissions["a"]["version"] == 2


async def test_amendment_within_the_same_bucket_changes_only_the_figures() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("a", 1, 10), validated("a", 2, 11, quantity=2500, cases=2)])
    assert rows(repo) == {"AFG:2024:heroin:kg": (2, 2_500_000, 2, 1)}


async def test_older_version_arriving_late_changes_nothing() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("a", 5, 10, country="IRN")])
    await apply_batch(repo, [validated("a", 3, 9)])
    assert rows(repo) == {"IRN:2024:heroin:kg": (1, 1_500_000, 2, 1)}


async def test_rejected_amendment_leaves_the_valid_version_counted() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("a", 1, 10), rejected("a", 2)])
    assert rows(repo) == {"AFG:2024:heroin:kg": (1, 1_500_000, 2, 1)}
    record = repo.submissions["a"]
    assert (record["status"], record["version"], record["valid"]["seq"]) == ("rejected", 2, 1)


class CrashingRepository(InMemoryRepository):
    """Fails once, after the views are written and before the submission records are."""

    def __init__(self) -> None:
        super().__init__()
        self.crash_next = False

    async def save_submissions(self, docs: Any, new: Any = frozenset()) -> None:
        if self.crash_next:
            self.crash_next = False
            raise ConnectionError("store went away")
        await super().save_submissions(docs, new)


@pytest.mark.parametrize("crash_batch", [0, 1, 2])
async def test_crash_between_view_and_record_writes_is_repaired_by_replay(crash_batch: int) -> None:
    batches = [[validated("a", 1, 10), validated("b", 2, 11, quantity=700)],
               [validated("a", 3, 12, country="IRN"), validated("b", 2, 11, quantity=700)],
               [validated("a", 4, 13, country="AFG", quantity=900), validated("c", 5, 14, drug="opium")]]
    repo = CrashingRepository()
    for index, batch in enumerate(batches):
        repo.crash_next = index == crash_batch
        if index == crash_batch:
            with pytest.raises(ConnectionError):
                await apply_batch(repo, batch)
        await apply_batch(repo, batch)  # the batch is redelivered after the restart
    assert rows(repo) == {"AFG:2024:heroin:kg": (2, 1_600_000, 4, 2), "AFG:2024:opium:kg": (1, 1_500_000, 2, 1)}


async def test_status_history_says_which_fields_an_amendment_changed() -> None:
    from services.aggregate.api import status_of
    from services.aggregate.projection import field_digests

    repo = InMemoryRepository()
    first, second = seizure_data(), seizure_data(country="IRN", quantity=7)

    def received(seq: int, data: dict[str, Any]) -> Event:
        return Event("received", "a", "seizure", seq, content_hash("seizure", 1, data), "t", "officer", "t",
                     fields=field_digests(data))

    await apply_batch(repo, [received(1, first), received(2, first), received(3, second)])
    history = status_of(repo.submissions["a"]).history
    assert [(h.version, h.changed) for h in history] == [(1, None), (1, None), (2, ["country", "quantity"])]


async def test_each_partition_writes_its_own_shard_of_a_bucket_and_reads_sum_them() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("a", 1, 10, partition=0), validated("b", 2, 7, partition=4, quantity=500)])
    shards = {key: (d["partition"], d["wm"], d["cases"]) for (view, key), d in repo.views.items()
              if view == "seizures"}
    assert shards == {"AFG:2024:heroin:kg#p0": (0, {"0": 10}, 1), "AFG:2024:heroin:kg#p4": (4, {"4": 7}, 1)}
    [row] = await repo.query_view("seizures", {"country": "AFG"}, None, 10)
    assert (row["_id"], row["cases"], row["quantity_micro"], row["submissions"], row["wm"]) == (
        "AFG:2024:heroin:kg", 2, 2_000_000, 2, {"0": 10, "4": 7})


async def test_a_submission_whose_partition_changed_still_nets_out_exactly() -> None:
    repo = InMemoryRepository()  # e.g. after the topics were given more partitions
    await apply_batch(repo, [validated("a", 1, 10, partition=0)])
    await apply_batch(repo, [validated("a", 2, 3, partition=5, country="IRN")])
    assert rows(repo) == {"IRN:2024:heroin:kg": (1, 1_500_000, 2, 1)}
    assert repo.views[("seizures", "AFG:2024:heroin:kg#p5")]["submissions"] == -1  # undoes p0's shard in the sum
