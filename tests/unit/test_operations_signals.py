"""What operators read: route labels as templates, requests in flight, store outages as 503, trace ids in logs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from fastapi import APIRouter, FastAPI
from prometheus_client import REGISTRY
from pymongo.errors import ServerSelectionTimeoutError

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.auth import InMemoryKeyStore
from shared.health import MetricsMiddleware, health_router, install_error_handler, route_label
from shared.jsonlog import JsonFormatter
from shared.kafka import InMemoryPublisher
from shared.tracing import bind_trace_id, trace_id_of, traced
from tests.factories import envelope
from tests.keys import add_key, bearer


def requests(service: str, route: str, status: str) -> float:
    return REGISTRY.get_sample_value("dmp_http_requests_total", {"service": service, "method": "GET", "route": route,
                                                                 "status": status}) or 0.0


@pytest.mark.parametrize(("path", "template", "label"), [
    ("/v1/views/seizures", "/views/{name}", "/v1/views/{name}"),
    ("/v1/views/seizures", "/v1/views/{name}", "/v1/views/{name}"),
    ("/admin/x/1", "/x/{y}", "/admin/x/{y}"),
    ("/health/live", "/health/live", "/health/live"),
    ("/files/a/b/c", "/files/{rest:path}", "/files/{rest:path}"),
])
def test_route_label_is_the_full_template_whatever_the_nesting(path: str, template: str, label: str) -> None:
    assert route_label(path, template) == label


async def test_requests_are_counted_under_their_full_template_even_in_nested_routers() -> None:
    app = FastAPI()
    outer, inner = APIRouter(prefix="/v1"), APIRouter(prefix="/things")

    @inner.get("/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    outer.include_router(inner)
    app.include_router(outer)
    app.include_router(health_router(dict, service="labels"))
    app.add_middleware(MetricsMiddleware, service="labels")
    before = requests("labels", "/v1/things/{thing_id}", "200")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        assert (await client.get("/v1/things/42")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404
    assert requests("labels", "/v1/things/{thing_id}", "200") == before + 1
    assert requests("labels", "unmatched", "404") >= 1
    assert REGISTRY.get_sample_value("dmp_http_requests_in_flight", {"service": "labels"}) == 0


async def test_readiness_sets_the_dependency_gauges() -> None:
    async def up() -> bool:
        return True

    async def down() -> bool:
        raise ConnectionError("gone")

    app = FastAPI()
    app.include_router(health_router(lambda: {"broker": up, "store": down}, service="gauges"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failing"] == ["store"]
    assert REGISTRY.get_sample_value("dmp_dependency_up", {"service": "gauges", "dependency": "broker"}) == 1
    assert REGISTRY.get_sample_value("dmp_dependency_up", {"service": "gauges", "dependency": "store"}) == 0


async def test_a_store_that_cannot_be_reached_is_503_with_retry_after_not_500() -> None:
    app = FastAPI()
    install_error_handler(app)

    @app.get("/v1/lookup")
    async def lookup() -> None:
        raise ServerSelectionTimeoutError("127.0.0.1:27017: timed out")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.get("/v1/lookup")
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert response.json()["detail"][0]["type"] == "unavailable"


def test_log_lines_carry_the_trace_id_of_the_submission_in_hand() -> None:
    formatter = JsonFormatter("test")
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "hello", None, None)
    assert "trace_id" not in orjson.loads(formatter.format(record))
    with traced("4bf92f3577b34da6a3ce929d0e0e4736"):
        assert orjson.loads(formatter.format(record))["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    record.trace_id = "given"
    with traced("other"):
        assert orjson.loads(formatter.format(record))["trace_id"] == "given"


def test_trace_id_is_read_from_a_kafka_records_headers() -> None:
    headers = (("ce_type", b"x"), ("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
    assert trace_id_of(headers) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_of(dict(headers)) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert trace_id_of(()) is None
    bind_trace_id(None)


@pytest.fixture
async def ingest() -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryPublisher]]:
    publisher, keys = InMemoryPublisher(), InMemoryKeyStore()
    app = create_app(IngestSettings(), publisher=publisher, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest",
                                 headers=bearer(add_key(keys, "officer"))) as client:
        yield client, publisher


async def test_ingest_logs_each_submission_with_its_trace_id(
        ingest: tuple[httpx.AsyncClient, InMemoryPublisher], caplog: pytest.LogCaptureFixture) -> None:
    client, _ = ingest
    trace = "0af7651916cd43dd8448eb211c80319c"
    caplog.set_level(logging.INFO, logger="services.ingest.app")
    body = envelope()
    response = await client.post("/v1/submissions", json=body,
                                 headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"})
    assert response.status_code == 202
    [line] = [r for r in caplog.records if r.getMessage() == "submission received"]
    assert line.trace_id == trace  # type: ignore[attr-defined]
    assert line.submission_id == body["id"]  # type: ignore[attr-defined]


async def test_ingest_logs_the_trace_id_when_the_broker_refuses(
        ingest: tuple[httpx.AsyncClient, InMemoryPublisher], caplog: pytest.LogCaptureFixture) -> None:
    client, publisher = ingest
    publisher.fail = True
    trace = "1af7651916cd43dd8448eb211c80319c"
    caplog.set_level(logging.WARNING, logger="services.ingest.app")
    formatter = JsonFormatter("ingest")
    response = await client.post("/v1/submissions", json=envelope(),
                                 headers={"traceparent": f"00-{trace}-b7ad6b7169203331-01"})
    assert response.status_code == 503
    [line] = [r for r in caplog.records if r.getMessage().startswith("publish failed")]
    bind_trace_id(None)  # in-process transport: the request ran in this task's context
    assert orjson.loads(formatter.format(line)).get("trace_id") == trace


@pytest.mark.parametrize("opted_in", [False, True])
async def test_fastapi_looks_for_opentelemetry_providers_only_when_asked_to(
        opted_in: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Off by default, requests skip FastAPI's per-request provider lookup; `DMP_OPENTELEMETRY` turns it on."""
    pytest.importorskip("fastapi.telemetry", reason="this FastAPI has no native OpenTelemetry")
    from opentelemetry import trace

    lookups: list[object] = []
    real = trace.get_tracer_provider

    def counted() -> trace.TracerProvider:
        lookups.append(None)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", counted)
    publisher, keys = InMemoryPublisher(), InMemoryKeyStore()
    app = create_app(IngestSettings(opentelemetry=opted_in), publisher=publisher, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest",
                                 headers=bearer(add_key(keys, "officer"))) as client:
        assert (await client.post("/v1/submissions", json=envelope())).status_code == 202
        assert (await client.get("/health/live")).status_code == 200
    assert bool(lookups) is opted_in
