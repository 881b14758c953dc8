"""API keys, roles and country scopes (CONTRACT.md, Credentials), shared by every service.

A key reads `dmp_<key id>_<secret>`. The store keeps only the key id, an HMAC of the secret
(keyed by a pepper from settings), the role, the countries and who it is for; the key itself is
printed once, when it is made. Services cache what they looked up for a few seconds, so a
revocation takes effect on every service within that time.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pymongo import AsyncMongoClient

from shared.envelope import utcnow
from shared.errors import DmpError
from shared.roles import Role
from shared.store import Document

PREFIX = "dmp"


class AuthError(DmpError):
    """Credentials are missing, unknown, revoked (401) or not enough for the request (403)."""

    def __init__(self, status: int, msg: str, code: str) -> None:
        super().__init__(msg)
        self.status, self.msg, self.code = status, msg, code


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's id, role and country scope (None = every country)."""

    key_id: str
    role: Role
    countries: frozenset[str] | None
    name: str

    def may_report_for(self, country: str) -> bool:
        return self.countries is None or country in self.countries


@dataclass(frozen=True)
class NewKey:
    key: str
    record: Document


def _digest(pepper: bytes, secret: str) -> str:
    return hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def make_key(pepper: bytes, role: Role, countries: Iterable[str] | None, name: str) -> NewKey:
    """A fresh key and the record to store for it (without the secret)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(24)
    record = {"_id": key_id, "hash": _digest(pepper, secret), "role": role,
              "countries": sorted(set(countries)) if countries else None, "name": name,
              "created_at": utcnow(), "revoked_at": None}
    return NewKey(f"{PREFIX}_{key_id}_{secret}", record)


def parse_key(key: str) -> tuple[str, str] | None:
    parts = key.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class KeyStore(Protocol):
    async def get(self, key_id: str) -> Document | None: ...

    async def insert(self, record: Document) -> None: ...

    async def revoke(self, key_id: str, at: datetime) -> bool: ...

    async def all(self) -> list[Document]: ...


@dataclass
class InMemoryKeyStore:
    records: dict[str, Document] = field(default_factory=dict)

    async def get(self, key_id: str) -> Document | None:
        return self.records.get(key_id)

    async def insert(self, record: Document) -> None:
        self.records[record["_id"]] = dict(record)

    async def revoke(self, key_id: str, at: datetime) -> bool:
        record = self.records.get(key_id)
        if record is None or record["revoked_at"] is not None:
            return False
        record["revoked_at"] = at
        return True

    async def all(self) -> list[Document]:
        return sorted(self.records.values(), key=lambda r: r["created_at"])


class MongoKeyStore:
    """Collection `api_keys`, looked up by `_id` only."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self.collection = client[database]["api_keys"]

    async def get(self, key_id: str) -> Document | None:
        record: Document | None = await self.collection.find_one({"_id": key_id})
        return record

    async def insert(self, record: Document) -> None:
        await self.collection.insert_one(record)

    async def revoke(self, key_id: str, at: datetime) -> bool:
        result = await self.collection.update_one({"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": at}})
        return result.modified_count == 1

    async def all(self) -> list[Document]:
        return [r async for r in self.collection.find({}, {"hash": 0}).sort("created_at", 1)]


class Authenticator:
    """Turns a bearer key into a Principal, caching lookups for `ttl` seconds."""

    def __init__(self, store: KeyStore, pepper: bytes, ttl: float = 3.0) -> None:
        self.store, self.pepper, self.ttl = store, pepper, ttl
        self._keyed = hmac.new(pepper, digestmod=hashlib.sha256)
        """`_digest`'s HMAC with the pepper's key blocks already hashed: each check copies it."""
        self._cache: dict[str, tuple[float, Document | None]] = {}
        self._lock = asyncio.Lock()

    def _digest(self, secret: str) -> str:
        keyed = self._keyed.copy()
        keyed.update(secret.encode())
        return keyed.hexdigest()

    async def _record(self, key_id: str) -> Document | None:
        cached = self._cache.get(key_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        record = await self.store.get(key_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_id] = (now, record)
        return record

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise AuthError(401, "an API key is required: send `Authorization: Bearer <key>`", "missing_key")
        scheme, _, key = authorization.partition(" ")
        parsed = parse_key(key.strip()) if scheme.lower() == "bearer" else None
        if parsed is None:
            raise AuthError(401, "the Authorization header must be `Bearer dmp_<id>_<secret>`", "malformed_key")
        key_id, secret = parsed
        record = await self._record(key_id)
        if record is None or not hmac.compare_digest(record["hash"], self._digest(secret)):
            raise AuthError(401, "this API key is not known", "unknown_key")
        return self._principal(key_id, record)

    async def principal_for(self, key_id: str) -> Principal:
        """The principal of a key already checked once (a console session's), if the key is still good."""
        record = await self._record(key_id)
        if record is None:
            raise AuthError(401, "this API key is not known", "unknown_key")
        return self._principal(key_id, record)

    @staticmethod
    def _principal(key_id: str, record: Document) -> Principal:
        if record.get("revoked_at") is not None:
            raise AuthError(401, "this API key has been revoked", "revoked_key")
        countries = record.get("countries")
        return Principal(key_id, record["role"], frozenset(countries) if countries else None, record.get("name", ""))


def require_role(principal: Principal, allowed: Iterable[Role]) -> Principal:
    allowed = tuple(allowed)
    if principal.role not in allowed:
        raise AuthError(403, f"the {principal.role} role may not do this; it needs {' or '.join(allowed)}",
                        "forbidden_role")
    return principal


def as_public(record: Document) -> dict[str, Any]:
    """A key record fit to show: never the hash."""
    return {k: v for k, v in record.items() if k != "hash"}
