"""`DELETE /v1/submissions/{id}`: withdraw a submission, as a new version published on the received topic.

Ingest decides who may withdraw, because only it answers the caller: the key that first sent the
submission, or an admin. It learns the owner from the record aggregate keeps (`shared.records`); a
submission aggregate has not recorded yet is answered 404, as its status URL answers, so a client
withdraws what it can see. Once published, the withdrawal is ordered with the submission's other
versions by its offset: validate turns it into the withdrawn version and aggregate takes the
submission out of every view (docs/withdrawal.md).
"""

from __future__ import annotations

import logging
import uuid
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pymongo.errors import PyMongoError

from services.ingest.contract import with_ingest_limits
from services.ingest.edge import BadSubmission, read_json_body, sanitise
from services.ingest.settings import IngestSettings
from shared.access import BEARER_REQUIRED, authorise
from shared.envelope import (
    EVENT_WITHDRAWAL_REQUESTED,
    REASON_MAX,
    ErrorDetail,
    Withdrawal,
    WithdrawalRequested,
    cloudevent_headers,
    new_trace_id,
    trace_id_from,
    utcnow,
)
from shared.kafka import EVENTS_PRODUCED, Publisher
from shared.problems import KEYED, problems
from shared.records import SubmissionRecords
from shared.roles import Role
from shared.tracing import bind_trace_id

log = logging.getLogger("services.ingest.withdrawal")

router = APIRouter()
WITHDRAWERS: tuple[Role, ...] = ("officer", "admin")


class WithdrawalCreate(BaseModel):
    """Why the submission is withdrawn (kept in its history and the audit trail, and published)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=REASON_MAX, description="Why, for the people who read the history.")


class WithdrawalAccepted(BaseModel):
    """The broker has the withdrawal; the submission's status at `status_url` becomes `withdrawn`."""

    id: str
    status: Literal["received"] = "received"
    status_url: str
    trace_id: str


def _refusal(status: int, loc: list[str | int], code: str, msg: str) -> BadSubmission:
    return BadSubmission(status, [ErrorDetail(loc=loc, type=code, msg=msg)])


def read_reason(body: object) -> str:
    """The reason from the request body, or 422 naming `reason` and what is wrong with it."""
    if not isinstance(body, dict):
        raise _refusal(422, ["body"], "not_an_object", 'must be a JSON object: {"reason": "..."}')
    try:
        return WithdrawalCreate.model_validate(sanitise(body)).reason
    except ValidationError as exc:
        raise BadSubmission(422, [ErrorDetail(loc=["body", *e["loc"]], type=e["type"],
                                              msg="is required" if e["type"] == "missing" else e["msg"])
                                  for e in exc.errors(include_url=False)]) from None


@router.delete(
    "/v1/submissions/{submission_id}", status_code=202, response_model=WithdrawalAccepted,
    operation_id="withdrawSubmission", tags=["submissions"],
    responses=problems(400, *KEYED, 404, 413, 415, 422, 503),
    openapi_extra={**BEARER_REQUIRED, "requestBody": {"required": True, "content": {
        "application/json": {"schema": with_ingest_limits(WithdrawalCreate.model_json_schema())}}}})
async def withdraw(submission_id: uuid.UUID, request: Request) -> Response:
    """Withdraw a submission (its submitter's key or an admin's): it leaves every view, stays in its history.

    Withdrawing again changes nothing; sending the submission again (same id) brings it back.
    """
    principal = await authorise(request, WITHDRAWERS)
    settings: IngestSettings = request.app.state.settings
    body, _ = await read_json_body(request, settings.max_body_bytes)
    reason = read_reason(body)
    sid = str(submission_id)
    records: SubmissionRecords = request.app.state.records
    try:
        recorded = await records.find(sid)
    except PyMongoError as exc:
        log.warning("submission record unreadable; answering 503", extra={"submission_id": sid, "error": str(exc)})
        return JSONResponse({"detail": [STORE_UNAVAILABLE.model_dump()]}, status_code=503,
                            headers={"Retry-After": str(settings.retry_after_s)})
    if recorded is None:
        raise _refusal(404, ["path", "submission_id"], "not_found",
                       f"no submission with id {sid!r} has been recorded; one sent moments ago can be withdrawn "
                       "once its status URL answers")
    if principal.role != "admin" and recorded.submitted_by != principal.key_id:
        raise _refusal(403, ["path", "submission_id"], "not_the_submitter",
                       "only the key that sent this submission, or an admin, may withdraw it")
    trace_id = trace_id_from(request.headers.get("traceparent")) or new_trace_id()
    bind_trace_id(trace_id)
    now = utcnow()
    event = WithdrawalRequested(
        id=sid, type=recorded.type, submitted_by=recorded.submitted_by, received_at=now, trace_id=trace_id,
        withdrawal=Withdrawal(reason=reason, withdrawn_by=principal.key_id, role=principal.role))
    publisher: Publisher = request.app.state.publisher
    await publisher.publish(settings.topics.received, sid, event.encode(),
                            cloudevent_headers(EVENT_WITHDRAWAL_REQUESTED, sid, trace_id, now))
    EVENTS_PRODUCED.labels("ingest", settings.topics.received).inc()
    log.info("withdrawal received", extra={"submission_id": sid, "withdrawn_by": principal.key_id,
                                           "trace_id": trace_id})
    answer = WithdrawalAccepted(id=sid, status_url=f"{settings.status_base_url}/v1/submissions/{sid}",
                                trace_id=trace_id)
    return Response(answer.model_dump_json(), status_code=202, media_type="application/json")


STORE_UNAVAILABLE = ErrorDetail(loc=[], type="unavailable",
                                msg="the store that says who sent this submission cannot be read right now; "
                                    "nothing was withdrawn, retry")
