"""ingest's composition root: the field officers' write API, publishing to the received topic."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import Counter
from pydantic import BaseModel

from services.ingest.edge import (
    BadSubmission,
    Envelope,
    Incoming,
    is_plain,
    parse_envelope,
    read_batch_body,
    read_envelope,
    read_json_body,
    sanitise,
)
from services.ingest.lane import Handler, SubmissionLane
from services.ingest.pseudonym import pseudonymise_training
from services.ingest.settings import IngestSettings
from shared.access import BEARER_REQUIRED, check_access, declare_bearer_scheme, install_access
from shared.auth import Authenticator, KeyStore, MongoKeyStore, Principal, Role
from shared.envelope import (
    EVENT_RECEIVED,
    ErrorDetail,
    SubmissionCreate,
    cloudevent_headers,
    new_trace_id,
    trace_id_from,
    utcnow,
)
from shared.errors import InfrastructureUnavailable
from shared.health import MetricsMiddleware, health_router, install_error_handler, labelled
from shared.kafka import EVENTS_PRODUCED, KafkaPublisher, Outbound, Publisher, ensure_topics
from shared.lifecycle import unless_stopped
from shared.service import FatalHandler, app_options, run
from shared.store import StoreDeadline, connect, store_reachable
from shared.tracing import bind_trace_id

log = logging.getLogger("services.ingest.app")  # not __main__ when run with -m

SUBMISSIONS = Counter("dmp_ingest_submissions_total", "Submissions answered", ["type", "outcome"])


class SubmissionAccepted(BaseModel):
    """The broker has the submission; its verdict will appear at `status_url`."""

    id: str
    status: str = "received"
    status_url: str
    trace_id: str


class ProblemResponse(BaseModel):
    detail: list[ErrorDetail]


class BatchItemResult(BaseModel):
    """One item's verdict: `received` (the broker has it), `invalid` (fix and resend), `forbidden` (not a
    country this key reports for), `unavailable` (resend as it is)."""

    index: int
    id: str | None
    status: str
    status_url: str | None = None
    errors: list[ErrorDetail] = []


class BatchResult(BaseModel):
    items: list[BatchItemResult]
    received: int
    invalid: int
    forbidden: int
    unavailable: int


PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"model": ProblemResponse} for code in (400, 401, 403, 413, 415, 422, 429, 503)}
OFFICER: tuple[Role, ...] = ("officer",)


def create_app(settings: IngestSettings, publisher: Publisher | None = None, keys: KeyStore | None = None) -> FastAPI:
    """The ingest app; what is not passed in (broker, key store) its lifespan connects for real."""
    pepper = settings.auth_pepper.get_secret_value().encode()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if keys is None:
                client = connect(settings.mongodb_url, "dmp-ingest")
                stack.push_async_callback(client.close)
                app.state.authenticator = Authenticator(MongoKeyStore(client, settings.mongodb_database), pepper)
                app.state.store_ok = lambda: store_reachable(client)
            if publisher is None:
                await unless_stopped(ensure_topics(settings.kafka_bootstrap_servers, settings.topics.all(),
                                                   settings.topic_layout), "topic set-up")
                kafka = KafkaPublisher(settings.kafka_bootstrap_servers, timeout=settings.publish_timeout_s,
                                       recreate_after=settings.producer_recreate_after_s,
                                       probe_interval=settings.broker_probe_interval_s)
                await unless_stopped(kafka.start(), "the broker connection")
                stack.push_async_callback(kafka.stop)
                app.state.publisher = kafka
            yield

    app = FastAPI(title="DMP ingest", version="0.1.0", lifespan=lifespan, **app_options(settings),
                  description="Field officers submit seizures, prices, financial cases, treatment facility "
                              "reports and training participants here.")
    app.state.settings = settings
    app.state.publisher = publisher
    app.state.store_ok = _always_ok
    lanes: dict[str, Handler] = {}  # filled once the routes are declared
    app.add_middleware(SubmissionLane, fastapi=app, handlers=lanes)  # innermost: added first
    app.add_middleware(MetricsMiddleware, service="ingest")
    app.add_middleware(StoreDeadline, seconds=settings.store_timeout_s)
    install_error_handler(app)
    install_access(app, settings, Authenticator(keys, pepper) if keys is not None else None)

    @app.exception_handler(BadSubmission)
    async def bad_submission(_: Request, exc: BadSubmission) -> JSONResponse:
        return JSONResponse({"detail": [e.model_dump() for e in exc.errors]}, status_code=exc.status)

    @app.exception_handler(InfrastructureUnavailable)
    async def broker_down(_: Request, exc: InfrastructureUnavailable) -> JSONResponse:
        return JSONResponse({"detail": [UNAVAILABLE.model_dump()]}, status_code=503,
                            headers={"Retry-After": str(settings.retry_after_s)})

    envelope_schema = SubmissionCreate.model_json_schema()

    async def authorised_officer(request: Incoming) -> Principal:
        officer = await check_access(app.state, request.headers.get("authorization"), OFFICER)
        request.scope.setdefault("state", {})["principal"] = officer  # = request.state.principal, as authorise sets
        return officer

    async def accept_one(request: Incoming) -> Response:
        officer = await authorised_officer(request)
        publisher: Publisher = app.state.publisher
        body, raw = await read_json_body(request, settings.max_body_bytes)
        prepared = prepare(body, request, settings, officer, plain=is_plain(raw))
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

    async def accept_batch(request: Incoming) -> Response:
        officer = await authorised_officer(request)
        publisher: Publisher = app.state.publisher
        items, raw = await read_batch_body(request, settings.max_batch_bytes, settings.max_batch_items)
        plain = is_plain(raw)
        # Verdicts are built as plain dicts in BatchItemResult's shape: per item, models cost more than the rest.
        results: list[dict[str, Any] | None] = []
        ready: list[tuple[int, Prepared]] = []
        tally = dict.fromkeys(("received", "invalid", "forbidden", "unavailable"), 0)
        for index, item in enumerate(items):
            try:
                if isinstance(item, BadSubmission):
                    raise item
                prepared = prepare(item, request, settings, officer, plain=plain)
            except BadSubmission as exc:
                item_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
                status = "forbidden" if exc.status == 403 else "invalid"
                results.append(_verdict(index, item_id, status, errors=exc.errors))
                tally[status] += 1
                SUBMISSIONS.labels(item.get("type", "unknown") if isinstance(item, dict) else "unknown",
                                   "invalid").inc()
                continue
            results.append(None)  # its verdict once the broker has answered
            ready.append((index, prepared))
        outcomes = await publisher.publish_many([p.outbound for _, p in ready])
        counts: dict[tuple[str, str, str], int] = {}  # (type, topic, outcome): one count() per group, not per item
        for (index, prepared), outcome in zip(ready, outcomes, strict=True):
            if outcome is None:
                status = "received"
                results[index] = _verdict(index, prepared.id, status, status_url=prepared.status_url)
                log_received(prepared, officer)
            else:
                status = "unavailable"
                results[index] = _verdict(index, prepared.id, status, errors=[UNAVAILABLE])
            tally[status] += 1
            group = (prepared.envelope.type, prepared.outbound.topic, status)
            counts[group] = counts.get(group, 0) + 1
        for (submission_type, topic, status), n in counts.items():
            count_as(submission_type, topic, status, n)
        headers = {"Retry-After": str(settings.retry_after_s)} if tally["unavailable"] else None
        return Response(orjson.dumps({"items": results, **tally}), status_code=207, headers=headers,
                        media_type="application/json")

    # Both routes are documented and served as declared here; POSTs to them take the fast lane (see
    # services/ingest/lane.py) to the same handlers, past FastAPI's routing and dependency solving.
    @app.post("/v1/submissions", status_code=202, response_model=SubmissionAccepted, responses=PROBLEMS,
              openapi_extra={**BEARER_REQUIRED, "requestBody": {
                  "required": True, "content": {"application/json": {"schema": envelope_schema}}}})
    async def submit(request: Request) -> Response:
        """Accept one submission; 202 only once the broker has durably acknowledged it."""
        return await accept_one(request)

    @app.post("/v1/submissions/batch", status_code=207, response_model=BatchResult, responses=PROBLEMS,
              openapi_extra={**BEARER_REQUIRED, "requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "array", "items": envelope_schema, "maxItems": 1000}},
                  "application/x-ndjson": {"schema": {"type": "string", "description": "one envelope per line"}}}}})
    async def submit_batch(request: Request) -> Response:
        """Accept up to 1,000 submissions; one verdict per item, in order. Received items are in the broker."""
        return await accept_batch(request)

    lanes.update({"/v1/submissions": accept_one, "/v1/submissions/batch": accept_batch})
    app.include_router(health_router(lambda: {"broker": app.state.publisher.ready, "keys": app.state.store_ok}))
    declare_bearer_scheme(app)
    return app


UNAVAILABLE = ErrorDetail(loc=[], type="unavailable",
                          msg="the message broker cannot take submissions right now; nothing was stored, "
                              "retry with the same id")


def _verdict(index: int, submission_id: str | None, status: str, status_url: str | None = None,
             errors: Sequence[ErrorDetail] = ()) -> dict[str, Any]:
    """One BatchItemResult, as the dict its model would dump (an empty tuple encodes as the empty list)."""
    return {"index": index, "id": submission_id, "status": status, "status_url": status_url,
            "errors": [e.model_dump() for e in errors] if errors else ()}


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


async def _always_ok() -> bool:
    return True


REPORTING_COUNTRY = {"seizure": "country", "price": "country", "financial_case": "country",
                     "treatment_facility": "country", "training": "host_country"}
"""The field that says which country a submission reports for, per type."""


def check_scope(envelope: Envelope, officer: Principal) -> None:
    """403 when the key may not report for the submission's country (an invalid code is validate's to reject)."""
    field = REPORTING_COUNTRY[envelope.type]
    country = envelope.data.get(field)
    if isinstance(country, str) and not officer.may_report_for(country):
        allowed = ", ".join(sorted(officer.countries or ()))
        raise BadSubmission(403, [ErrorDetail(loc=["body", "data", field], type="forbidden_country",
                                              msg=f"this key reports for {allowed}, not {country}")])


def prepare(body: Any, request: Incoming, settings: IngestSettings, officer: Principal, *,
            plain: bool = False) -> Prepared:
    """Check the envelope, pseudonymise what must not leave ingest, and build the received event.

    `plain`: the body was parsed from JSON for which `edge.is_plain` holds (its strings need fewer checks).
    """
    body = sanitise(body, plain)
    if isinstance(body, dict) and body.get("type") == "training" and isinstance(body.get("data"), dict):
        data, problems = pseudonymise_training(body["data"], settings.pseudonym_key.get_secret_value().encode())
        body = {**body, "data": data}
        envelope_problems: list[ErrorDetail] = []
        try:
            parse_envelope(body)
        except BadSubmission as exc:
            envelope_problems = exc.errors
        if problems or envelope_problems:
            raise BadSubmission(422, envelope_problems + problems)
    envelope = read_envelope(body)
    check_scope(envelope, officer)
    encoded_data = orjson.dumps(envelope.data)
    encoded_size = len(encoded_data)
    if encoded_size > settings.max_body_bytes:
        raise BadSubmission(413, [ErrorDetail(loc=["body", "data"], type="body_too_large",
                                              msg=f"is {encoded_size} bytes; the limit is {settings.max_body_bytes}")])
    trace_id = trace_id_from(request.headers.get("traceparent")) or new_trace_id()
    now = utcnow()
    submission_id = envelope.id
    event = received_event(envelope, officer.key_id, now, trace_id, encoded_data)
    outbound = Outbound(settings.topics.received, submission_id, event,
                        cloudevent_headers(EVENT_RECEIVED, submission_id, trace_id, now))
    return Prepared(envelope, outbound, submission_id, f"{settings.status_base_url}/v1/submissions/{submission_id}",
                    trace_id)


_RECEIVED_EVENT = (b'{"id":"%s","type":"%s","schema_version":%d,"data":%s,"submitted_by":%s,"received_at":%s,'
                   b'"trace_id":%s}')


def received_event(envelope: Envelope, submitted_by: str, received_at: datetime, trace_id: str,
                   encoded_data: bytes | None = None) -> bytes:
    """The `SubmissionReceived` event as JSON, as orjson encodes its fields (the hot path skips the model);
    `encoded_data` is `envelope.data` already encoded, if it was.

    Filled into a template rather than encoded whole: orjson's output buffer, kept per item until the batch
    is sent, costs more than the encoding. Id (a UUID's text) and type (a known one) need no escaping.
    """
    data = orjson.dumps(envelope.data) if encoded_data is None else encoded_data
    return _RECEIVED_EVENT % (envelope.id.encode(), envelope.type.encode(), envelope.schema_version, data,
                              orjson.dumps(submitted_by), orjson.dumps(received_at, option=orjson.OPT_UTC_Z),
                              orjson.dumps(trace_id))


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


def main() -> None:
    settings = IngestSettings()

    def build(_: FatalHandler) -> FastAPI:
        return create_app(settings)

    run("ingest", settings, build)


if __name__ == "__main__":
    main()

