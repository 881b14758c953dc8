"""API keys for tests: made the way `dmp keys create` makes them."""

from __future__ import annotations

from collections.abc import Iterable

from shared.auth import InMemoryKeyStore, Role, make_key
from shared.settings import DEV_AUTH_PEPPER

PEPPER = DEV_AUTH_PEPPER.encode()


def add_key(store: InMemoryKeyStore, role: Role, countries: Iterable[str] | None = None, name: str = "test") -> str:
    new = make_key(PEPPER, role, countries, name)
    store.records[new.record["_id"]] = new.record
    return new.key


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
