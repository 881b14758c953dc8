"""Running a service process: JSON logs, uvicorn, graceful stop on SIGTERM, non-zero exit when its worker gives up.

On SIGTERM (or SIGINT) the server stops accepting connections, lets in-flight requests finish
(`DMP_DRAIN_TIMEOUT_S`), then the lifespan's shutdown drains the consumer's batch in hand and
closes the clients. A stop request during start-up (still waiting for the broker) ends the wait
at once. Whatever happens, the process is gone `DMP_SHUTDOWN_TIMEOUT_S` after the first signal.

Exit codes: 0 after a requested stop, 1 when start-up failed or the worker hit a fatal error
(a supervisor restarts it), 70 when the shutdown deadline had to cut a hung stop short.
"""

from __future__ import annotations

import gc
import inspect
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from shared.jsonlog import configure_logging
from shared.lifecycle import LifecycleSettings, request_stop, stop_requested
from shared.problems import operation_id
from shared.settings import ServiceSettings

log = logging.getLogger(__name__)

FatalHandler = Callable[[BaseException], None]
EXIT_HUNG = 70


class _Server(uvicorn.Server):
    """uvicorn's server, telling the rest of the process about a stop request and bounding the stop."""

    def __init__(self, config: uvicorn.Config, shutdown_timeout: float) -> None:
        super().__init__(config)
        self.shutdown_timeout = shutdown_timeout
        self._deadline: threading.Timer | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        request_stop()
        self.stop(f"signal {signal.Signals(sig).name}")

    def stop(self, reason: str) -> None:
        """Begin a graceful stop that must be over within `shutdown_timeout` seconds."""
        self.should_exit = True
        if self._deadline is None:
            log.info("stopping; draining", extra={"reason": reason, "deadline_s": self.shutdown_timeout})
            self._deadline = threading.Timer(self.shutdown_timeout, _give_up, args=(self.shutdown_timeout,))
            self._deadline.daemon = True
            self._deadline.start()


def app_options(settings: ServiceSettings) -> dict[str, Any]:
    """Keyword arguments for every service's `FastAPI(...)`: FastAPI's docs pages off (each service installs
    its own, shared/docs.py) and OpenTelemetry as configured.

    FastAPI (0.16x) instruments every request for OpenTelemetry whenever a tracer, meter or logger
    provider is configured, and to find out it looks the global providers up on every request, a
    noticeable share of a single submission's cost spent to learn that none is. The services carry
    W3C trace context in their events and logs themselves, so this is opt-in (`DMP_OPENTELEMETRY`).

    Operation ids in the OpenAPI document read as verbs (`getSeizuresView`): generated clients name
    their functions after them.
    """
    options: dict[str, Any] = {"generate_unique_id_function": operation_id,
                               "docs_url": None, "redoc_url": None}  # served without a CDN: shared/docs.py
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:  # an older FastAPI: nothing to turn off
        return options
    enabled = settings.opentelemetry
    return {**options, "telemetry": {"tracing": enabled, "metrics": enabled, "logs": enabled}}


def _give_up(timeout: float) -> None:
    log.critical("stop did not finish in time; exiting now", extra={"shutdown_timeout_s": timeout})
    logging.shutdown()
    os._exit(EXIT_HUNG)


def run(service: str, settings: ServiceSettings, build_app: Callable[[FatalHandler], FastAPI],
        lifecycle: LifecycleSettings | None = None) -> None:
    """Serve the app until SIGTERM/SIGINT; exit 1 if start-up failed or the worker hit a fatal error."""
    configure_logging(service, settings.log_level)
    lifecycle = lifecycle or LifecycleSettings()
    failures: list[BaseException] = []
    server: _Server | None = None

    def on_fatal(exc: BaseException) -> None:
        failures.append(exc)
        if server is not None:
            server.stop(f"fatal error: {exc!r}")

    app = build_app(on_fatal)
    # What start-up built lives as long as the process: keep it out of the collector's full passes, which
    # the short-lived objects of every batch and request trigger, each walking all of it again while the
    # event loop waits.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False,
                            timeout_graceful_shutdown=int(max(1, lifecycle.drain_timeout_s)), lifespan="on")
    server = _Server(config, lifecycle.shutdown_timeout_s)
    # uvicorn re-raises the signal that stopped it once it is done; with the default handlers that
    # would kill the process before it can choose its exit code, so leave harmless ones behind.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _ignore)
    log.info("starting", extra={"port": settings.port, "kafka": settings.kafka_bootstrap_servers,
                                "topics": list(settings.topics.all())})
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits this way when the lifespan's start-up fails
        if stop_requested():
            log.info("stopped during start-up")
            sys.exit(0)
        log.critical("start-up failed", extra={"code": exc.code})
        sys.exit(1)
    if failures or not server.started:
        log.critical("exiting after a fatal error", extra={"errors": [repr(f) for f in failures]})
        sys.exit(1)
    log.info("stopped")


def _ignore(sig: int, frame: FrameType | None) -> None:
    """A stop signal after uvicorn has finished: the process is exiting anyway."""
