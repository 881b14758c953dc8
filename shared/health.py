"""Operators' endpoints on every service: liveness, readiness with named checks, Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Literal, TypeVar

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics import MetricWrapperBase
from pydantic import BaseModel
from pymongo.errors import ConnectionFailure, ExecutionTimeout
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.lifecycle import LifecycleSettings
from shared.liveness import Heartbeat

Check = Callable[[], Awaitable[bool]]

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("dmp_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram("dmp_http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
HTTP_IN_FLIGHT = Gauge("dmp_http_requests_in_flight", "HTTP requests being answered now", ["service"])
DEPENDENCY_UP = Gauge("dmp_dependency_up", "1 when the named readiness check (broker, store, partitions, ...) "
                                           "passed the last time it ran", ["service", "dependency"])


class Liveness(BaseModel):
    status: Literal["live"]


class Stuck(BaseModel):
    """A loop of the process has stopped making progress; `stuck` names it. Restart the process."""

    status: Literal["stuck"]
    stuck: list[str]


class Readiness(BaseModel):
    """Each dependency check and whether it passed; `failing` names the ones that did not."""

    status: Literal["ready", "not_ready"]
    checks: dict[str, bool]
    failing: list[str]


METRICS_TEXT: dict[int | str, dict[str, object]] = {200: {
    "description": "Every metric, in the Prometheus text exposition format.",
    "content": {"text/plain": {"schema": {"type": "string"}}}}}


def health_router(checks: Callable[[], Mapping[str, Check]], service: str | None = None,
                  probe_interval: float | None = None,
                  loops: Callable[[], Iterable[Heartbeat]] = tuple) -> APIRouter:
    """`/health/live` (every loop in `loops` on time), `/health/ready` (every named check must pass) and `/metrics`.

    Every readiness answer, and a probe every `probe_interval` seconds while the app runs, set the
    `dmp_dependency_up` gauge per check. `service` defaults to the name given to MetricsMiddleware.
    """
    interval = probe_interval if probe_interval is not None else LifecycleSettings().probe_interval_s

    @contextlib.asynccontextmanager
    async def probing(app: FastAPI) -> AsyncIterator[None]:
        name = service or service_of(app)

        async def probe() -> None:
            while True:
                await asyncio.sleep(interval)
                try:
                    await run_checks(name, dict(checks()))
                except Exception as exc:  # noqa: BLE001 - keep probing
                    log.debug("dependency probe failed", extra={"error": repr(exc)})

        task = asyncio.create_task(probe(), name="dependency-probe")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    router = APIRouter(tags=["operations"], lifespan=probing)

    @router.get("/health/live", response_model=Liveness, responses={
        503: {"model": Stuck, "description": "A loop is past its deadline; `stuck` names it."}})
    async def live() -> JSONResponse:
        """The process serves and its loops make progress: 503 naming a stuck one (restart the process)."""
        stuck = [heartbeat.name for heartbeat in loops() if heartbeat.overdue() > 0]
        if stuck:
            log.error("loop stuck; liveness fails", extra={"stuck": stuck})
            return JSONResponse({"status": "stuck", "stuck": stuck}, status_code=503)
        return JSONResponse({"status": "live"})

    @router.get("/health/ready", response_model=Readiness, responses={
        503: {"model": Readiness, "description": "A dependency is not ready; `failing` names it."}})
    async def ready(request: Request) -> JSONResponse:
        """200 when every dependency works; 503 naming the ones that do not."""
        outcome = await run_checks(service or service_of(request.app), dict(checks()))
        failing = [name for name, ok in outcome.items() if not ok]
        body = {"status": "not_ready" if failing else "ready", "checks": outcome, "failing": failing}
        return JSONResponse(body, status_code=503 if failing else 200)

    @router.get("/metrics", response_class=PlainTextResponse, responses=METRICS_TEXT)
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def run_checks(service: str, named: Mapping[str, Check]) -> dict[str, bool]:
    """Run the checks together, each bounded in time; record each outcome in `dmp_dependency_up`."""
    results = await asyncio.gather(*(_run(check) for check in named.values()))
    outcome = dict(zip(named, results, strict=True))
    for name, ok in outcome.items():
        DEPENDENCY_UP.labels(service, name).set(1 if ok else 0)
    return outcome


def service_of(app: FastAPI) -> str:
    """The service name the app's MetricsMiddleware was given, else the app's title."""
    for middleware in getattr(app, "user_middleware", []):
        if getattr(middleware, "cls", None) is MetricsMiddleware:
            return str(middleware.kwargs.get("service", app.title))
    return app.title


async def _run(check: Check, timeout: float = 5.0) -> bool:
    try:
        async with asyncio.timeout(timeout):
            return bool(await check())
    except Exception:  # noqa: BLE001 - a failing check is a "no", not an error
        return False


M = TypeVar("M", bound=MetricWrapperBase)


def labelled(metric: M) -> Callable[..., M]:
    """`metric.labels`, remembering each child: looking a child up costs more than using it. For labels
    that take few values (services, routes, statuses, types, topics)."""
    return functools.lru_cache(maxsize=1024)(metric.labels)


class MetricsMiddleware:
    """Counts and times requests per route template (not per raw path, to bound label cardinality).

    The template is the full one, prefixes of included routers and mounts included (see `route_label`).
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self._in_flight = HTTP_IN_FLIGHT.labels(service)
        self._requests = functools.partial(labelled(HTTP_REQUESTS), service)
        self._latency = functools.partial(labelled(HTTP_LATENCY), service)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope.get("path", "")
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self._in_flight.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._in_flight.dec()
            template = getattr(scope.get("route"), "path", None)
            route = route_label(path, template) if isinstance(template, str) else "unmatched"
            self._requests(scope["method"], route, str(status)).inc()
            self._latency(scope["method"], route).observe(time.perf_counter() - started)


@functools.lru_cache(maxsize=4096)
def route_label(path: str, template: str) -> str:
    """The full route template of a request to `path` that matched a route declared as `template`.

    A route inside an included router or a mounted app knows only its own part of the path
    (FastAPI nests included routers: `/views/{name}` under `/v1`), so the segments in front
    of it are taken, literally, from the request path: those are prefixes, never parameters.
    """
    if ":path}" in template:  # a parameter that spans segments: cannot split, keep what is known
        return template
    own = [segment for segment in template.split("/") if segment]
    requested = [segment for segment in path.split("/") if segment]
    prefix = requested[:max(0, len(requested) - len(own))]
    return ("/" + "/".join(prefix) if prefix else "") + template


STORE_RETRY_AFTER_S = 5


def install_error_handler(app: FastAPI) -> None:
    """Unexpected errors answer 500 as JSON without internals; the traceback goes to the log only.

    A store that cannot be reached (or does not answer in time) is not a bug: 503 with Retry-After.
    """
    log = logging.getLogger("dmp.http")

    @app.exception_handler(ConnectionFailure)
    @app.exception_handler(ExecutionTimeout)
    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("store unavailable; answering 503", extra={"path": request.url.path, "error": repr(exc)})
        return JSONResponse({"detail": [{"loc": [], "msg": "the data store cannot be reached right now; retry later",
                                         "type": "unavailable"}]},
                            status_code=503, headers={"Retry-After": str(STORE_RETRY_AFTER_S)})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc, extra={"path": request.url.path, "method": request.method})
        return JSONResponse({"detail": [{"loc": [], "msg": "internal error; it has been logged", "type": "internal"}]},
                            status_code=500)
