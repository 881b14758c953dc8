"""ingest's write API: one submission, or a batch of them, published to the received topic."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.ingest.contract import SUBMISSION
from services.ingest.edge import BadSubmission, is_plain, read_batch_body, read_json_body
from services.ingest.settings import IngestSettings
from services.ingest.submission import (
    SUBMISSIONS,
    UNAVAILABLE,
    Prepared,
    count,
    count_as,
    log_received,
    prepare,
    verdict,
)
from shared.access import BEARER_REQUIRED, authorise, request_header
from shared.auth import Principal
from shared.envelope import ErrorDetail
from shared.errors import InfrastructureUnavailable
from shared.kafka import Publisher
from shared.problems import KEYED, RETRY_AFTER, problems
from shared.roles import Role
from shared.tracing import bind_trace_id

log = logging.getLogger("services.ingest.app")

router = APIRouter()


class SubmissionAccepted(BaseModel):
    """The broker has the submission; its verdict will appear at `status_url`."""

    id: str
    status: Literal["received"] = "received"
    status_url: str
    trace_id: str


class BatchItemResult(BaseModel):
    """One item's verdict: `received` (the broker has it), `invalid` (fix and resend), `forbidden` (not a
    country this key reports for), `unavailable` (resend as it is)."""

    index: int
    id: str | None
    status: Literal["received", "invalid", "forbidden", "unavailable"]
    status_url: str | None = None
    errors: list[ErrorDetail] = []


class BatchResult(BaseModel):
    items: list[BatchItemResult]
    received: int
    invalid: int
    forbidden: int
    unavailable: int


PROBLEMS = problems(400, *KEYED, 413, 415, 422, 503)
BATCH_BODY: dict[str, Any] = {"required": True, "content": {
    "application/json": {"schema": {
        # Sizes are not shapes: past 1,000 items (or the byte limit) the answer is 413, which clients act on
        # by splitting the batch, so the limit is the 413's to say rather than a `maxItems`.
        "type": "array", "minItems": 1, "description": "At most 1,000 items (more: 413, split the batch).",
        "items": {"description": "A `Submission`. Each item is checked on its own and has its own verdict, so "
                                 "an item of any shape is an answer in the batch, never a refusal of it."}}},
    "application/x-ndjson": {"schema": {
        "type": "string", "pattern": r"\S",
        "description": "One `Submission` per line; a line that is not JSON is that item's error only."}}}}
PARTIAL_RETRY_AFTER: dict[str, Any] = {"Retry-After": {**RETRY_AFTER["Retry-After"], "required": False,
                                                       "description": "Sent when an item is `unavailable`: "
                                                                      "seconds to wait before resending those."}}
OFFICER: tuple[Role, ...] = ("officer",)


# Dependencies are coroutines: FastAPI runs a plain function's in a worker thread. They read the app's state by
# item: its attributes are found only after a failed lookup, which costs more than the rest of the dependency.
async def ingest_settings(request: Request) -> IngestSettings:
    settings: IngestSettings = request.app.state["settings"]
    return settings


async def broker(request: Request) -> Publisher:
    """The publisher the app's lifespan started (or the one a test passed in)."""
    publisher: Publisher = request.app.state["publisher"]
    return publisher


async def officer(request: Request) -> Principal:
    return await authorise(request, OFFICER)


Settings = Annotated[IngestSettings, Depends(ingest_settings)]
Broker = Annotated[Publisher, Depends(broker)]
Officer = Annotated[Principal, Depends(officer)]

Endpoint = Callable[[Request, Principal, IngestSettings, Publisher], Awaitable[Response]]
"""A submission route's handler, called with its dependencies (by FastAPI, or by the fast lane)."""

@router.post("/v1/submissions", status_code=202, response_model=SubmissionAccepted, responses=PROBLEMS,
             operation_id="submitSubmission", tags=["submissions"],
             openapi_extra={**BEARER_REQUIRED, "requestBody": {
                 "required": True, "content": {"application/json": {"schema": {"$ref": SUBMISSION}}}}})
async def submit(request: Request, officer: Officer, settings: Settings, publisher: Broker) -> Response:
    """Accept one submission; 202 only once the broker has durably acknowledged it."""
    body, raw = await read_json_body(request, settings.max_body_bytes)
    prepared = prepare(body, request_header(request, b"traceparent"), settings, officer, plain=is_plain(raw))
    bind_trace_id(prepared.trace_id)  # for every log line about this request, errors included
    try:
        await publisher.publish(prepared.outbound.topic, prepared.outbound.key, prepared.outbound.value,
                                prepared.outbound.headers)
    except InfrastructureUnavailable as exc:
        count(prepared, "unavailable")
        log.warning("publish failed; answering 503", extra={
            "submission_id": prepared.id, "trace_id": prepared.trace_id, "error": str(exc)})
        raise
    count(prepared, "received")
    log_received(prepared, officer)
    return Response(prepared.accepted(), status_code=202, media_type="application/json")


@router.post("/v1/submissions/batch", status_code=207, response_model=BatchResult, operation_id="submitBatch",
             tags=["submissions"], responses={207: {"headers": PARTIAL_RETRY_AFTER}, **PROBLEMS},
             openapi_extra={**BEARER_REQUIRED, "requestBody": BATCH_BODY})
async def submit_batch(request: Request, officer: Officer, settings: Settings, publisher: Broker) -> Response:
    """Accept up to 1,000 submissions; one verdict per item, in order. Received items are in the broker."""
    items, raw = await read_batch_body(request, settings.max_batch_bytes, settings.max_batch_items)
    plain, traceparent = is_plain(raw), request_header(request, b"traceparent")
    # Verdicts are built as plain dicts in BatchItemResult's shape: per item, models cost more than the rest.
    results: list[dict[str, Any] | None] = []
    ready: list[tuple[int, Prepared]] = []
    tally = dict.fromkeys(("received", "invalid", "forbidden", "unavailable"), 0)
    for index, item in enumerate(items):
        try:
            if isinstance(item, BadSubmission):
                raise item
            prepared = prepare(item, traceparent, settings, officer, plain=plain)
        except BadSubmission as exc:
            item_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
            status = "forbidden" if exc.status == 403 else "invalid"
            results.append(verdict(index, item_id, status, errors=exc.errors))
            tally[status] += 1
            SUBMISSIONS.labels(item.get("type", "unknown") if isinstance(item, dict) else "unknown", "invalid").inc()
            continue
        results.append(None)  # its verdict once the broker has answered
        ready.append((index, prepared))
    outcomes = await publisher.publish_many([p.outbound for _, p in ready])
    counts: dict[tuple[str, str, str], int] = {}  # (type, topic, outcome): one count() per group, not per item
    for (index, prepared), outcome in zip(ready, outcomes, strict=True):
        if outcome is None:
            status = "received"
            results[index] = verdict(index, prepared.id, status, status_url=prepared.status_url)
            log_received(prepared, officer)
        else:
            status = "unavailable"
            results[index] = verdict(index, prepared.id, status, errors=[UNAVAILABLE])
        tally[status] += 1
        group = (prepared.envelope.type, prepared.outbound.topic, status)
        counts[group] = counts.get(group, 0) + 1
    for (submission_type, topic, status), n in counts.items():
        count_as(submission_type, topic, status, n)
    headers = {"Retry-After": str(settings.retry_after_s)} if tally["unavailable"] else None
    return Response(orjson.dumps({"items": results, **tally}), status_code=207, headers=headers,
                    media_type="application/json")


FAST_LANE: dict[str, Endpoint] = {"/v1/submissions": submit, "/v1/submissions/batch": submit_batch}
"""The routes whose POSTs the fast lane (lane.py) hands straight to their handler."""


async def call_endpoint(endpoint: Endpoint, request: Request) -> Response:
    """`endpoint` answering `request`, its dependencies resolved by the same functions FastAPI calls."""
    return await endpoint(request, await officer(request), await ingest_settings(request), await broker(request))
