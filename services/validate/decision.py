"""Turns one received event into the event to publish: validated, rejected or withdrawn. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from services.validate.rules import RULES_VERSION, Accepted, validate
from services.validate.rules.training import without_raw_identity
from shared.envelope import (
    EVENT_REJECTED,
    EVENT_VALIDATED,
    EVENT_WITHDRAWN,
    ErrorDetail,
    Provenance,
    SubmissionReceived,
    SubmissionRejected,
    SubmissionValidated,
    SubmissionWithdrawn,
    WithdrawalRequested,
    cloudevent_headers,
    content_hash,
    new_trace_id,
    trace_id_from,
    utcnow,
)
from shared.topics import Topics

VALIDATOR = f"dmp-validate/0.1.0 rules={RULES_VERSION}"


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: str
    value: bytes
    headers: list[tuple[str, bytes]]
    accepted: bool
    type: str = ""
    trace_id: str = ""
    withdrawal: bool = False


def decide(raw: bytes | None, key: bytes | None, headers: dict[str, bytes], partition: int, offset: int,
           topics: Topics) -> Outgoing:
    """Validate one received event; a value that is not even an event is rejected, never dropped."""
    now = utcnow()
    try:
        received = SubmissionReceived.decode(raw or b"")
    except ValidationError as exc:
        try:  # not a submission: a withdrawal, if it reads as one (rare, so tried second)
            request = WithdrawalRequested.decode(raw or b"")
        except ValidationError:
            return _unreadable(raw, key, headers, Provenance(partition=partition, seq=offset), exc, topics)
        return withdrawn(request, headers, partition, offset, topics)
    trace_id = trace_id_from(headers.get("traceparent", b"").decode(errors="replace")) or received.trace_id
    digest = content_hash(received.type, received.schema_version, received.data)
    outcome = validate(received)
    if isinstance(outcome, Accepted):
        value = SubmissionValidated.encode_fields(
            received.id, received.type, outcome.schema_version, outcome.data, digest, partition, offset,
            received.submitted_by, received.received_at, now, VALIDATOR, trace_id)
        topic, ce_type = topics.validated, EVENT_VALIDATED
    else:
        value = SubmissionRejected(
            id=received.id, type=received.type, original=_publishable(orjson.loads(raw or b"{}")),
            errors=outcome.errors, data_hash=digest, received=Provenance(partition=partition, seq=offset),
            submitted_by=received.submitted_by, received_at=received.received_at, rejected_at=now,
            rejected_by=VALIDATOR, trace_id=trace_id).encode()
        topic, ce_type = topics.rejected, EVENT_REJECTED
    return Outgoing(topic, received.id, value, cloudevent_headers(ce_type, received.id, trace_id, now),
                    accepted=isinstance(outcome, Accepted), type=received.type, trace_id=trace_id)


def withdrawn(request: WithdrawalRequested, headers: dict[str, bytes], partition: int, offset: int,
              topics: Topics) -> Outgoing:
    """A withdrawal needs no rules (ingest checked who asks): it becomes the submission's withdrawn version,
    published on the validated topic so that it is ordered with the submission's valid versions."""
    now = utcnow()
    trace_id = trace_id_from(headers.get("traceparent", b"").decode(errors="replace")) or request.trace_id
    value = SubmissionWithdrawn(
        id=request.id, type=request.type, withdrawal=request.withdrawal,
        received=Provenance(partition=partition, seq=offset), submitted_by=request.submitted_by,
        received_at=request.received_at, withdrawn_at=now, trace_id=trace_id).encode()
    return Outgoing(topics.validated, request.id, value, cloudevent_headers(EVENT_WITHDRAWN, request.id, trace_id, now),
                    accepted=True, type=request.type, trace_id=trace_id, withdrawal=True)


def _unreadable(raw: bytes | None, key: bytes | None, headers: dict[str, bytes], provenance: Provenance,
                exc: ValidationError, topics: Topics) -> Outgoing:
    now = utcnow()
    try:
        original: Any = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        original = {"raw": (raw or b"").decode(errors="replace")}
    if not isinstance(original, dict):
        original = {"raw": original}
    original = _publishable(original)
    submission_id = (key or b"").decode(errors="replace") or str(original.get("id", ""))
    trace_id = trace_id_from(headers.get("traceparent", b"").decode(errors="replace")) or new_trace_id()
    errors = [ErrorDetail(loc=["event", *e["loc"]], msg=e["msg"], type="malformed_event")
              for e in exc.errors(include_url=False)]
    event = SubmissionRejected(
        id=submission_id, type=str(original.get("type", "")), original=original, errors=errors,
        data_hash=content_hash("", 0, original), received=provenance,
        submitted_by=str(original.get("submitted_by", "")), received_at=now, rejected_at=now,
        rejected_by=VALIDATOR, trace_id=trace_id)
    return Outgoing(topics.rejected, submission_id, event.encode(),
                    cloudevent_headers(EVENT_REJECTED, submission_id, trace_id, now), accepted=False,
                    trace_id=trace_id)


def _publishable(original: dict[str, Any]) -> dict[str, Any]:
    """The original as a rejected event may carry it: never with a training participant's raw identity.

    Ingest pseudonymises training participants, so this only matters if it ever failed to; the
    rejection then says why (`participant.national_id` is not a field) without repeating the value.
    """
    data = original.get("data")
    if original.get("type") == "training" and isinstance(data, dict):
        return {**original, "data": without_raw_identity(data)}
    return original
