"""Operators' endpoints on every service: liveness, readiness with named checks, Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Check = Callable[[], Awaitable[bool]]

HTTP_REQUESTS = Counter("dmp_http_requests_total", "HTTP requests answered", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram("dmp_http_request_duration_seconds", "HTTP request latency", ["service", "method", "route"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def health_router(checks: Callable[[], Mapping[str, Check]]) -> APIRouter:
    """`/health/live`, `/health/ready` (every named check must pass) and `/metrics`."""
    router = APIRouter(tags=["operations"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        """The process is up and serving."""
        return {"status": "live"}

    @router.get("/health/ready", responses={503: {"description": "A dependency is not ready"}})
    async def ready() -> JSONResponse:
        """200 when every dependency works; 503 naming the ones that do not."""
        named = dict(checks())
        results = await asyncio.gather(*(_run(check) for check in named.values()))
        outcome = dict(zip(named, results, strict=True))
        failing = [name for name, ok in outcome.items() if not ok]
        body = {"status": "not_ready" if failing else "ready", "checks": outcome, "failing": failing}
        return JSONResponse(body, status_code=503 if failing else 200)

    @router.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


async def _run(check: Check, timeout: float = 5.0) -> bool:
    try:
        async with asyncio.timeout(timeout):
            return bool(await check())
    except Exception:  # noqa: BLE001 - a failing check is a "no", not an error
        return False


class MetricsMiddleware:
    """Counts and times requests per route template (not per raw path, to bound label cardinality)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(self.service, scope["method"], route, str(status)).inc()
            HTTP_LATENCY.labels(self.service, scope["method"], route).observe(time.perf_counter() - started)


def install_error_handler(app: FastAPI) -> None:
    """Unexpected errors answer 500 as JSON without internals; the traceback goes to the log only."""
    import logging

    log = logging.getLogger("dmp.http")

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc, extra={"path": request.url.path, "method": request.method})
        return JSONResponse({"detail": [{"loc": [], "msg": "internal error; it has been logged", "type": "internal"}]},
                            status_code=500)
