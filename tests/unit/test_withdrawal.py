"""Withdrawing a submission: who may ask (ingest), what validate publishes, and what aggregate makes of it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import orjson
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from services.aggregate.apply import apply_batch, submission_audit
from services.aggregate.events import to_event
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.projection import Event
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.validate.decision import decide
from shared.auth import InMemoryKeyStore
from shared.envelope import (
    EVENT_WITHDRAWAL_REQUESTED,
    EVENT_WITHDRAWN,
    REASON_MAX,
    Provenance,
    SubmissionValidated,
    SubmissionWithdrawn,
    Withdrawal,
    WithdrawalRequested,
    content_hash,
)
from shared.kafka import InMemoryPublisher
from shared.records import InMemorySubmissionRecords, Submitted
from shared.topics import Topics
from tests.factories import seizure_data
from tests.keys import add_key, bearer
from tests.unit.test_views_projection import shown

TOPICS = Topics()
AT = "2024-01-01T00:00:00+00:00"


def key_id(key: str) -> str:
    return key.split("_", 2)[1]


@dataclass
class Ingest:
    client: httpx.AsyncClient
    publisher: InMemoryPublisher
    records: InMemorySubmissionRecords
    keys: InMemoryKeyStore
    officer: str


@pytest.fixture
async def ingest() -> AsyncIterator[Ingest]:
    publisher, keys, records = InMemoryPublisher(), InMemoryKeyStore(), InMemorySubmissionRecords()
    app = create_app(IngestSettings(status_base_url="http://status.test"), publisher=publisher, keys=keys,
                     records=records)
    officer = add_key(keys, "officer", ["AFG"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        yield Ingest(client, publisher, records, keys, officer)


async def send(ingest: Ingest, sid: str, key: str, body: object) -> httpx.Response:
    request = ingest.client.build_request("DELETE", f"/v1/submissions/{sid}",
                                          headers={**bearer(key), "content-type": "application/json"},
                                          content=orjson.dumps(body))
    return await ingest.client.send(request)


async def test_the_submitting_officer_withdraws_and_the_request_is_published_on_the_received_topic_keyed_by_id(
        ingest: Ingest) -> None:
    sid = str(uuid.uuid4())
    ingest.records.records[sid] = Submitted("seizure", key_id(ingest.officer))
    response = await send(ingest, sid, ingest.officer, {"reason": "entered twice"})

    assert response.status_code == 202, response.text
    assert response.json()["status_url"] == f"http://status.test/v1/submissions/{sid}"
    [record] = ingest.publisher.records
    assert (record.topic, record.key) == (TOPICS.received, sid)
    assert dict(record.headers)["ce_type"] == EVENT_WITHDRAWAL_REQUESTED.encode()
    event = WithdrawalRequested.model_validate_json(record.value)
    assert (event.id, event.type, event.submitted_by) == (sid, "seizure", key_id(ingest.officer))
    assert event.withdrawal == Withdrawal(reason="entered twice", withdrawn_by=key_id(ingest.officer), role="officer")


async def test_an_admin_may_withdraw_any_submission_but_another_officer_or_an_analyst_may_not(ingest: Ingest) -> None:
    sid = str(uuid.uuid4())
    ingest.records.records[sid] = Submitted("price", key_id(ingest.officer))
    other, analyst, admin = (add_key(ingest.keys, role) for role in ("officer", "analyst", "admin"))

    refused = await send(ingest, sid, other, {"reason": "not mine"})
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["type"] == "not_the_submitter"
    assert (await send(ingest, sid, analyst, {"reason": "x"})).status_code == 403
    assert ingest.publisher.records == []

    assert (await send(ingest, sid, admin, {"reason": "duplicate of another office's"})).status_code == 202
    [record] = ingest.publisher.records
    assert WithdrawalRequested.model_validate_json(record.value).withdrawal.role == "admin"


@pytest.mark.parametrize(("body", "loc", "code"), [
    ({}, ["body", "reason"], "missing"),
    ({"reason": ""}, ["body", "reason"], "string_too_short"),
    ({"reason": "x" * (REASON_MAX + 1)}, ["body", "reason"], "string_too_long"),
    ({"reason": 3}, ["body", "reason"], "string_type"),
    ({"reason": "ok", "why": "extra"}, ["body", "why"], "extra_forbidden"),
    (["reason"], ["body"], "not_an_object"),
])
async def test_a_missing_or_bad_reason_is_a_422_naming_the_field(
        ingest: Ingest, body: object, loc: list[str], code: str) -> None:
    sid = str(uuid.uuid4())
    ingest.records.records[sid] = Submitted("seizure", key_id(ingest.officer))
    response = await send(ingest, sid, ingest.officer, body)
    assert response.status_code == 422
    assert [(d["loc"], d["type"]) for d in response.json()["detail"]] == [(loc, code)]
    assert ingest.publisher.records == []


class UnreachableRecords:
    async def find(self, submission_id: str) -> Submitted | None:
        raise ServerSelectionTimeoutError("store down")


async def test_a_store_that_cannot_say_who_sent_the_submission_is_503_and_nothing_is_published(
        ingest: Ingest) -> None:
    app = create_app(IngestSettings(), publisher=ingest.publisher, keys=ingest.keys, records=UnreachableRecords())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        response = await client.request("DELETE", f"/v1/submissions/{uuid.uuid4()}", json={"reason": "typo"},
                                        headers=bearer(ingest.officer))
    assert response.status_code == 503 and response.headers["retry-after"]
    assert response.json()["detail"][0]["type"] == "unavailable"
    assert ingest.publisher.records == []


async def test_a_submission_not_recorded_is_404_and_a_broker_that_is_down_503(ingest: Ingest) -> None:
    sid = str(uuid.uuid4())
    missing = await send(ingest, sid, ingest.officer, {"reason": "typo"})
    assert missing.status_code == 404
    assert missing.json()["detail"][0]["loc"] == ["path", "submission_id"]

    ingest.records.records[sid] = Submitted("seizure", key_id(ingest.officer))
    ingest.publisher.fail = True
    down = await send(ingest, sid, ingest.officer, {"reason": "typo"})
    assert down.status_code == 503 and down.headers["retry-after"]


# --- validate and aggregate: the events as the services encode them ---

def seizure(sid: str, seq: int, **overrides: object) -> Event:
    data = seizure_data(**overrides)
    normalised = {**data, "normalised": {"quantity": float(data["quantity"]), "unit": "kg", "rules": "units.v1"}}
    value = SubmissionValidated(id=sid, type="seizure", schema_version=1, data=normalised,
                                data_hash=content_hash("seizure", 1, data), received=Provenance(partition=0, seq=seq),
                                submitted_by="owner", received_at=AT, validated_at=AT, validator="test",
                                trace_id="0" * 32).encode()
    event = to_event(TOPICS.validated, 0, seq, value, TOPICS)
    assert event is not None
    return event


def withdrawal(sid: str, seq: int, reason: str = "entered by mistake", by: str = "owner") -> tuple[Event, Event]:
    """The withdrawal as aggregate reads it from the received topic, and validate's decision on it."""
    request = WithdrawalRequested(
        id=sid, type="seizure", submitted_by="owner", received_at=datetime(2024, 2, 1, tzinfo=UTC), trace_id="0" * 32,
        withdrawal=Withdrawal(reason=reason, withdrawn_by=by, role="officer")).encode()
    decided = decide(request, sid.encode(), {}, partition=0, offset=seq, topics=TOPICS)
    received, withdrawn = (to_event(TOPICS.received, 0, seq, request, TOPICS),
                           to_event(decided.topic, 0, seq, decided.value, TOPICS))
    assert received is not None and withdrawn is not None
    return received, withdrawn


def test_validate_publishes_a_withdrawal_on_the_validated_topic_with_its_own_cloudevents_type() -> None:
    request = WithdrawalRequested(
        id="s1", type="price", submitted_by="owner", received_at=datetime(2024, 2, 1, tzinfo=UTC), trace_id="1" * 32,
        withdrawal=Withdrawal(reason="wrong market", withdrawn_by="boss", role="admin")).encode()
    out = decide(request, b"s1", {}, partition=2, offset=41, topics=TOPICS)

    assert (out.topic, out.key, out.accepted) == (TOPICS.validated, "s1", True)
    assert dict(out.headers)["ce_type"] == EVENT_WITHDRAWN.encode()
    event = SubmissionWithdrawn.model_validate_json(out.value)
    assert (event.received.partition, event.received.seq, event.status) == (2, 41, "withdrawn")
    assert (event.withdrawal.reason, event.withdrawal.withdrawn_by, event.submitted_by) == (
        "wrong market", "boss", "owner")


def seizure_rows(repo: InMemoryRepository) -> dict[str, tuple[int, int]]:
    return {key: (int(d["cases"]), int(d["submissions"])) for key, d in shown(repo, "seizures").items()}


async def test_a_withdrawn_submission_leaves_every_view_and_its_history_keeps_the_withdrawal() -> None:
    repo = InMemoryRepository()
    kept, gone = seizure("a", 0, cases=2), seizure("b", 1, cases=3, coordinates={"lat": 34.5, "lon": 61.25})
    await apply_batch(repo, [kept, gone])
    assert seizure_rows(repo) == {"AFG:2024:heroin:kg": (5, 2)}
    assert len(shown(repo, "map")) == 1

    received, withdrawn = withdrawal("b", 2)
    await apply_batch(repo, [received, withdrawn])

    assert seizure_rows(repo) == {"AFG:2024:heroin:kg": (2, 1)}
    assert [int(d["cases"]) for d in shown(repo, "routes").values()] == [2]
    assert shown(repo, "map") == {}  # only b had coordinates
    record = repo.submissions["b"]
    assert (record["status"], record["version"]) == ("withdrawn", 2)
    assert [(h["version"], h["status"]) for h in record["history"]] == [(1, "validated"), (2, "withdrawn")]
    assert record["history"][1]["withdrawal"] == {"reason": "entered by mistake", "withdrawn_by": "owner",
                                                  "role": "officer"}


async def test_withdrawing_twice_changes_nothing_and_a_later_amendment_brings_the_submission_back() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [seizure("a", 0, cases=2), *withdrawal("a", 1)])
    await apply_batch(repo, [*withdrawal("a", 2, reason="really")])
    await apply_batch(repo, [*withdrawal("a", 1)])  # redelivered
    assert seizure_rows(repo) == {}
    assert (repo.submissions["a"]["status"], repo.submissions["a"]["version"]) == ("withdrawn", 2)

    await apply_batch(repo, [seizure("a", 3, cases=4)])
    assert seizure_rows(repo) == {"AFG:2024:heroin:kg": (4, 1)}
    assert [(h["version"], h["status"]) for h in repo.submissions["a"]["history"]] == [
        (1, "validated"), (2, "withdrawn"), (2, "withdrawn"), (3, "validated")]


async def test_a_withdrawal_decided_before_an_older_version_arrives_still_wins() -> None:
    """Versions are ordered by their received offset, not by arrival (more partitions can reorder them)."""
    repo = InMemoryRepository()
    await apply_batch(repo, [*withdrawal("a", 5), seizure("a", 2)])
    assert seizure_rows(repo) == {}
    assert repo.submissions["a"]["status"] == "withdrawn"


async def test_the_audit_trail_names_who_withdrew_and_why() -> None:
    repo = InMemoryRepository()
    received, withdrawn = withdrawal("a", 1, reason="typo in the place", by="admin-key")
    events = [seizure("a", 0), received, withdrawn]
    touched = await apply_batch(repo, events)
    [entry] = submission_audit(touched, events)
    assert (entry["actor"], entry["action"], entry["target"]) == ("admin-key", "withdrawn", "a")
    assert entry["details"]["reason"] == "typo in the place"
