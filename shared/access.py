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
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import FastAPI, Request, Security
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import State
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


async def authorise(request: Request, roles: tuple[Role, ...]) -> Principal:
    """The caller's principal, if it holds one of `roles` (401/403/429 otherwise)."""
    principal = await check_access(request.app.state, request.headers.get("authorization"), roles,
                                    headers=request.headers, method=request.method, scheme=request.url.scheme)
    request.state.principal = principal
    return principal


async def check_access(state: State, authorization: str | None, roles: tuple[Role, ...], *,
                       headers: Mapping[str, str] | None = None, method: str = "GET",
                       scheme: str = "http") -> Principal:
    """`authorise` for a caller that has the app's state and the request's headers but no Request.

    The key in `Authorization` decides when there is one; otherwise a console session cookie in `headers`.
    """
    principal: Principal | None = None
    sessions: Sessions | None = getattr(state, "sessions", None)
    if authorization is None and headers is not None and sessions is not None:
        principal = await sessions.principal(headers, method, own_origin(scheme, headers))
    if principal is None:
        authenticator: Authenticator = state.authenticator
        principal = await authenticator.authenticate(authorization)
    require_role(principal, roles)
    wait = state.rate_limiter.wait_time(principal.key_id)
    if wait > 0:
        raise RateLimited(wait)
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

    app.add_middleware(SecurityHeaders)
    install_cors(app, settings)


def install_cors(app: FastAPI, settings: ServiceSettings) -> None:
    """Let the configured browser origins call this service; only the console's own send its session cookie."""
    app.add_middleware(CorsByOrigin, console=settings.console_origins, others=settings.cors_origins)


class CorsByOrigin:
    """CORS with credentials for the console's origins, without for the others configured."""

    def __init__(self, app: ASGIApp, console: list[str], others: list[str]) -> None:
        common: dict[str, Any] = {"allow_headers": ["Authorization", "Content-Type", "traceparent"], "max_age": 600}
        self.app = app
        self.console = frozenset(console)
        self.with_credentials = CORSMiddleware(app, allow_origins=console, allow_credentials=True,
                                               allow_methods=["GET", "POST", "DELETE"], **common)
        self.without = CORSMiddleware(app, allow_origins=others, allow_methods=["GET", "POST", "DELETE"], **common)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"origin"), None)
        if scope["type"] != "http" or origin is None:
            await self.app(scope, receive, send)
        elif origin in self.console:
            await self.with_credentials(scope, receive, send)
        else:
            await self.without(scope, receive, send)


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
_API_HEADERS = (*SECURITY_HEADERS, *API_ONLY_HEADERS)
_OTHER_HEADERS = tuple(SECURITY_HEADERS)


class SecurityHeaders:
    """Headers a browser dashboard can rely on; API answers are never cached or framed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = _API_HEADERS if scope["path"].startswith("/v1/") else _OTHER_HEADERS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *added]
            await send(message)

        await self.app(scope, receive, with_headers)
