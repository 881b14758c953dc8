"""A fast lane for ingest's two submission routes: FastAPI's routing and generic dependency solving cost
more per submission than ingest's own checks, so POSTs to those paths go straight to their handlers.

The handlers are the routes' own (routes.FAST_LANE), called with their dependencies resolved by the same
functions FastAPI calls (routes.call_endpoint): one code path, reached without the router. The lane sits
innermost among the app's middleware, so everything outside it (server errors, security headers, CORS,
request metrics) sees these requests as before; inside, it does what FastAPI would have done for them: it
names the route in the scope (MetricsMiddleware labels by it) and answers an exception with the app's
handler for it (the rest propagate, as they did). Requests under a root path, or traced by FastAPI's own
telemetry, are left to FastAPI.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest.routes import FAST_LANE, call_endpoint, router


class SubmissionLane:
    """ASGI middleware: `POST <path>` of a FAST_LANE route goes to its handler, everything else to the app."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI) -> None:
        self.app = app
        self.fastapi = fastapi  # built with the middleware stack, on the first request: its routes are all there
        self.routes = {path: _declared_route(router.routes, path) for path in FAST_LANE}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = FAST_LANE.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if endpoint is None or scope.get("root_path") or "fastapi.telemetry" in scope:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.routes[scope["path"]]  # as routing would have set it (MetricsMiddleware reads it)
        request = Request(scope, receive)
        try:
            response = await call_endpoint(endpoint, request)
        except Exception as exc:
            handle = self._exception_handler(exc)
            if handle is None:
                raise
            answer = handle(request, exc)
            response = await answer if inspect.isawaitable(answer) else answer
        await response(scope, receive, send)

    def _exception_handler(self, exc: Exception) -> Callable[..., Any] | None:
        """The handler Starlette's ExceptionMiddleware would pick for `exc` (those for 500 and `Exception` are
        the outermost middleware's, as they are without the lane)."""
        handlers = self.fastapi.exception_handlers
        if isinstance(exc, HTTPException) and exc.status_code in handlers and exc.status_code != 500:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls in handlers and cls is not Exception:
                return handlers[cls]
        return None


def _declared_route(routes: list[Any], path: str) -> Any:
    for route in routes:
        if getattr(route, "path", None) == path and "POST" in getattr(route, "methods", ()):
            return route
    raise LookupError(f"the fast lane's {path} must also be declared as a POST route")
