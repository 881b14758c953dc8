"""Turning one checked request body into the received event: scope, pseudonyms, size, trace id, counting."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import orjson
from prometheus_client import Counter

from services.ingest.contract import data_problems
from services.ingest.edge import BadSubmission, Envelope, parse_envelope, read_envelope, sanitise
from services.ingest.pseudonym import pseudonymise_training
from services.ingest.settings import IngestSettings
from shared.auth import Principal
from shared.envelope import (
    EVENT_RECEIVED,
    ErrorDetail,
    SubmissionReceived,
    cloudevent_headers,
    new_trace_id,
    trace_id_from,
    utcnow,
)
from shared.health import labelled
from shared.kafka import EVENTS_PRODUCED, Outbound

log = logging.getLogger("services.ingest.app")  # one logger for the service's lines about submissions

SUBMISSIONS = Counter("dmp_ingest_submissions_total", "Submissions answered", ["type", "outcome"])

UNAVAILABLE = ErrorDetail(loc=[], type="unavailable",
                          msg="the message broker cannot take submissions right now; nothing was stored, "
                              "retry with the same id")

REPORTING_COUNTRY = {"seizure": "country", "price": "country", "financial_case": "country",
                     "treatment_facility": "country", "training": "host_country"}
"""The field that says which country a submission reports for, per type."""


class Prepared(NamedTuple):
    envelope: Envelope
    outbound: Outbound
    id: str
    status_url: str
    trace_id: str

    def accepted(self) -> bytes:
        """The 202 answer, as SubmissionAccepted would encode it."""
        return orjson.dumps({"id": self.id, "status": "received", "status_url": self.status_url,
                             "trace_id": self.trace_id})


def check_scope(envelope: Envelope, officer: Principal) -> None:
    """403 when the key may not report for the submission's country (an invalid code is validate's to reject)."""
    field = REPORTING_COUNTRY[envelope.type]
    country = envelope.data.get(field)
    if isinstance(country, str) and not officer.may_report_for(country):
        allowed = ", ".join(sorted(officer.countries or ()))
        raise BadSubmission(403, [ErrorDetail(loc=["body", "data", field], type="forbidden_country",
                                              msg=f"this key reports for {allowed}, not {country}")])


def prepare(body: Any, traceparent: str | None, settings: IngestSettings, officer: Principal, *,
            plain: bool = False) -> Prepared:
    """Check the envelope, pseudonymise what must not leave ingest, and build the received event.

    `traceparent`: the request's W3C header, if it sent one. `plain`: the body was parsed from JSON for which
    `edge.is_plain` holds (its strings need fewer checks).
    """
    body = sanitise(body, plain)
    if isinstance(body, dict) and body.get("type") == "training" and isinstance(body.get("data"), dict):
        # Its data is checked as sent: once pseudonymised it no longer holds the identifier and name.
        shape = data_problems("training", body.get("schema_version", 1), body["data"])
        data, problems = pseudonymise_training(body["data"], settings.pseudonym_key.get_secret_value().encode())
        body = {**body, "data": data}
        envelope_problems: list[ErrorDetail] = []
        try:
            parse_envelope(body)
        except BadSubmission as exc:
            envelope_problems = exc.errors
        if problems or envelope_problems or shape:
            raise BadSubmission(422, envelope_problems + (shape or problems))
        envelope = read_envelope(body)
    else:
        envelope = read_envelope(body)
        shape = data_problems(envelope.type, envelope.schema_version, envelope.data)
        if shape:
            raise BadSubmission(422, shape)
    check_scope(envelope, officer)
    encoded_data = orjson.dumps(envelope.data)
    encoded_size = len(encoded_data)
    if encoded_size > settings.max_body_bytes:
        raise BadSubmission(413, [ErrorDetail(loc=["body", "data"], type="body_too_large",
                                              msg=f"is {encoded_size} bytes; the limit is {settings.max_body_bytes}")])
    trace_id = trace_id_from(traceparent) or new_trace_id()
    now = utcnow()
    submission_id = envelope.id
    event = SubmissionReceived.encode_fields(submission_id, envelope.type, envelope.schema_version, encoded_data,
                                             officer.key_id, now, trace_id)
    outbound = Outbound(settings.topics.received, submission_id, event,
                        cloudevent_headers(EVENT_RECEIVED, submission_id, trace_id, now))
    return Prepared(envelope, outbound, submission_id, f"{settings.status_base_url}/v1/submissions/{submission_id}",
                    trace_id)


def verdict(index: int, submission_id: str | None, status: str, status_url: str | None = None,
            errors: Sequence[ErrorDetail] = ()) -> dict[str, Any]:
    """One BatchItemResult, as the dict its model would dump (an empty tuple encodes as the empty list)."""
    return {"index": index, "id": submission_id, "status": status, "status_url": status_url,
            "errors": [e.model_dump() for e in errors] if errors else ()}


def log_received(prepared: Prepared, officer: Principal) -> None:
    """One line per acknowledged submission, carrying the trace id its events carry."""
    if log.isEnabledFor(logging.INFO):  # services run at WARNING under load: skip building the extras
        log.info("submission received", extra={"submission_id": prepared.id, "type": prepared.envelope.type,
                                                "submitted_by": officer.key_id, "trace_id": prepared.trace_id})


_submissions, _produced = labelled(SUBMISSIONS), labelled(EVENTS_PRODUCED)


def count(prepared: Prepared, outcome: str) -> None:
    count_as(prepared.envelope.type, prepared.outbound.topic, outcome)


def count_as(submission_type: str, topic: str, outcome: str, n: int = 1) -> None:
    """`n` submissions of `submission_type` answered with `outcome`; the received ones were produced to `topic`."""
    _submissions(submission_type, outcome).inc(n)
    if outcome == "received":
        _produced("ingest", topic).inc(n)
