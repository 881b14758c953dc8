"""The HTTP side of the access policy: who may call what, how often, and the headers every answer carries.

| route | roles |
|---|---|
| `POST /v1/submissions`, `/v1/submissions/batch` (ingest) | officer, for the countries of its key |
| `DELETE /v1/submissions/{id}` (ingest) | the officer whose key sent the submission, admin |
| `GET /v1/submissions/{id}` (aggregate) | analyst, operator, admin; an officer only for its own submissions |
| `GET /v1/views/*`, `GET /v1/exports/*` (aggregate) | analyst |
| `GET /v1/audit` (aggregate) | admin |
| `/health/*`, `/metrics` | open: no data and no personal data, and services listen on internal addresses |
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import FastAPI, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.auth import Authenticator, AuthError, Principal, require_role
from shared.roles import Role
from shared.session import Sessions, own_origin
from shared.settings import ServiceSettings

BEARER = HTTPBearer(auto_error=False, bearerFormat="dmp_<id>_<secret>",
                    description="An API key made with `dmp admin keys create`.")


@dataclass
class RateLimiter:
    """A token bucket per key: `rate` requests per second on average, bursts up to `burst`."""

    rate: float
    burst: int
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def wait_time(self, key: str, now: float | None = None) -> float:
        """0 if the request may go now (and takes a token), else seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1:
            self.buckets[key] = (tokens - 1, now)
            return 0.0
        self.buckets[key] = (tokens, now)
        return (1 - tokens) / self.rate


class RateLimited(AuthError):
    def __init__(self, retry_after: float) -> None:
        super().__init__(429, "too many requests for this key; slow down and retry", "rate_limited")
        self.retry_after = max(1, math.ceil(retry_after))


def request_header(request: Request, name: bytes) -> str | None:
    """The first `name` header (in lower case) of `request`, as `request.headers.get` would give it, without
    building Starlette's `Headers`: the paths every request takes read a few headers, once each."""
    raw: list[tuple[bytes, bytes]] = request.scope["headers"]
    for key, value in raw:
        if key == name:
            return value.decode("latin-1")
    return None


async def authorise(request: Request, roles: tuple[Role, ...]) -> Principal:
    """The caller's principal, if it holds one of `roles` (401/403/429 otherwise).

    The key in `Authorization` decides when there is one; otherwise a console session cookie. The app's state
    is read by item: its attributes are found only after a failed lookup, which costs more than the rest.
    """
    state = request.app.state
    authorization = request_header(request, b"authorization")
    principal: Principal | None = None
    if authorization is None:
        sessions: Sessions | None = getattr(state, "sessions", None)
        if sessions is not None:
            headers = request.headers
            principal = await sessions.principal(headers, request.method, own_origin(request.url.scheme, headers))
    if principal is None:
        authenticator: Authenticator = state["authenticator"]
        principal = await authenticator.authenticate(authorization)
    require_role(principal, roles)
    rate_limiter: RateLimiter = state["rate_limiter"]
    wait = rate_limiter.wait_time(principal.key_id)
    if wait > 0:
        raise RateLimited(wait)
    request.scope.setdefault("state", {})["principal"] = principal  # read as request.state.principal; no State built
    return principal


def allow(*roles: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: `authorise(request, roles)`, declaring the bearer scheme in the OpenAPI document."""

    async def dependency(request: Request, _: Annotated[HTTPAuthorizationCredentials | None,
                                                         Security(BEARER)] = None) -> Principal:
        return await authorise(request, roles)

    dependency.__name__ = f"allow_{'_'.join(roles)}"
    return dependency


BEARER_REQUIRED: dict[str, Any] = {"security": [{"HTTPBearer": []}]}
"""`openapi_extra` of a route that calls `authorise` itself (a hot path that skips dependency solving);
`declare_bearer_scheme` adds the scheme it names to the document."""


def declare_bearer_scheme(app: FastAPI) -> None:
    """Add the bearer scheme (as `allow` declares it) to the app's OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            scheme = BEARER.model.model_dump(mode="json", by_alias=True, exclude_none=True)
            schema.setdefault("components", {}).setdefault("securitySchemes", {})["HTTPBearer"] = scheme
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_access(app: FastAPI, settings: ServiceSettings, authenticator: Authenticator | None) -> None:
    """Error answers for the access policy, rate limits, CORS and security headers."""
    if authenticator is not None or not hasattr(app.state, "authenticator"):
        app.state.authenticator = authenticator
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)

    @app.exception_handler(AuthError)
    async def refused(_: Request, exc: AuthError) -> JSONResponse:
        headers = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="dmp"'
        if isinstance(exc, RateLimited):
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse({"detail": [{"loc": ["header", "authorization"], "msg": exc.msg, "type": exc.code}]},
                            status_code=exc.status, headers=headers)

    app.add_middleware(BrowserPolicy, console=settings.console_origins, others=settings.cors_origins)


def install_cors(app: FastAPI, settings: ServiceSettings) -> None:
    """CORS alone (no security headers), for a service whose only HTTP answers are its health and metrics."""
    app.add_middleware(BrowserPolicy, console=settings.console_origins, others=settings.cors_origins,
                       security_headers=False)


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-site"),
]
API_ONLY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cache-control", b"no-store"),
]


class BrowserPolicy:
    """ASGI middleware: what browsers are told. Every answer carries the security headers (API answers, under
    `/v1/`, are also never cached or framed); a request with `Origin` goes through CORS, with credentials for
    the console's origins and without for the others configured.

    It runs on every request, so a request without `Origin` (every client but a browser's cross-origin call)
    costs one pass over its headers and the append of a list made here once.
    """

    def __init__(self, app: ASGIApp, console: list[str], others: list[str], security_headers: bool = True) -> None:
        common: dict[str, Any] = {"allow_methods": ["GET", "POST", "DELETE"], "max_age": 600,
                                  "allow_headers": ["Authorization", "Content-Type", "traceparent"]}
        self.app = app
        self.console = frozenset(console)
        self.with_credentials = CORSMiddleware(app, allow_origins=console, allow_credentials=True, **common)
        self.without = CORSMiddleware(app, allow_origins=others, **common)
        self.api_headers = (*SECURITY_HEADERS, *API_ONLY_HEADERS) if security_headers else ()
        self.other_headers = tuple(SECURITY_HEADERS) if security_headers else ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        app = self.app
        for name, value in scope["headers"]:
            if name == b"origin":
                app = self.with_credentials if value.decode("latin-1") in self.console else self.without
                break
        added = self.api_headers if scope["path"].startswith("/v1/") else self.other_headers
        if not added:
            await app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await app(scope, receive, with_headers)
