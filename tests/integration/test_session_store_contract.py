"""MongoSessionStore (on the real store) and InMemorySessionStore honour one contract."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from shared.auth import Authenticator, AuthError, InMemoryKeyStore
from shared.session import COOKIE, InMemorySessionStore, MongoSessionStore, Sessions, SessionStore
from shared.store import connect
from tests.conftest import Infra
from tests.keys import PEPPER, add_key

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["mongo", "memory"])
async def store(request: pytest.FixtureRequest, infra: Infra) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        yield InMemorySessionStore()
        return
    client = connect(infra.mongodb_url, "tests")
    database = f"sessions_{uuid.uuid4().hex[:10]}"
    try:
        yield MongoSessionStore(client, database)
    finally:
        await client.drop_database(database)
        await client.close()


def record(session_id: str, expires_at: datetime) -> dict[str, object]:
    return {"_id": session_id, "key_id": "k1", "created_at": NOW, "expires_at": expires_at}


async def test_a_session_is_read_back_by_id_and_deleted(store: SessionStore) -> None:
    await store.insert(record("a", NOW + timedelta(hours=1)))
    found = await store.get("a")
    assert found is not None and found["key_id"] == "k1"
    assert await store.get("b") is None
    await store.delete("a")
    await store.delete("a")  # harmless twice
    assert await store.get("a") is None


async def test_only_expired_sessions_are_swept(store: SessionStore) -> None:
    await store.insert(record("old", NOW - timedelta(seconds=1)))
    await store.insert(record("new", NOW + timedelta(seconds=1)))
    await store.delete_expired(NOW)
    assert await store.get("old") is None and await store.get("new") is not None


async def test_a_session_opened_on_one_service_is_honoured_by_another(store: SessionStore) -> None:
    keys = InMemoryKeyStore()
    key = add_key(keys, "officer", ["AFG"])
    one = Sessions(store, Authenticator(keys, PEPPER), 60, ["http://console"])
    other = Sessions(store, Authenticator(keys, PEPPER), 60, ["http://console"])
    opened = await one.open(key)
    assert await store.get(opened.token) is None  # the store keeps the token's digest, never the token
    assert await store.get(hashlib.sha256(opened.token.encode()).hexdigest()) is not None
    headers = {"cookie": f"{COOKIE}={opened.token}", "origin": "http://console"}
    principal = await other.principal(headers, "POST", None)
    assert principal is not None and principal.role == "officer" and principal.countries == frozenset({"AFG"})
    await one.close(opened.token)
    other._cache.clear()  # the other service's few seconds of cache have passed
    with pytest.raises(AuthError, match="session has ended"):
        await other.principal(headers, "GET", None)
