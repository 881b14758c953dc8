"""Running a service process: JSON logs, uvicorn, and a non-zero exit when its worker gives up."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from shared.jsonlog import configure_logging
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

FatalHandler = Callable[[BaseException], None]


def run(service: str, settings: ServiceSettings, build_app: Callable[[FatalHandler], FastAPI]) -> None:
    """Serve the app until SIGTERM/SIGINT; exit 1 if start-up failed or the worker hit a fatal error."""
    configure_logging(service, settings.log_level)
    failures: list[BaseException] = []
    server: uvicorn.Server | None = None

    def on_fatal(exc: BaseException) -> None:
        failures.append(exc)
        if server is not None:
            server.should_exit = True

    app = build_app(on_fatal)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=20, lifespan="on")
    server = uvicorn.Server(config)
    log.info("starting", extra={"port": settings.port, "kafka": settings.kafka_bootstrap_servers,
                                "topics": list(settings.topics.all())})
    server.run()
    if failures or not server.started:
        log.critical("exiting after a fatal error", extra={"errors": [repr(f) for f in failures]})
        sys.exit(1)
