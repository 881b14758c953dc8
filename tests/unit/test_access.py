"""The access policy on every endpoint: keys, roles, country scopes, rate limits, hostile input, headers."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from services.aggregate.app import create_app as create_aggregate
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.settings import AggregateSettings
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from shared.access import RateLimiter
from shared.audit import InMemoryAuditLog
from shared.auth import InMemoryKeyStore
from shared.kafka import InMemoryPublisher
from tests.factories import envelope
from tests.keys import add_key, bearer


@pytest.fixture
def keys() -> InMemoryKeyStore:
    return InMemoryKeyStore()


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher()


@pytest.fixture
async def ingest(keys: InMemoryKeyStore, publisher: InMemoryPublisher) -> AsyncIterator[httpx.AsyncClient]:
    app = create_ingest(IngestSettings(), publisher=publisher, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        yield client


@pytest.fixture
def repository() -> InMemoryRepository:
    repo = InMemoryRepository()
    repo.submissions["mine"] = {"_id": "mine", "type": "seizure", "status": "validated", "version": 1, "errors": [],
                                "received_at": "t", "updated_at": "t", "submitted_by": "", "history": [],
                                "valid": None}
    return repo


@pytest.fixture
def audit() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
async def aggregate(keys: InMemoryKeyStore, repository: InMemoryRepository,
                    audit: InMemoryAuditLog) -> AsyncIterator[httpx.AsyncClient]:
    app = create_aggregate(AggregateSettings(), repository=repository, keys=keys, audit=audit)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate") as client:
        yield client


def aggregate_reads() -> list[str]:
    """Every read endpoint of aggregate's API, with valid parameters."""
    app = create_aggregate(AggregateSettings(), repository=InMemoryRepository())
    paths = sorted(p for p, ops in app.openapi()["paths"].items() if p.startswith("/v1/") and "get" in ops)
    concrete = {"/v1/submissions/{submission_id}": "/v1/submissions/mine",
                "/v1/reference/{name}": "/v1/reference/units",
                "/v1/views/fact-sheet": "/v1/views/fact-sheet?country=AFG&year=2024",
                "/v1/exports/arq": "/v1/exports/arq?country=AFG&year=2024"}
    return [concrete.get(p, p) for p in paths]


def test_every_aggregate_endpoint_is_in_the_matrix() -> None:
    assert aggregate_reads() == ["/v1/audit", "/v1/exports/arq?country=AFG&year=2024", "/v1/reference",
                                 "/v1/reference/units", "/v1/submissions",
                                 "/v1/submissions/mine",
                                 "/v1/views/fact-sheet?country=AFG&year=2024",
                                 "/v1/views/financial", "/v1/views/map", "/v1/views/prices", "/v1/views/routes",
                                 "/v1/views/seizures", "/v1/views/trainings"]


ALLOWED = {"/v1/audit": {"admin"}, "/v1/submissions/mine": {"analyst", "operator", "admin"},
           "/v1/submissions": {"officer", "analyst", "operator", "admin"},
           "/v1/reference": {"officer", "analyst", "operator", "admin"},
           "/v1/reference/units": {"officer", "analyst", "operator", "admin"}}
VIEW_ROLES = {"analyst"}


@pytest.mark.parametrize("path", aggregate_reads())
@pytest.mark.parametrize("role", ["officer", "analyst", "operator", "admin"])
async def test_aggregate_answers_each_role_as_the_policy_says(aggregate: httpx.AsyncClient, keys: InMemoryKeyStore,
                                                              path: str, role: Any) -> None:
    response = await aggregate.get(path, headers=bearer(add_key(keys, role)))
    allowed = ALLOWED.get(path, VIEW_ROLES)
    if role in allowed:
        assert response.status_code == 200, response.text
    elif role == "officer" and path == "/v1/submissions/mine":
        assert response.status_code == 404  # another key's submission looks unknown
    else:
        assert response.status_code == 403, response.text
        assert response.json()["detail"][0]["type"] == "forbidden_role"


@pytest.mark.parametrize("path", aggregate_reads())
async def test_aggregate_refuses_missing_malformed_unknown_and_revoked_keys(
        aggregate: httpx.AsyncClient, keys: InMemoryKeyStore, path: str) -> None:
    revoked = add_key(keys, "admin")
    await keys.revoke(revoked.split("_")[1], datetime.now(UTC))
    wrong_secret = add_key(keys, "analyst")[:-3] + "xyz"
    for headers, code in [({}, "missing_key"), ({"Authorization": "Basic abc"}, "malformed_key"),
                          (bearer("dmp_0000_nope"), "unknown_key"), (bearer(wrong_secret), "unknown_key"),
                          (bearer(revoked), "revoked_key")]:
        response = await aggregate.get(path, headers=headers)
        assert response.status_code == 401, (path, headers)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["detail"][0]["type"] == code


async def test_officer_reads_only_its_own_submissions(aggregate: httpx.AsyncClient, keys: InMemoryKeyStore,
                                                      repository: InMemoryRepository) -> None:
    key = add_key(keys, "officer")
    repository.submissions["mine"]["submitted_by"] = key.split("_")[1]
    assert (await aggregate.get("/v1/submissions/mine", headers=bearer(key))).status_code == 200
    other = add_key(keys, "officer")
    assert (await aggregate.get("/v1/submissions/mine", headers=bearer(other))).status_code == 404


@pytest.mark.parametrize("path", ["/v1/submissions", "/v1/submissions/batch"])
@pytest.mark.parametrize(("role", "status"), [("officer", None), ("analyst", 403), ("operator", 403),
                                              ("admin", 403)])
async def test_only_officers_submit(ingest: httpx.AsyncClient, keys: InMemoryKeyStore, path: str, role: Any,
                                    status: int | None) -> None:
    body: Any = envelope() if path == "/v1/submissions" else [envelope()]
    response = await ingest.post(path, json=body, headers=bearer(add_key(keys, role)))
    assert response.status_code == (status or (202 if path == "/v1/submissions" else 207)), response.text
    assert (await ingest.post(path, json=body)).status_code == 401


async def test_officer_submits_only_for_its_countries(ingest: httpx.AsyncClient, keys: InMemoryKeyStore,
                                                      publisher: InMemoryPublisher) -> None:
    key = add_key(keys, "officer", countries=["AFG", "PAK"])
    assert (await ingest.post("/v1/submissions", json=envelope(country="PAK"), headers=bearer(key))).status_code == 202
    refused = await ingest.post("/v1/submissions", json=envelope(country="IRN"), headers=bearer(key))
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["loc"] == ["body", "data", "country"]
    batch = await ingest.post("/v1/submissions/batch", json=[envelope(country="AFG"), envelope(country="IRN")],
                              headers=bearer(key))
    assert [i["status"] for i in batch.json()["items"]] == ["received", "forbidden"]
    assert len(publisher.records) == 2
    assert all(orjson.loads(r.value)["submitted_by"] == key.split("_")[1] for r in publisher.records)


async def test_rate_limit_answers_429_with_retry_after(keys: InMemoryKeyStore, publisher: InMemoryPublisher) -> None:
    app = create_ingest(IngestSettings(rate_limit_per_s=0.5, rate_limit_burst=2), publisher=publisher, keys=keys)
    key, other = add_key(keys, "officer"), add_key(keys, "officer")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        codes = [(await client.post("/v1/submissions", json=envelope(), headers=bearer(key))).status_code
                 for _ in range(3)]
        limited = await client.post("/v1/submissions", json=envelope(), headers=bearer(key))
        assert (await client.post("/v1/submissions", json=envelope(), headers=bearer(other))).status_code == 202
    assert codes == [202, 202, 429]
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["detail"][0]["type"] == "rate_limited"


def test_token_bucket_refills_at_the_rate() -> None:
    limiter = RateLimiter(rate=2, burst=1)
    assert limiter.wait_time("k", now=0) == 0
    assert limiter.wait_time("k", now=0.1) == pytest.approx(0.4)
    assert limiter.wait_time("k", now=0.5) == 0


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value]
    return value


DEEP = nested(20)
HOSTILE: list[tuple[str, Any, str]] = [
    ("NUL in a string", {"place": "Herat\u0000"}, "control_character"),
    ("escape character", {"place": "\u001b[31mred"}, "control_character"),
    ("integer past 64 bits", {"cases": 2**64}, "number_too_large"),
    ("integer just past int64", {"persons_arrested": 2**63}, "number_too_large"),
    ("huge float", {"quantity": 1e300}, "number_too_large"),
    ("very long string", {"place": "x" * 10_001}, "string_too_long"),
    ("dotted key", {"a.b": 1}, "invalid_key"),
    ("dollar key", {"$where": 1}, "invalid_key"),
    ("deep nesting", {"agency": DEEP}, "too_deep"),
]


@pytest.mark.parametrize(("name", "data", "code"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_values_are_refused_with_422_naming_the_path(
        ingest: httpx.AsyncClient, keys: InMemoryKeyStore, publisher: InMemoryPublisher,
        name: str, data: dict[str, Any], code: str) -> None:
    body = envelope(**data)
    response = await ingest.post("/v1/submissions", content=json.dumps(body).encode(),
                                 headers={**bearer(add_key(keys, "officer")), "content-type": "application/json"})
    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert problem["type"] == code
    assert problem["loc"][:2] == ["body", "data"]
    assert publisher.records == []


@pytest.mark.parametrize(("content", "status"), [
    (b"[" * 100_000, 400), (b'{"id": NaN}', 400), (b'{"a": Infinity}', 400), (b'{"a": 1e999}', 400),
    (b"\xff\xfe{}", 400),
    (b'{"id": "' + b"x" * 300_000 + b'"}', 413), (b"null", 422), (b'"just a string"', 422), (b"123", 422)])
async def test_malformed_bodies_never_cause_a_5xx(ingest: httpx.AsyncClient, keys: InMemoryKeyStore,
                                                  content: bytes, status: int) -> None:
    response = await ingest.post("/v1/submissions", content=content,
                                 headers={**bearer(add_key(keys, "officer")), "content-type": "application/json"})
    assert response.status_code == status, response.text


async def test_strings_are_stored_in_unicode_nfc(ingest: httpx.AsyncClient, keys: InMemoryKeyStore,
                                                 publisher: InMemoryPublisher) -> None:
    decomposed = "Qal\u0065\u0301a"  # e + combining acute
    response = await ingest.post("/v1/submissions", json=envelope(place=decomposed),
                                 headers=bearer(add_key(keys, "officer")))
    assert response.status_code == 202
    assert orjson.loads(publisher.records[0].value)["data"]["place"] == "Qal\u00e9a"


async def test_security_headers_and_no_stack_traces(aggregate: httpx.AsyncClient, keys: InMemoryKeyStore) -> None:
    response = await aggregate.get("/v1/views/seizures", headers=bearer(add_key(keys, "analyst")))
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    health = await aggregate.get("/health/live")
    assert health.status_code == 200 and "content-security-policy" not in health.headers


async def test_csv_exports_are_audited(aggregate: httpx.AsyncClient, keys: InMemoryKeyStore,
                                       audit: InMemoryAuditLog) -> None:
    key = add_key(keys, "analyst")
    await aggregate.get("/v1/views/seizures", params={"format": "csv", "country": "AFG"}, headers=bearer(key))
    await aggregate.get("/v1/views/seizures", headers=bearer(key))
    [entry] = audit.entries.values()
    assert (entry["actor"], entry["action"], entry["target"]) == (key.split("_")[1], "exported", "/v1/views/seizures")
    assert "country=AFG" in entry["details"]["query"]
    admin = add_key(keys, "admin")
    page = (await aggregate.get("/v1/audit", params={"action": "exported"}, headers=bearer(admin))).json()
    assert [i["actor"] for i in page["items"]] == [key.split("_")[1]]
