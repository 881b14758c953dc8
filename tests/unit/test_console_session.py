"""The console's sign-in: a key exchanged once for a cookie that aggregate and ingest accept in its place."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from services.aggregate.app import create_app as create_aggregate
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.settings import AggregateSettings
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from shared.auth import InMemoryKeyStore
from shared.kafka import InMemoryPublisher
from shared.session import COOKIE, InMemorySessionStore
from tests.factories import envelope
from tests.keys import add_key

CONSOLE = "http://127.0.0.1:8002"


@pytest.fixture
def keys() -> InMemoryKeyStore:
    return InMemoryKeyStore()


@pytest.fixture
async def aggregate(keys: InMemoryKeyStore) -> AsyncIterator[httpx.AsyncClient]:
    app = create_aggregate(AggregateSettings(), repository=InMemoryRepository(), keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE) as client:
        yield client


async def sign_in(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/console/session", json={"key": key}, headers={"Origin": CONSOLE})


async def test_signing_in_sets_an_http_only_strict_cookie_and_never_echoes_the_key(
        aggregate: httpx.AsyncClient, keys: InMemoryKeyStore) -> None:
    key = add_key(keys, "analyst", name="Research team")
    response = await sign_in(aggregate, key)
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Max-Age=3600" in cookie and "Secure" not in cookie  # plain HTTP here; Secure over TLS
    assert key not in response.text and key.split("_")[-1] not in cookie
    assert response.json()["role"] == "analyst" and response.json()["name"] == "Research team"
    who = await aggregate.get("/console/session")
    assert who.status_code == 200 and who.json()["role"] == "analyst"
    assert (await aggregate.get("/v1/views/seizures")).status_code == 200


async def test_a_wrong_key_opens_no_session(aggregate: httpx.AsyncClient) -> None:
    response = await sign_in(aggregate, "dmp_nope_nope")
    assert response.status_code == 401 and "set-cookie" not in response.headers
    assert (await aggregate.get("/console/session")).status_code == 401


async def test_a_revoked_key_ends_its_sessions(keys: InMemoryKeyStore) -> None:
    app = create_aggregate(AggregateSettings(), repository=InMemoryRepository(), keys=keys)
    app.state.authenticator.ttl = 0  # no cached key lookups: the revocation shows at once
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=CONSOLE) as aggregate:
        key = add_key(keys, "analyst")
        assert (await sign_in(aggregate, key)).status_code == 200
        keys.records[key.split("_")[1]]["revoked_at"] = "now"
        response = await aggregate.get("/v1/views/seizures")
    assert response.status_code == 401 and response.json()["detail"][0]["type"] == "revoked_key"


async def test_signing_out_ends_the_session(aggregate: httpx.AsyncClient, keys: InMemoryKeyStore) -> None:
    assert (await sign_in(aggregate, add_key(keys, "analyst"))).status_code == 200
    assert (await aggregate.delete("/console/session", headers={"Origin": CONSOLE})).status_code == 204
    assert (await aggregate.get("/v1/views/seizures")).status_code == 401


async def test_a_write_with_the_cookie_from_another_origin_is_refused(keys: InMemoryKeyStore) -> None:
    sessions = InMemorySessionStore()
    aggregate_app = create_aggregate(AggregateSettings(), repository=InMemoryRepository(), keys=keys)
    aggregate_app.state.sessions.store = sessions
    ingest_app = create_ingest(IngestSettings(), publisher=InMemoryPublisher(), keys=keys, sessions=sessions)
    ingest_app.state.sessions.authenticator = aggregate_app.state.authenticator
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=aggregate_app), base_url=CONSOLE) as console:
        assert (await sign_in(console, add_key(keys, "officer"))).status_code == 200
        cookie = {"Cookie": f"{COOKIE}={console.cookies[COOKIE]}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=ingest_app),
                                 base_url="http://127.0.0.1:8000") as ingest:
        body = envelope()
        forged = await ingest.post("/v1/submissions", json=body, headers={**cookie, "Origin": "https://evil.example"})
        assert forged.status_code == 403 and forged.json()["detail"][0]["type"] == "cross_origin"
        missing = await ingest.post("/v1/submissions", json=body, headers=cookie)
        assert missing.status_code == 403
        sent = await ingest.post("/v1/submissions", json=body, headers={**cookie, "Origin": CONSOLE})
        assert sent.status_code == 202, sent.text


async def test_only_the_console_origin_gets_credentialed_cors(keys: InMemoryKeyStore) -> None:
    settings = IngestSettings(cors_origins=["https://dashboard.example"])
    app = create_ingest(settings, publisher=InMemoryPublisher(), keys=keys)
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as ingest:
        console = await ingest.options("/v1/submissions", headers={"Origin": CONSOLE, **preflight})
        assert console.headers["access-control-allow-origin"] == CONSOLE
        assert console.headers["access-control-allow-credentials"] == "true"
        other = await ingest.options("/v1/submissions", headers={"Origin": "https://dashboard.example", **preflight})
        assert other.headers["access-control-allow-origin"] == "https://dashboard.example"
        assert "access-control-allow-credentials" not in other.headers
        evil = await ingest.options("/v1/submissions", headers={"Origin": "https://evil.example", **preflight})
        assert "access-control-allow-origin" not in evil.headers


async def test_console_pages_carry_a_strict_content_security_policy(aggregate: httpx.AsyncClient) -> None:
    page = await aggregate.get("/console/")
    assert page.status_code == 200 and "<form id=\"signin\"" in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy and "unsafe" not in policy
    assert "connect-src 'self' http://127.0.0.1:8000 http://127.0.0.1:8001;" in policy


async def test_over_https_the_cookie_is_secure(keys: InMemoryKeyStore) -> None:
    app = create_aggregate(AggregateSettings(), repository=InMemoryRepository(), keys=keys)
    origin = "https://dmp.example.org"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=origin) as client:
        response = await client.post("/console/session", json={"key": add_key(keys, "analyst")},
                                     headers={"Origin": origin})
    assert response.status_code == 200 and "Secure" in response.headers["set-cookie"]


async def test_an_over_long_key_is_refused_without_being_echoed(aggregate: httpx.AsyncClient) -> None:
    key = "dmp_" + "k" * 600
    response = await sign_in(aggregate, key)
    assert response.status_code == 401 and "k" * 50 not in response.text
