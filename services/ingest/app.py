"""ingest's composition root: the field officers' write API, publishing to the received topic."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel

from services.ingest.edge import BadSubmission, parse_envelope, read_json_body
from services.ingest.settings import IngestSettings
from shared.envelope import (
    EVENT_RECEIVED,
    ErrorDetail,
    SubmissionCreate,
    SubmissionReceived,
    cloudevent_headers,
    dumps,
    new_trace_id,
    trace_id_from,
    utcnow,
)
from shared.errors import InfrastructureUnavailable
from shared.health import MetricsMiddleware, health_router, install_error_handler
from shared.kafka import EVENTS_PRODUCED, KafkaPublisher, Publisher, ensure_topics
from shared.service import FatalHandler, run

log = logging.getLogger(__name__)

SUBMISSIONS = Counter("dmp_ingest_submissions_total", "Submissions answered", ["type", "outcome"])


class SubmissionAccepted(BaseModel):
    """The broker has the submission; its verdict will appear at `status_url`."""

    id: str
    status: str = "received"
    status_url: str
    trace_id: str


class ProblemResponse(BaseModel):
    detail: list[ErrorDetail]


def get_publisher(request: Request) -> Publisher:
    publisher: Publisher = request.app.state.publisher
    return publisher


def get_settings(request: Request) -> IngestSettings:
    settings: IngestSettings = request.app.state.settings
    return settings


PublisherDep = Annotated[Publisher, Depends(get_publisher)]
SettingsDep = Annotated[IngestSettings, Depends(get_settings)]


def create_app(settings: IngestSettings, publisher: Publisher | None = None) -> FastAPI:
    """The ingest app; with no `publisher`, its lifespan connects a real Kafka producer."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if publisher is not None:
            app.state.publisher = publisher
            yield
            return
        await ensure_topics(settings.kafka_bootstrap_servers, settings.topics.all(), settings.topic_partitions)
        kafka = KafkaPublisher(settings.kafka_bootstrap_servers, timeout=settings.publish_timeout_s)
        await kafka.start()
        app.state.publisher = kafka
        try:
            yield
        finally:
            await kafka.stop()

    app = FastAPI(title="DMP ingest", version="0.1.0", lifespan=lifespan,
                  description="Field officers submit seizures and other field data here.")
    app.state.settings = settings
    app.state.publisher = publisher
    app.add_middleware(MetricsMiddleware, service="ingest")
    install_error_handler(app)

    @app.exception_handler(BadSubmission)
    async def bad_submission(_: Request, exc: BadSubmission) -> JSONResponse:
        return JSONResponse({"detail": [e.model_dump() for e in exc.errors]}, status_code=exc.status)

    @app.exception_handler(InfrastructureUnavailable)
    async def broker_down(_: Request, exc: InfrastructureUnavailable) -> JSONResponse:
        log.warning("publish failed", extra={"error": str(exc)})
        return JSONResponse(
            {"detail": [{"loc": [], "msg": "the message broker cannot take submissions right now; "
                                           "nothing was stored, retry with the same id", "type": "unavailable"}]},
            status_code=503, headers={"Retry-After": str(settings.retry_after_s)})

    @app.post("/v1/submissions", status_code=202, response_model=SubmissionAccepted,
              responses={400: {"model": ProblemResponse}, 413: {"model": ProblemResponse},
                         415: {"model": ProblemResponse}, 422: {"model": ProblemResponse},
                         503: {"model": ProblemResponse}},
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": SubmissionCreate.model_json_schema()}}}})
    async def submit(request: Request, publisher: PublisherDep, settings: SettingsDep) -> SubmissionAccepted:
        """Accept one submission; 202 only once the broker has durably acknowledged it."""
        envelope = parse_envelope(await read_json_body(request, settings.max_body_bytes))
        accepted = await publish_received(envelope, request, publisher, settings)
        SUBMISSIONS.labels(envelope.type, "accepted").inc()
        return accepted

    app.include_router(health_router(lambda: {"broker": app.state.publisher.ready}))
    return app


async def publish_received(envelope: SubmissionCreate, request: Request, publisher: Publisher,
                           settings: IngestSettings) -> SubmissionAccepted:
    """Publish the envelope, with who, when and a trace id, to the received topic."""
    trace_id = trace_id_from(request.headers.get("traceparent")) or new_trace_id()
    now = utcnow()
    event = SubmissionReceived(id=str(envelope.id), type=envelope.type, schema_version=envelope.schema_version,
                               data=envelope.data, submitted_by=submitter(request), received_at=now,
                               trace_id=trace_id)
    topic = settings.topics.received
    await publisher.publish(topic, event.id, dumps(event), cloudevent_headers(EVENT_RECEIVED, event.id, trace_id, now))
    EVENTS_PRODUCED.labels("ingest", topic).inc()
    return SubmissionAccepted(id=event.id, status_url=f"{settings.status_base_url}/v1/submissions/{event.id}",
                              trace_id=trace_id)


def submitter(_: Request) -> str:
    """Who is submitting; until keys exist every caller is anonymous."""
    return "anonymous"


def main() -> None:
    settings = IngestSettings()

    def build(_: FatalHandler) -> FastAPI:
        return create_app(settings)

    run("ingest", settings, build)


if __name__ == "__main__":
    main()


__all__: list[Any] = ["create_app", "main"]
