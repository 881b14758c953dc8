"""The console's routes: the session (a key exchanged once for a cookie), its settings, and its files.

Everything a page shows comes from the public API (`/v1/...` here, ingest's writes, each service's
`/health` and `/metrics`); these routes only sign in and out and serve files, under a Content-Security-Policy
that allows no inline script or style, no eval, and no address outside the services.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Body, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.aggregate.console.outlines import countries_json
from services.aggregate.console.runbook import runbook_json
from services.aggregate.settings import AggregateSettings
from shared.auth import AuthError, Principal
from shared.session import COOKIE, Sessions, cookie_token, own_origin

STATIC = Path(__file__).parent / "static"
SCHEMAS = Path(__file__).resolve().parents[3] / "schemas" / "submissions"
MAX_KEY_CHARS = 500
router = APIRouter(prefix="/console", tags=["console"], include_in_schema=False)


class SignIn(BaseModel):
    key: str = Field(description="An API key made with `dmp admin keys create`.")


class Who(BaseModel):
    """The signed-in key, as the console needs it to offer what the key may do."""

    key_id: str
    role: str
    countries: list[str] | None
    name: str
    expires_at: str


def _sessions(request: Request) -> Sessions:
    sessions: Sessions | None = getattr(request.app.state, "sessions", None)
    if sessions is None:
        raise AuthError(503, "sessions are not available yet", "starting")
    return sessions


def _who(principal: Principal, expires_at: str) -> Who:
    countries = sorted(principal.countries) if principal.countries is not None else None
    return Who(key_id=principal.key_id, role=principal.role, countries=countries, name=principal.name,
               expires_at=expires_at)


@router.post("/session", response_model=Who)
async def sign_in(request: Request, body: Annotated[SignIn, Body()]) -> Response:
    """Check a key once and answer with a session cookie; the key itself is kept nowhere."""
    sessions = _sessions(request)
    sessions.check_origin("POST", request.headers.get("origin"), own_origin(request.url.scheme, request.headers))
    if not 0 < len(body.key) <= MAX_KEY_CHARS:  # checked here: a validation error would echo the value back
        raise AuthError(401, "this is not an API key", "unknown_key")
    opened = await sessions.open(body.key)
    who = _who(opened.principal, opened.expires_at.isoformat())
    response = JSONResponse(who.model_dump(), headers={"Cache-Control": "no-store"})
    response.set_cookie(COOKIE, opened.token, max_age=int(sessions.ttl_s), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return response


@router.get("/session", response_model=Who)
async def whoami(request: Request) -> Response:
    """Who the session cookie signs in as (401 when there is no session, or it has ended)."""
    sessions = _sessions(request)
    principal = await sessions.principal(request.headers, "GET", None)
    token = cookie_token(request.headers.get("cookie"))
    expires_at = await sessions.expires_at(token) if token else None
    if principal is None or expires_at is None:
        raise AuthError(401, "not signed in", "no_session")
    return JSONResponse(_who(principal, expires_at.isoformat()).model_dump(), headers={"Cache-Control": "no-store"})


@router.delete("/session", status_code=204)
async def sign_out(request: Request) -> Response:
    """End the session: the cookie stops working on every service at once."""
    sessions = _sessions(request)
    sessions.check_origin("DELETE", request.headers.get("origin"), own_origin(request.url.scheme, request.headers))
    token = cookie_token(request.headers.get("cookie"))
    if token:
        await sessions.close(token)
    response = Response(status_code=204)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return response


def services_of(settings: AggregateSettings) -> dict[str, str]:
    """Where the console's pages find each service ('' = the console's own origin)."""
    return {"ingest": settings.console_ingest_url.rstrip("/"),
            "ingest_health": (settings.console_ingest_health_url or settings.console_ingest_url).rstrip("/"),
            "validate": settings.console_validate_url.rstrip("/"), "aggregate": ""}


def content_security_policy(settings: AggregateSettings) -> str:
    """Scripts, styles and images from the console only; requests to the console and the services only."""
    origins = sorted({f"{p.scheme}://{p.netloc}" for url in services_of(settings).values()
                      if (p := urlsplit(url)).scheme and p.netloc})
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
            f"connect-src 'self' {' '.join(origins)}; form-action 'self'; base-uri 'none'; "
            "frame-ancestors 'none'").replace("  ", " ")


class ConsoleFiles:
    """The console's static files with its Content-Security-Policy; pages are revalidated on every load."""

    def __init__(self, app: ASGIApp, policy: str) -> None:
        self.app, self.policy = app, policy.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"content-security-policy", self.policy),
                                      (b"cache-control", b"no-cache")]
            await send(message)

        await self.app(scope, receive, with_policy)


@router.get("/config.json")
async def config(request: Request) -> Response:
    """Where the pages find the services."""
    return JSONResponse({"services": request.app.state.console_services})


@router.get("/assets/countries.json")
async def countries() -> Response:
    """Country outlines for the map (Natural Earth, simplified)."""
    body = await asyncio.to_thread(countries_json)  # built once, off the event loop
    return Response(body, media_type="application/json", headers={"cache-control": "max-age=86400"})


@router.get("/assets/runbook.json")
async def runbook() -> Response:
    """The runbook's table of failing checks, for the operator page."""
    return Response(runbook_json(), media_type="application/json")


def install_console(app: FastAPI, settings: AggregateSettings) -> None:
    """Serve the console at `/console/`."""
    policy = content_security_policy(settings)
    app.state.console_services = services_of(settings)
    app.include_router(router)
    app.mount("/console/schemas", ConsoleFiles(StaticFiles(directory=SCHEMAS), policy), name="console-schemas")
    app.mount("/console", ConsoleFiles(StaticFiles(directory=STATIC, html=True), policy), name="console")
