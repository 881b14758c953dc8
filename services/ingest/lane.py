"""A fast lane for ingest's two submission routes: FastAPI's routing, dependency solving and request objects
cost more per submission than ingest's own checks, so POSTs to those paths go straight to their handlers.

The lane sits innermost among the app's middleware: everything outside it (server errors, security
headers, CORS, request metrics) sees these requests as before. Inside, it does what FastAPI would have
done for them: it names the route in the scope (MetricsMiddleware labels by it) and answers an exception
with the app's handler for it (the rest propagate, as they did). Each lane path is also declared as an
ordinary route calling the same handler: that route documents it in the OpenAPI schema, answers other
methods with 405, and serves the requests the lane leaves to FastAPI (under a root path, or traced by
FastAPI's own telemetry).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest.edge import Incoming


class LightRequest:
    """The little of a request the submission handlers read (an `edge.Incoming`), with only the headers they
    ask for decoded."""

    __slots__ = ("headers", "receive", "scope")

    WANTED: ClassVar[dict[bytes, str]] = {
        name.encode(): name for name in ("authorization", "content-type", "content-length", "traceparent", "cookie",
                                        "origin", "host")}

    def __init__(self, scope: Scope, receive: Receive) -> None:
        self.scope = scope
        self.receive = receive
        headers: dict[str, str] = {}
        for raw, value in scope["headers"]:
            name = self.WANTED.get(raw)
            if name is not None and name not in headers:  # the first one, as Request.headers.get gives
                headers[name] = value.decode("latin-1")
        self.headers: Mapping[str, str] = headers


Handler = Callable[[Incoming], Awaitable[Response]]
"""Answers a submission route's request (a Starlette Request, or the lane's LightRequest)."""


class SubmissionLane:
    """ASGI middleware: `POST <path>` goes to `handlers[path]`, everything else to the app."""

    def __init__(self, app: ASGIApp, fastapi: FastAPI, handlers: Mapping[str, Handler]) -> None:
        self.app = app
        self.fastapi = fastapi  # built with the middleware stack, on the first request: its routes are all there
        self.handlers = handlers
        self.routes = {path: _declared_route(fastapi, path) for path in handlers}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if handler is None or scope.get("root_path") or "fastapi.telemetry" in scope:
            await self.app(scope, receive, send)
            return
        scope["route"] = self.routes[scope["path"]]  # as routing would have set it (MetricsMiddleware reads it)
        try:
            response = await handler(LightRequest(scope, receive))
        except Exception as exc:
            handle = self._exception_handler(exc)
            if handle is None:
                raise
            answer = handle(Request(scope, receive), exc)
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


def _declared_route(app: FastAPI, path: str) -> Any:
    for route in app.routes:
        if getattr(route, "path", None) == path and "POST" in getattr(route, "methods", ()):
            return route
    raise LookupError(f"the fast lane's {path} must also be declared as a POST route")
