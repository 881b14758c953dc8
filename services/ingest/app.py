"""ingest's composition root: the field officers' write API (routes.py), publishing to the received topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.ingest.contract import declare_submission_schemas
from services.ingest.edge import BadSubmission
from services.ingest.lane import SubmissionLane
from services.ingest.routes import router
from services.ingest.settings import IngestSettings
from services.ingest.submission import UNAVAILABLE
from services.ingest.withdrawal import router as withdrawal_router
from shared.access import declare_bearer_scheme, install_access
from shared.auth import Authenticator, KeyStore, MongoKeyStore
from shared.docs import install_docs
from shared.errors import InfrastructureUnavailable
from shared.health import MetricsMiddleware, health_router, install_error_handler
from shared.kafka import KafkaPublisher, Publisher, ensure_topics
from shared.lifecycle import unless_stopped
from shared.records import MongoSubmissionRecords, SubmissionRecords
from shared.service import FatalHandler, app_options, run
from shared.session import InMemorySessionStore, MongoSessionStore, SessionStore, console_sessions
from shared.store import StoreDeadline, connect, store_reachable


def create_app(settings: IngestSettings, publisher: Publisher | None = None, keys: KeyStore | None = None,
               records: SubmissionRecords | None = None, sessions: SessionStore | None = None) -> FastAPI:
    """The ingest app; what is not passed in (broker, key store, submission records) its lifespan connects for
    real."""
    pepper = settings.auth_pepper.get_secret_value().encode()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            if keys is None or records is None:
                client = connect(settings.mongodb_url, "dmp-ingest")
                stack.push_async_callback(client.close)
                if records is None:
                    app.state.records = MongoSubmissionRecords(client, settings.mongodb_database)
            if keys is None:
                app.state.authenticator = Authenticator(MongoKeyStore(client, settings.mongodb_database), pepper)
                app.state.sessions = console_sessions(settings, MongoSessionStore(client, settings.mongodb_database),
                                                      app.state.authenticator)
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
    app.state.records = records
    app.state.store_ok = _always_ok
    app.add_middleware(SubmissionLane, fastapi=app)  # innermost: added first
    app.add_middleware(MetricsMiddleware, service="ingest")
    app.add_middleware(StoreDeadline, seconds=settings.store_timeout_s)
    install_error_handler(app)
    install_docs(app)
    install_access(app, settings, Authenticator(keys, pepper) if keys is not None else None)
    if keys is not None:
        app.state.sessions = console_sessions(settings, sessions or InMemorySessionStore(), app.state.authenticator)
    app.add_exception_handler(BadSubmission, bad_submission)  # type: ignore[arg-type]
    app.add_exception_handler(InfrastructureUnavailable, broker_unavailable)  # type: ignore[arg-type]
    app.include_router(router)
    app.include_router(withdrawal_router)
    app.include_router(health_router(lambda: {"broker": app.state.publisher.ready, "keys": app.state.store_ok}))
    declare_bearer_scheme(app)
    declare_submission_schemas(app)
    return app


async def bad_submission(_: Request, exc: BadSubmission) -> JSONResponse:
    return JSONResponse({"detail": [e.model_dump() for e in exc.errors]}, status_code=exc.status)


async def broker_unavailable(request: Request, _: InfrastructureUnavailable) -> JSONResponse:
    settings: IngestSettings = request.app.state.settings
    return JSONResponse({"detail": [UNAVAILABLE.model_dump()]}, status_code=503,
                        headers={"Retry-After": str(settings.retry_after_s)})


async def _always_ok() -> bool:
    return True


def main() -> None:
    settings = IngestSettings()

    def build(_: FatalHandler) -> FastAPI:
        return create_app(settings)

    run("ingest", settings, build)


if __name__ == "__main__":
    main()
