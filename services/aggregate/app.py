"""aggregate's composition root: the consumer loop, the store, and the read API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.aggregate.answers import Answers
from services.aggregate.api import router
from services.aggregate.console import install_console
from services.aggregate.console.outlines import countries_json
from services.aggregate.generation import LiveAggregate
from services.aggregate.repository import Repository
from services.aggregate.settings import AggregateSettings
from shared.access import install_access
from shared.audit import AuditLog, InMemoryAuditLog, MongoAuditLog
from shared.auth import Authenticator, InMemoryKeyStore, KeyStore, MongoKeyStore
from shared.docs import install_docs
from shared.health import MetricsMiddleware, health_router, install_error_handler
from shared.liveness import Heartbeat
from shared.service import FatalHandler, app_options, run
from shared.session import InMemorySessionStore, MongoSessionStore, console_sessions
from shared.store import StoreDeadline, connect, store_reachable


def create_app(settings: AggregateSettings, repository: Repository | None = None,
               on_fatal: FatalHandler | None = None, keys: KeyStore | None = None,
               audit: AuditLog | None = None) -> FastAPI:
    """The read API; with no `repository` the lifespan connects MongoDB and follows the live generation."""
    pepper = settings.auth_pepper.get_secret_value().encode()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if repository is not None:
            yield
            return
        client = connect(settings.mongodb_url, "dmp-aggregate")
        app.state.mongo = client
        app.state.audit = MongoAuditLog(client, settings.mongodb_database)
        await app.state.audit.ensure_indexes()
        app.state.authenticator = Authenticator(MongoKeyStore(client, settings.mongodb_database), pepper)
        app.state.sessions = console_sessions(settings, MongoSessionStore(client, settings.mongodb_database),
                                              app.state.authenticator)
        app.state.live = LiveAggregate(settings, client, app.state.audit, on_fatal=on_fatal)
        outlines = asyncio.create_task(asyncio.to_thread(countries_json))  # the console's map, ready before asked
        try:
            await app.state.live.start()
            yield
        finally:
            await outlines
            await app.state.live.stop()
            await client.close()

    app = FastAPI(title="DMP aggregate", version="0.1.0", lifespan=lifespan, **app_options(settings),
                  description="Submission status and the views analysts read.")
    app.state.repository = repository
    app.state.live = None
    app.state.topics = settings.topics
    app.state.answers = Answers()
    if repository is not None:  # everything in memory: usable without running the lifespan
        app.state.audit = audit or InMemoryAuditLog()
        app.state.authenticator = Authenticator(keys or InMemoryKeyStore(), pepper)
        app.state.sessions = console_sessions(settings, InMemorySessionStore(), app.state.authenticator)
    app.add_middleware(MetricsMiddleware, service="aggregate")
    app.add_middleware(StoreDeadline, seconds=settings.store_timeout_s)
    install_error_handler(app)
    install_docs(app)
    install_access(app, settings, app.state.authenticator if repository is not None else None)
    app.include_router(router)
    install_console(app, settings)

    async def store_ok() -> bool:
        return await store_reachable(app.state.mongo)

    async def broker_ok() -> bool:
        return bool(app.state.live and await app.state.live.broker_ok())

    async def partitions_assigned() -> bool:
        return bool(app.state.live and app.state.live.assigned())

    def loops() -> list[Heartbeat]:
        return app.state.live.heartbeats() if app.state.live else []

    app.include_router(health_router(lambda: {"store": store_ok, "broker": broker_ok,
                                              "partitions": partitions_assigned}, loops=loops))
    return app


def main() -> None:
    settings = AggregateSettings()

    def build(on_fatal: FatalHandler) -> FastAPI:
        return create_app(settings, on_fatal=on_fatal)

    run("aggregate", settings, build)


if __name__ == "__main__":
    main()
