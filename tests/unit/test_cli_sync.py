"""Sending the queue against a fake ingest: batches, retries with backoff, partial answers, interruptions."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from cli.queue import Item, Queue, Stored
from cli.sync import SyncRefused, backoff, sync
from tests.factories import seizure_data

Handler = Callable[[list[dict[str, Any]]], httpx.Response]


class FakeIngest:
    """Records every envelope it is sent; answers with `answer(items)` (default: all received)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.batches: list[list[dict[str, Any]]] = []
        self.answers: list[Handler | Exception] = []

    def received(self, items: list[dict[str, Any]]) -> httpx.Response:
        return answer([{"index": i, "id": e["id"], "status": "received"} for i, e in enumerate(items)])

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        items = json.loads(request.content)
        step = self.answers.pop(0) if self.answers else self.received
        if isinstance(step, Exception):
            raise step
        self.batches.append(items)
        return step(items)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url="http://ingest.test", transport=httpx.MockTransport(self),
                            headers={"Authorization": "Bearer dmp_k_s"})

    @property
    def ids(self) -> list[str]:
        return [e["id"] for batch in self.batches for e in batch]


def answer(items: list[dict[str, Any]], status: int = 207, headers: dict[str, Any] | None = None) -> httpx.Response:
    tally = {s: sum(i["status"] == s for i in items) for s in ("received", "invalid", "unavailable")}
    return httpx.Response(status, json={"items": items, **tally}, headers=headers)



def got(queue: Queue, submission_id: str) -> Stored:
    stored = queue.get(submission_id)
    assert stored is not None, submission_id
    return stored

@pytest.fixture
def queue(tmp_path) -> Iterator[Queue]:
    with Queue.open(tmp_path / "queue.sqlite3") as q:
        yield q


def fill(queue: Queue, n: int) -> list[str]:
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(n)]
    queue.enqueue([Item(i, "seizure", 2, seizure_data(place=f"post {n}"), "sheet", "/s.csv", n + 2)
                   for n, i in enumerate(ids)])
    return ids


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def test_everything_pending_is_sent_in_batches_oldest_first_with_the_key(queue: Queue) -> None:
    ids = fill(queue, 7)
    ingest = FakeIngest()
    with ingest.client() as client:
        report = sync(queue, client, batch_size=3, sleep=Sleeps())
    assert [len(b) for b in ingest.batches] == [3, 3, 1]
    assert ingest.ids == ids
    assert ingest.requests[0].url.path == "/v1/submissions/batch"
    assert ingest.requests[0].headers["authorization"] == "Bearer dmp_k_s"
    assert ingest.requests[0].headers["content-type"] == "application/json"
    assert (report.received, report.pending, report.complete) == (7, 0, True)
    assert queue.counts()["received"] == 7


def test_batches_never_exceed_500(queue: Queue) -> None:
    fill(queue, 501)
    ingest = FakeIngest()
    with ingest.client() as client:
        sync(queue, client, batch_size=1000, sleep=Sleeps())
    assert [len(b) for b in ingest.batches] == [500, 1]


def test_connection_errors_are_retried_with_exponential_backoff(queue: Queue) -> None:
    fill(queue, 2)
    ingest = FakeIngest()
    ingest.answers = [httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), httpx.ConnectError("refused")]
    sleeps = Sleeps()
    with ingest.client() as client:
        report = sync(queue, client, retries=5, sleep=sleeps)
    assert report.complete
    assert [round(s, 1) for s in sleeps] == pytest.approx([0.5, 1.0, 2.0], abs=0.21)
    assert got(queue, ingest.ids[0]).attempts == 3


def test_503_waits_at_least_the_servers_retry_after(queue: Queue) -> None:
    fill(queue, 1)
    ingest = FakeIngest()
    ingest.answers = [lambda items: httpx.Response(503, json={"detail": [{"msg": "broker down"}]},
                                                   headers={"Retry-After": "5"})]
    sleeps = Sleeps()
    with ingest.client() as client:
        assert sync(queue, client, sleep=sleeps).complete
    assert 5 <= sleeps[0] <= 5.5


def test_backoff_doubles_up_to_a_cap() -> None:
    for attempt in range(1, 12):
        base = min(30.0, 0.5 * 2 ** (attempt - 1))
        assert base <= backoff(attempt) <= base * 1.1
    assert 5 <= backoff(1, retry_after=5) <= 5.5
    assert backoff(1, retry_after=3600) <= 33


def test_unavailable_items_stay_pending_and_are_resent_with_the_same_id(queue: Queue) -> None:
    ids = fill(queue, 3)

    def partly(items: list[dict[str, Any]]) -> httpx.Response:
        return answer([{"index": 0, "id": items[0]["id"], "status": "received"},
                       {"index": 1, "id": items[1]["id"], "status": "unavailable"},
                       {"index": 2, "id": items[2]["id"], "status": "received"}], headers={"Retry-After": "1"})

    ingest = FakeIngest()
    ingest.answers = [partly]
    with ingest.client() as client:
        report = sync(queue, client, sleep=Sleeps())
    assert report.complete
    assert ingest.ids == [*ids, ids[1]]
    assert queue.counts()["received"] == 3


def test_when_ingest_stays_unreachable_the_sync_gives_up_and_keeps_everything(queue: Queue) -> None:
    fill(queue, 4)
    ingest = FakeIngest()
    ingest.answers = [httpx.ConnectError("refused")] * 10
    sleeps = Sleeps()
    with ingest.client() as client:
        report = sync(queue, client, retries=2, sleep=sleeps)
    assert len(sleeps) == 2
    assert (report.complete, report.pending, report.received) == (False, 4, 0)
    assert "cannot reach ingest" in (report.gave_up or "")
    assert queue.counts()["pending"] == 4


def test_a_broker_that_takes_nothing_counts_as_a_failed_attempt(queue: Queue) -> None:
    fill(queue, 2)
    ingest = FakeIngest()
    unavailable = lambda items: answer([{"index": i, "id": e["id"], "status": "unavailable"}  # noqa: E731
                                        for i, e in enumerate(items)])
    ingest.answers = [unavailable] * 10
    with ingest.client() as client:
        report = sync(queue, client, retries=1, sleep=Sleeps())
    assert report.pending == 2
    assert report.gave_up == "the server's message broker is unavailable"


def test_a_refused_key_stops_at_once(queue: Queue) -> None:
    fill(queue, 2)
    ingest = FakeIngest()
    ingest.answers = [lambda items: httpx.Response(401, json={"detail": [{"msg": "an API key is required"}]})]
    with ingest.client() as client, pytest.raises(SyncRefused, match="dmp login --key"):
        sync(queue, client, sleep=Sleeps())
    assert queue.counts()["pending"] == 2


def test_a_batch_too_large_is_split(queue: Queue) -> None:
    fill(queue, 4)
    ingest = FakeIngest()
    ingest.answers = [lambda items: httpx.Response(413, json={"detail": [{"msg": "too large"}]})]
    with ingest.client() as client:
        report = sync(queue, client, batch_size=4, sleep=Sleeps())
    assert report.complete
    assert [len(b) for b in ingest.batches] == [4, 2, 2]  # the first is the one refused


def test_items_ingest_finds_invalid_are_kept_with_its_reasons(queue: Queue) -> None:
    ids = fill(queue, 2)
    errors = [{"loc": ["body", "data"], "msg": "is 300000 bytes; the limit is 262144", "type": "body_too_large"}]
    ingest = FakeIngest()
    ingest.answers = [lambda items: answer([{"index": 0, "id": items[0]["id"], "status": "invalid", "errors": errors},
                                            {"index": 1, "id": items[1]["id"], "status": "received"}])]
    with ingest.client() as client:
        report = sync(queue, client, sleep=Sleeps())
    assert (report.received, report.invalid, report.invalid_ids) == (1, 1, [ids[0]])
    assert got(queue, ids[0]).state == "invalid"
    assert got(queue, ids[0]).errors[0].type == "body_too_large"


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs."""


def test_killed_after_ingest_took_a_batch_the_next_sync_resends_it_under_the_same_ids(queue: Queue) -> None:
    ids = fill(queue, 6)
    ingest = FakeIngest()

    def taken_then_killed(items: list[dict[str, Any]]) -> httpx.Response:
        raise Killed

    ingest.answers = [ingest.received, taken_then_killed]
    with ingest.client() as client, pytest.raises(Killed):
        sync(queue, client, batch_size=2, sleep=Sleeps())
    assert queue.counts()["received"] == 2
    with ingest.client() as client:
        assert sync(queue, client, batch_size=2, sleep=Sleeps()).complete
    assert ingest.ids == ids[:2] + ids[2:4] + ids[2:]  # batch 2 reached ingest twice, as the same submissions
    assert queue.counts()["received"] == 6


def test_nothing_pending_sends_nothing(queue: Queue) -> None:
    ingest = FakeIngest()
    with ingest.client() as client:
        report = sync(queue, client, sleep=Sleeps())
    assert ingest.requests == []
    assert report.complete
