"""API keys for tests: made the way `dmp admin keys create` makes them."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import Any

from shared.auth import InMemoryKeyStore, make_key
from shared.roles import Role
from shared.settings import DEV_AUTH_PEPPER

PEPPER = DEV_AUTH_PEPPER.encode()


def add_key(store: InMemoryKeyStore, role: Role, countries: Iterable[str] | None = None, name: str = "test") -> str:
    new = make_key(PEPPER, role, countries, name)
    store.records[new.record["_id"]] = new.record
    return new.key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def insert_key(mongodb_url: str, database: str, role: Role, countries: list[str] | None = None,
               name: str = "test") -> str:
    """A new key stored in a real store's key collection, as `dmp admin keys create` stores it."""
    from pymongo import MongoClient

    new = make_key(PEPPER, role, countries, name)
    client: MongoClient[dict[str, Any]] = MongoClient(mongodb_url)
    try:
        client[database]["api_keys"].insert_one(new.record)
    finally:
        client.close()
    return new.key


class KeyedStack:
    """Authorization headers of an officer (every country) and an analyst, made once per stack."""

    def key(self, role: Role, countries: list[str] | None = None, name: str = "test") -> str:
        raise NotImplementedError

    @cached_property
    def officer(self) -> dict[str, str]:
        return bearer(self.key("officer"))

    @cached_property
    def analyst(self) -> dict[str, str]:
        return bearer(self.key("analyst"))
