"""Withdrawing a submission through the running stack: it leaves the views, keeps its history and audit trail, is
published for downstream programmes, and comes back when amended; on the real broker and store."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from shared.envelope import EVENT_WITHDRAWN, SubmissionWithdrawn
from shared.topics import Topics
from tests.conftest import Stack, eventually
from tests.e2e.helpers import decided, status, submit, view, withdraw
from tests.factories import envelope
from tests.keys import bearer


def key_id(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ").split("_", 2)[1]


def seizure_row(stack: Stack) -> list[tuple[int, float, int]]:
    return [(r["cases"], r["quantity"], r["submissions"]) for r in view(stack, "seizures", country="KAZ", year=2019)]


def on_the_map(stack: Stack) -> list[Any]:
    features: list[Any] = view(stack, "map", **{"from": "2019-04-09", "to": "2019-04-09"})["features"]
    return features


async def published(stack: Stack, topic: str, submission_id: str, ce_type: str,
                    timeout: float = 30.0) -> list[tuple[dict[str, bytes], bytes]]:
    """Every committed event keyed `submission_id` on `topic` with CloudEvents type `ce_type`, read as a
    downstream subscriber would (from the start, read_committed), once there is at least one."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=stack.infra.bootstrap, group_id=None,
                                auto_offset_reset="earliest", isolation_level="read_committed",
                                enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[dict[str, bytes], bytes]] = []
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    headers = dict(r.headers)
                    if r.key == submission_id.encode() and headers.get("ce_type") == ce_type.encode():
                        found.append((headers, r.value or b""))
            if found:
                return found
    finally:
        await consumer.stop()
    raise AssertionError(f"no {ce_type} event for {submission_id} on {topic} within {timeout}s")


def test_a_withdrawn_seizure_leaves_the_views_keeps_its_history_and_is_published(stack: Stack) -> None:
    kept = envelope(country="KAZ", seized_on="2019-04-02", quantity=3, unit="kg", cases=1)
    gone = envelope(country="KAZ", seized_on="2019-04-09", quantity=7, unit="kg", cases=2,
                    lat=43.25, lon=76.95)
    for body in (kept, gone):
        assert submit(stack, body).status_code == 202
        decided(stack, body["id"])
    assert seizure_row(stack) == [(3, 10.0, 2)]
    assert len(on_the_map(stack)) == 1

    other_officer, analyst = bearer(stack.key("officer")), stack.analyst
    assert withdraw(stack, gone["id"], {"reason": "not mine"}, other_officer).status_code == 403
    assert withdraw(stack, gone["id"], {"reason": "no"}, analyst).status_code == 403
    missing_reason = withdraw(stack, gone["id"], {})
    assert missing_reason.status_code == 422
    assert missing_reason.json()["detail"][0]["loc"] == ["body", "reason"]

    answer = withdraw(stack, gone["id"], {"reason": "entered twice"})
    assert answer.status_code == 202, answer.text
    withdrawn = eventually(lambda: (s := status(stack, gone["id"])) and s["status"] == "withdrawn" and s,
                           what="the withdrawal to be recorded")
    assert eventually(lambda: seizure_row(stack) == [(1, 3.0, 1)], what="the view to lose the withdrawn seizure")
    assert on_the_map(stack) == []
    assert (withdrawn["version"], withdrawn["current_valid_version"]) == (2, None)
    assert [(h["version"], h["status"]) for h in withdrawn["history"]] == [(1, "validated"), (2, "withdrawn")]
    assert withdrawn["history"][1]["withdrawal"] == {"reason": "entered twice", "withdrawn_by": key_id(stack.officer),
                                                     "role": "officer"}

    [(headers, value)] = asyncio.run(published(stack, Topics.under(stack.namespace).validated, gone["id"],
                                               EVENT_WITHDRAWN))
    event = SubmissionWithdrawn.model_validate_json(value)
    assert (event.id, event.type, event.withdrawal.reason) == (gone["id"], "seizure", "entered twice")
    assert headers["ce_subject"] == gone["id"].encode()

    admin = bearer(stack.key("admin"))
    audit = httpx.get(f"{stack.url('aggregate')}/v1/audit", params={"action": "withdrawn", "target": gone["id"]},
                      headers=admin, timeout=10).json()["items"]
    assert [(e["actor"], e["details"]["reason"]) for e in audit] == [(key_id(stack.officer), "entered twice")]

    # withdrawing again (here by an admin) changes nothing but the history and the audit trail
    assert withdraw(stack, gone["id"], {"reason": "duplicate"}, admin).status_code == 202
    again = eventually(lambda: (s := status(stack, gone["id"])) and len(s["history"]) == 3
                       and s["history"][-1]["status"] == "withdrawn" and s, what="the second withdrawal decided")
    assert (again["status"], again["version"]) == ("withdrawn", 2)
    assert seizure_row(stack) == [(1, 3.0, 1)]


def test_an_amendment_brings_a_withdrawn_submission_back_and_an_unknown_id_is_404(stack: Stack) -> None:
    body: dict[str, Any] = envelope(country="KGZ", seized_on="2018-02-02", quantity=4, unit="kg")
    assert submit(stack, body).status_code == 202
    decided(stack, body["id"])
    assert withdraw(stack, body["id"], {"reason": "wrong year"}).status_code == 202
    eventually(lambda: view(stack, "seizures", country="KGZ", year=2018) == [], what="the withdrawal")

    amended = envelope(body["id"], **{**body["data"], "quantity": 5})
    assert submit(stack, amended).status_code == 202
    back = decided(stack, body["id"], version=3)
    assert (back["status"], back["current_valid_version"]) == ("validated", 3)
    assert [r["quantity"] for r in view(stack, "seizures", country="KGZ", year=2018)] == [5.0]

    unknown = withdraw(stack, envelope()["id"], {"reason": "never sent"})
    assert unknown.status_code == 404
    assert unknown.json()["detail"][0]["loc"] == ["path", "submission_id"]
