"""Console sessions: an API key exchanged once for a session cookie that every service accepts in its place.

The browser never keeps the key: the console posts it once to `POST /console/session` (aggregate), which
checks it and answers with an `HttpOnly`, `SameSite=Strict` cookie (`Secure` over TLS) naming a random
token. The store keeps only the token's SHA-256, the key id and an expiry. Every request made with the
cookie looks the session up, then the key itself, so a revoked key ends its sessions within the key
cache's few seconds. A state-changing request made with the cookie must also carry an `Origin` the
console is served from: with `SameSite=Strict`, that closes cross-site request forgery.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pymongo import AsyncMongoClient

from shared.auth import Authenticator, AuthError, Principal
from shared.envelope import utcnow
from shared.settings import ServiceSettings
from shared.store import Document

__all__ = ["COOKIE", "SAFE_METHODS", "InMemorySessionStore", "MongoSessionStore", "SessionStore", "Sessions",
           "console_sessions", "cookie_token", "own_origin"]

COOKIE = "dmp_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _session_id(token: str) -> str:
    """What the store keeps for a token: its digest, so a copy of the store opens no session."""
    return hashlib.sha256(token.encode()).hexdigest()


class SessionStore(Protocol):
    async def get(self, session_id: str) -> Document | None: ...

    async def insert(self, record: Document) -> None: ...

    async def delete(self, session_id: str) -> None: ...

    async def delete_expired(self, now: datetime) -> None: ...


@dataclass
class InMemorySessionStore:
    records: dict[str, Document] = field(default_factory=dict)

    async def get(self, session_id: str) -> Document | None:
        return self.records.get(session_id)

    async def insert(self, record: Document) -> None:
        self.records[record["_id"]] = dict(record)

    async def delete(self, session_id: str) -> None:
        self.records.pop(session_id, None)

    async def delete_expired(self, now: datetime) -> None:
        for session_id in [k for k, r in self.records.items() if r["expires_at"] <= now]:
            del self.records[session_id]


class MongoSessionStore:
    """Collection `console_sessions`, read by `_id`; expired sessions are swept when a new one opens
    (FerretDB has no TTL indexes)."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self.collection = client[database]["console_sessions"]

    async def get(self, session_id: str) -> Document | None:
        record: Document | None = await self.collection.find_one({"_id": session_id})
        return record

    async def insert(self, record: Document) -> None:
        await self.collection.insert_one(record)

    async def delete(self, session_id: str) -> None:
        await self.collection.delete_one({"_id": session_id})

    async def delete_expired(self, now: datetime) -> None:
        await self.collection.delete_many({"expires_at": {"$lte": now}})


def cookie_token(cookie_header: str | None) -> str | None:
    """The session token in a `Cookie` header, if there is one."""
    if not cookie_header:
        return None
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            return value
    return None


def own_origin(scheme: str, headers: Mapping[str, str]) -> str | None:
    """The origin a request was addressed to (`scheme://host[:port]`), as a same-origin page's `Origin` reads."""
    host = headers.get("host")
    return f"{scheme}://{host}" if host else None


@dataclass(frozen=True)
class Opened:
    token: str
    principal: Principal
    expires_at: datetime


class Sessions:
    """Opens, checks and closes console sessions; sessions looked up are cached for `cache_s` seconds."""

    def __init__(self, store: SessionStore, authenticator: Authenticator, ttl_s: float,
                 origins: Iterable[str], cache_s: float = 3.0) -> None:
        self.store, self.authenticator, self.ttl_s, self.cache_s = store, authenticator, ttl_s, cache_s
        self.origins = frozenset(o.rstrip("/") for o in origins)
        self._cache: dict[str, tuple[float, Document | None]] = {}

    async def open(self, key: str) -> Opened:
        """Check `key` as a bearer key would be checked and open a session for it."""
        principal = await self.authenticator.authenticate(f"Bearer {key.strip()}")
        now = utcnow()
        await self.store.delete_expired(now)
        token = secrets.token_urlsafe(32)
        expires_at = now + timedelta(seconds=self.ttl_s)
        await self.store.insert({"_id": _session_id(token), "key_id": principal.key_id, "created_at": now,
                                 "expires_at": expires_at})
        return Opened(token, principal, expires_at)

    async def close(self, token: str) -> None:
        session_id = _session_id(token)
        self._cache.pop(session_id, None)
        await self.store.delete(session_id)

    async def expires_at(self, token: str) -> datetime | None:
        record = await self._record(_session_id(token))
        return _aware(record["expires_at"]) if record is not None else None

    async def _record(self, session_id: str) -> Document | None:
        now = time.monotonic()
        cached = self._cache.get(session_id)
        if cached is not None and now - cached[0] < self.cache_s:
            record = cached[1]
        else:
            record = await self.store.get(session_id)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[session_id] = (now, record)
        if record is None or _aware(record["expires_at"]) <= utcnow():
            return None
        return record

    def check_origin(self, method: str, origin: str | None, own: str | None) -> None:
        """403 for a state-changing request whose `Origin` is neither the console's nor this service's own."""
        if method in SAFE_METHODS:
            return
        if origin is None or (origin.rstrip("/") not in self.origins and origin != own):
            raise AuthError(403, f"a request made with the console's session must come from the console; "
                                 f"Origin {origin or 'is missing'} is not allowed", "cross_origin")

    async def principal(self, headers: Mapping[str, str], method: str, own: str | None) -> Principal | None:
        """The principal of the session cookie in `headers`, None when there is no cookie; 401/403 when
        the session or its key is no longer good, or a write comes from elsewhere."""
        token = cookie_token(headers.get("cookie"))
        if token is None:
            return None
        self.check_origin(method, headers.get("origin"), own)
        record = await self._record(_session_id(token))
        if record is None:
            raise AuthError(401, "the console session has ended; sign in again", "session_ended")
        return await self.authenticator.principal_for(record["key_id"])


def console_sessions(settings: ServiceSettings, store: SessionStore, authenticator: Authenticator) -> Sessions:
    """The sessions a service accepts, as its settings configure them."""
    return Sessions(store, authenticator, settings.session_ttl_s, settings.console_origins)


def _aware(moment: datetime) -> datetime:
    """PyMongo hands datetimes back naive (in UTC) unless the client asks otherwise."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
