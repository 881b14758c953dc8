"""Sending the queue: batches to `POST /v1/submissions/batch`, retries with exponential backoff.

Each batch holds at most `batch_size` (≤ 500) pending submissions, oldest first, each with its
queued id, so a row is never sent as two submissions. An item is marked received only once the
207 answer says so. Connection errors, timeouts, 429/5xx and items answered `unavailable` are
retried after 0.5 s, 1 s, 2 s … (at most 30 s, or the server's Retry-After if longer); after
`retries` failed attempts in a row the sync stops and what was not sent stays pending.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from cli.options import MAX_BATCH
from cli.queue import Queue, Stored
from shared.envelope import ErrorDetail

BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class SyncRefused(Exception):
    """The server refuses every request (bad key, wrong URL): retrying will not help."""


@dataclass
class SyncReport:
    received: int = 0
    invalid: int = 0
    pending: int = 0
    batches: int = 0
    retries: int = 0
    gave_up: str | None = None
    """Why the sync stopped with submissions still pending, if it did."""
    invalid_ids: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.pending == 0


def backoff(attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, …): doubling from 0.5 s, capped, with jitter."""
    delay = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** (attempt - 1))
    if retry_after is not None:
        delay = max(delay, min(retry_after, BACKOFF_CAP_S))
    return delay * (1 + random.random() / 10)  # noqa: S311 - jitter, not security


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _describe(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            return f"{response.status_code}: {detail[0].get('msg', '')}"
    except ValueError:
        pass
    return f"{response.status_code}: {response.text[:200]}"


def sync(queue: Queue, client: httpx.Client, *, batch_size: int = MAX_BATCH, retries: int = 5,
         sleep: Callable[[float], None] = time.sleep, progress: Callable[[int], None] | None = None) -> SyncReport:
    """Send every pending submission; return what happened. `client` has ingest's base URL and headers."""
    batch_size = max(1, min(batch_size, MAX_BATCH))
    report = SyncReport()
    failures = 0  # consecutive attempts that got nothing through
    cursor = 0  # one pass walks the queue once; items left pending are retried on the next pass
    while True:
        batch = queue.pending(batch_size, after_seq=cursor)
        if not batch:
            if not queue.pending(1):
                break
            cursor = 0  # a new pass for what came back `unavailable`
            continue
        items = [stored for _, stored in batch]
        outcome = _send(client, items)
        report.batches += 1
        if isinstance(outcome, _TooLarge) and len(items) > 1:
            batch_size = max(1, len(items) // 2)
            continue
        if isinstance(outcome, _Failed | _TooLarge):
            error = outcome.error
            queue.note_attempt([s.id for s in items], error)
            failures += 1
            if failures > retries:
                report.gave_up = error
                break
            report.retries += 1
            sleep(backoff(failures, outcome.retry_after if isinstance(outcome, _Failed) else None))
            continue
        moved = 0
        unavailable: list[str] = []
        for stored, verdict in zip(items, outcome.verdicts, strict=True):
            if verdict is None:
                unavailable.append(stored.id)
            elif verdict == "received":
                if queue.mark_received(stored.id, stored.content_hash):
                    report.received += 1
                    moved += 1
            elif queue.mark_invalid(stored.id, stored.content_hash, outcome.errors.get(stored.id, [])):
                report.invalid += 1
                report.invalid_ids.append(stored.id)
                moved += 1
        if progress is not None and moved:
            progress(moved)
        cursor = batch[-1][0]
        if unavailable:
            error = "the server's message broker is unavailable"
            queue.note_attempt(unavailable, error)
            failures = 0 if moved else failures + 1
            if failures > retries:
                report.gave_up = error
                break
            report.retries += 1
            sleep(backoff(max(failures, 1), outcome.retry_after))
        else:
            failures = 0
    report.pending = queue.counts()["pending"]
    return report


@dataclass(frozen=True)
class _Failed:
    error: str
    retry_after: float | None = None


@dataclass(frozen=True)
class _TooLarge:
    error: str


@dataclass(frozen=True)
class _Answered:
    verdicts: list[str | None]
    """Per item: "received", "invalid" (or forbidden: refused, not stored), or None (not taken: resend)."""
    errors: dict[str, list[ErrorDetail]]
    retry_after: float | None


def _send(client: httpx.Client, items: list[Stored]) -> _Answered | _Failed | _TooLarge:
    body = orjson.dumps([s.envelope() for s in items])
    try:
        response = client.post("/v1/submissions/batch", content=body, headers={"Content-Type": "application/json"})
    except httpx.TransportError as exc:
        return _Failed(f"cannot reach ingest at {client.base_url} ({type(exc).__name__}: {exc or 'no answer'})")
    if response.status_code in (401, 403):
        raise SyncRefused(f"ingest refused the key ({_describe(response)}); set one with `dmp login --key KEY`")
    if response.status_code == 413:
        return _TooLarge(f"ingest: batch too large ({_describe(response)})")
    if response.status_code in RETRYABLE_STATUS:
        return _Failed(f"ingest answered {_describe(response)}", _retry_after(response))
    if response.status_code != 207:
        raise SyncRefused(f"ingest refused the batch ({_describe(response)}); is {client.base_url} ingest's URL?")
    try:
        answered = response.json()["items"]
    except (ValueError, KeyError, TypeError):
        return _Failed(f"ingest's answer could not be read: {response.text[:200]}")
    by_index = {a.get("index"): a for a in answered if isinstance(a, dict)}
    verdicts: list[str | None] = []
    errors: dict[str, list[ErrorDetail]] = {}
    for index, stored in enumerate(items):
        answer = by_index.get(index)
        status = answer.get("status") if answer is not None and answer.get("id") == stored.id else None
        if status == "received":
            verdicts.append("received")
        elif status in ("invalid", "forbidden"):  # forbidden: a country this key does not report for
            verdicts.append("invalid")
            errors[stored.id] = [ErrorDetail.model_validate(e) for e in answer.get("errors", [])] if answer else []
        else:
            verdicts.append(None)
    return _Answered(verdicts, errors, _retry_after(response))
