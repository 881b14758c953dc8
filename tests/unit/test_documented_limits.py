"""What the docs promise at the defaults: batch and body limits, CORS, and a key store that stops answering.

The expected numbers are the documented ones (docs/access.md), written here as the docs state them,
so a change of a default that the docs do not follow fails here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from services.aggregate.app import create_app as create_aggregate
from services.aggregate.settings import AggregateSettings
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.auth import InMemoryKeyStore
from shared.kafka import InMemoryPublisher
from shared.store import Document
from tests.factories import envelope
from tests.keys import add_key, bearer

DOCUMENTED_BATCH_ITEMS = 1_000
DOCUMENTED_BODY_BYTES = 256 * 1024
DOCUMENTED_BATCH_BYTES = 8 * 1024 * 1024


@pytest.fixture
async def officer() -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryPublisher]]:
    publisher, keys = InMemoryPublisher(), InMemoryKeyStore()
    app = create_app(IngestSettings(), publisher=publisher, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest",
                                 headers=bearer(add_key(keys, "officer"))) as client:
        yield client, publisher


async def test_a_batch_of_the_documented_item_limit_is_taken_and_one_more_is_refused(
        officer: tuple[httpx.AsyncClient, InMemoryPublisher]) -> None:
    client, publisher = officer
    full = await client.post("/v1/submissions/batch", json=[envelope() for _ in range(DOCUMENTED_BATCH_ITEMS)])
    assert full.status_code == 207, full.text
    assert len(publisher.records) == DOCUMENTED_BATCH_ITEMS
    over = await client.post("/v1/submissions/batch", json=[envelope() for _ in range(DOCUMENTED_BATCH_ITEMS + 1)])
    assert over.status_code == 413
    assert over.json()["detail"][0]["type"] == "batch_too_large"
    assert len(publisher.records) == DOCUMENTED_BATCH_ITEMS


def padded(size: int) -> bytes:
    """A submission whose JSON body is exactly `size` bytes, padded with spaces JSON ignores."""
    body = json.dumps(envelope()).encode()
    return body + b" " * (size - len(body))


async def test_a_body_of_the_documented_size_is_taken_and_one_byte_more_is_refused(
        officer: tuple[httpx.AsyncClient, InMemoryPublisher]) -> None:
    client, _ = officer
    headers = {"content-type": "application/json"}
    at_limit = await client.post("/v1/submissions", content=padded(DOCUMENTED_BODY_BYTES), headers=headers)
    assert at_limit.status_code == 202, at_limit.text
    over = await client.post("/v1/submissions", content=padded(DOCUMENTED_BODY_BYTES + 1), headers=headers)
    assert over.status_code == 413, over.text


async def test_a_batch_body_over_the_documented_size_is_refused(
        officer: tuple[httpx.AsyncClient, InMemoryPublisher]) -> None:
    client, publisher = officer
    body = json.dumps([envelope()]).encode()
    over = body + b" " * (DOCUMENTED_BATCH_BYTES + 1 - len(body))
    response = await client.post("/v1/submissions/batch", content=over, headers={"content-type": "application/json"})
    assert response.status_code == 413, response.text
    assert publisher.records == []


@pytest.mark.parametrize("service", ["ingest", "aggregate"])
async def test_cors_lets_only_the_configured_origin_in(service: str) -> None:
    allowed = "https://dashboard.example"
    keys = InMemoryKeyStore()
    if service == "ingest":
        app = create_app(IngestSettings(cors_origins=[allowed]), publisher=InMemoryPublisher(), keys=keys)
        method, path = "POST", "/v1/submissions"
    else:
        app = create_aggregate(AggregateSettings(cors_origins=[allowed]), keys=keys)
        method, path = "GET", "/v1/views/seizures"
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{service}") as client:
        for origin, expected in ((allowed, allowed), ("https://elsewhere.example", None)):
            preflight = await client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                                            "Access-Control-Request-Headers": "authorization"})
            assert preflight.headers.get("access-control-allow-origin") == expected, (origin, preflight.headers)


@dataclass
class FailingKeyStore(InMemoryKeyStore):
    """Answers until `down` is set, then fails as a store that cannot be reached does."""

    down: bool = False
    looked_up: list[str] = field(default_factory=list)

    async def get(self, key_id: str) -> Document | None:
        self.looked_up.append(key_id)
        if self.down:
            raise ServerSelectionTimeoutError("key store unreachable")
        return await super().get(key_id)


async def test_with_the_key_store_down_a_key_just_used_still_works_and_another_gets_503() -> None:
    keys, publisher = FailingKeyStore(), InMemoryPublisher()
    used, other = add_key(keys, "officer"), add_key(keys, "officer")
    app = create_app(IngestSettings(), publisher=publisher, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        assert (await client.post("/v1/submissions", json=envelope(), headers=bearer(used))).status_code == 202
        keys.down = True
        again = await client.post("/v1/submissions", json=envelope(), headers=bearer(used))
        assert again.status_code == 202, again.text
        refused = await client.post("/v1/submissions", json=envelope(), headers=bearer(other))
    assert refused.status_code == 503, refused.text
    assert "retry-after" in refused.headers
    assert len(publisher.records) == 2
