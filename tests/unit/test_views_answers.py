"""Kept answers: computed once per views state, within their byte budget, and never shown after the views changed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition

from services.aggregate.answers import Answers, views_state
from services.aggregate.app import create_app
from services.aggregate.apply import apply_records
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.settings import AggregateSettings
from shared.auth import InMemoryKeyStore
from shared.envelope import SubmissionValidated, content_hash
from shared.topics import Topics
from tests.keys import add_key, bearer
from tests.unit.test_views_projection import PERSON_A, PERSON_B, seizure, training

TOPICS = Topics()
NOW = datetime(2024, 6, 1, tzinfo=UTC)


class Computed:
    """An answer that counts how often it was computed."""

    def __init__(self, body: bytes) -> None:
        self.body, self.calls = body, 0

    async def __call__(self) -> bytes:
        self.calls += 1
        return self.body


async def test_an_answer_is_computed_once_while_the_views_stay_in_one_state() -> None:
    answers, compute = Answers(), Computed(b"[1]")
    for _ in range(3):
        assert await answers.answer(("trainings",), (0, 1, (0, 5)), compute) == b"[1]"
    assert compute.calls == 1
    await answers.answer(("trainings", "AFG"), (0, 1, (0, 5)), compute)
    assert compute.calls == 2  # another request is another answer


async def test_another_views_state_drops_every_kept_answer() -> None:
    answers, first, second = Answers(), Computed(b"[1]"), Computed(b"[2]")
    await answers.answer(("map",), (0, 1, (0, 5)), first)
    await answers.answer(("fact-sheet",), (0, 1, (0, 5)), first)
    assert await answers.answer(("map",), (0, 1, (0, 6)), second) == b"[2]"
    assert (len(answers), answers.held) == (1, 3)


async def test_kept_answers_stay_within_their_bytes_least_recently_used_dropped_first() -> None:
    answers = Answers(max_bytes=40)
    state = (0, 0)
    for name in ("a", "b", "c"):
        await answers.answer((name,), state, Computed(b"x" * 10))
    await answers.answer(("a",), state, Computed(b"unused"))  # a is used again: b is now the oldest
    await answers.answer(("d",), state, Computed(b"y" * 10))
    await answers.answer(("e",), state, Computed(b"z" * 10))
    assert answers.held <= 40
    again = Computed(b"x" * 10)
    await answers.answer(("b",), state, again)
    await answers.answer(("a",), state, Computed(b"unused"))
    assert again.calls == 1 and answers.held <= 40


async def test_an_answer_too_large_to_keep_is_given_and_not_kept() -> None:
    answers, large = Answers(max_bytes=40), Computed(b"x" * 11)
    assert await answers.answer(("map",), (0, 0), large) == b"x" * 11
    await answers.answer(("map",), (0, 0), large)
    assert (large.calls, answers.held) == (2, 0)


def test_the_views_state_is_the_generation_the_own_writes_and_the_validated_progress() -> None:
    progress = [{"_id": "validated#1", "kind": "validated", "partition": 1, "next_offset": 7},
                {"_id": "received#0", "kind": "received", "partition": 0, "next_offset": 99},
                {"_id": "validated#0", "kind": "validated", "partition": 0, "next_offset": 3}]
    assert views_state(2, 5, progress) == (2, 5, (0, 3), (1, 7))


@dataclass(frozen=True)
class Record:
    offset: int
    value: bytes


class Validated:
    """Validated events on partition 0 of the validated topic, as validate publishes them."""

    def __init__(self) -> None:
        self.offset = 0

    def batch(self, *submissions: tuple[str, str, dict[str, Any]]) -> dict[TopicPartition, list[Any]]:
        records = []
        for sid, type_, data in submissions:
            value = SubmissionValidated.encode_fields(sid, type_, 1, data, content_hash(type_, 1, data), 0,
                                                      self.offset, "officer", NOW, NOW, "test", "0" * 32)
            records.append(Record(self.offset, value))
            self.offset += 1
        return {TopicPartition(TOPICS.validated, 0): records}


@pytest.fixture
async def served() -> AsyncIterator[tuple[InMemoryRepository, httpx.AsyncClient]]:
    repository = InMemoryRepository()
    keys = InMemoryKeyStore()
    app = create_app(AggregateSettings(), repository=repository, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate",
                                 headers=bearer(add_key(keys, "analyst"))) as client:
        yield repository, client


async def read(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_participation_applied_after_a_read_shows_in_the_next_read(
        served: tuple[InMemoryRepository, httpx.AsyncClient]) -> None:
    repository, client = served
    log = Validated()
    await apply_records(repository, log.batch(("r1", "training", training(PERSON_A))), TOPICS)
    sheet = {"country": "AFG", "year": 2024}
    assert (await read(client, "/v1/views/trainings"))["items"][0]["people"] == 1
    assert (await read(client, "/v1/views/fact-sheet", **sheet))["trainings"]["people_trained"] == 1
    await read(client, "/v1/views/trainings")  # kept

    await apply_records(repository, log.batch(("r2", "training", training(PERSON_B)),
                                              ("r3", "training", training(PERSON_A, course_id="CCP-2024-02"))),
                        TOPICS)
    page = await read(client, "/v1/views/trainings")
    assert [(i["people"], i["participations"]) for i in page["items"]] == [(2, 3)]
    assert [(r["pseudonym"], r["participations"]) for r in page["repeats"]] == [(PERSON_A, 2)]
    assert (await read(client, "/v1/views/fact-sheet", **sheet))["trainings"] == {
        "courses_held": 0, "course_participations": 0, "people_trained": 2, "people_trained_twice_on_a_title": 1}


async def test_another_process_s_batch_shows_once_its_progress_is_written(
        served: tuple[InMemoryRepository, httpx.AsyncClient]) -> None:
    repository, client = served
    other = InMemoryRepository()  # another aggregate process: its own adapter over the same store
    other.views, other.submissions, other.progress, other.listing = (
        repository.views, repository.submissions, repository.progress, repository.listing)
    log = Validated()
    await apply_records(other, log.batch(("s1", "seizure", seizure())), TOPICS)
    assert len((await read(client, "/v1/views/map"))["features"]) == 1
    await apply_records(other, log.batch(("s2", "seizure", seizure(place="Zaranj"))), TOPICS)
    assert repository.view_writes == 0
    features = (await read(client, "/v1/views/map"))["features"]
    assert sorted(f["properties"]["id"] for f in features) == ["s1", "s2"]


async def test_a_table_page_is_kept_until_a_seizure_changes_it_and_csv_is_answered_afresh(
        served: tuple[InMemoryRepository, httpx.AsyncClient]) -> None:
    repository, client = served
    log = Validated()
    await apply_records(repository, log.batch(("s1", "seizure", seizure(quantity=1500))), TOPICS)
    routes: dict[str, Any] = {"drug": "heroin", "limit": 1000}
    assert [(r["cases"], r["quantity"]) for r in (await read(client, "/v1/views/routes", **routes))["items"]] == [
        (1, 1.5)]
    queried = []
    query_view = repository.query_view

    async def counted(*args: Any) -> Any:
        queried.append(args[0])
        return await query_view(*args)

    repository.query_view = counted  # type: ignore[method-assign,assignment]
    assert (await read(client, "/v1/views/routes", **routes))["items"][0]["cases"] == 1
    assert queried == []  # kept: the view was not read again

    await apply_records(repository, log.batch(("s2", "seizure", seizure(quantity=500))), TOPICS)
    assert [(r["cases"], r["quantity"]) for r in (await read(client, "/v1/views/routes", **routes))["items"]] == [
        (2, 2.0)]
    assert [(r["cases"], r["quantity"]) for r in (await read(client, "/v1/views/seizures", drug="heroin"))["items"]] \
        == [(2, 2.0)]
    assert queried == ["routes", "seizures"]
    for _ in range(2):
        csv = await client.get("/v1/views/routes", params={**routes, "format": "csv"})
        assert csv.headers["content-type"].startswith("text/csv") and csv.text.splitlines()[1].count(",2,2.0,") == 1
    assert queried == ["routes", "seizures", "routes", "routes"]
