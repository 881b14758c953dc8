"""ingest's HTTP edge with an in-memory broker: what is published, and clear answers to bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest

from services.ingest.app import create_app
from services.ingest.routes import BatchResult, SubmissionAccepted
from services.ingest.settings import IngestSettings
from shared.auth import InMemoryKeyStore
from shared.envelope import SubmissionReceived
from shared.kafka import InMemoryPublisher
from tests.factories import envelope
from tests.keys import add_key, bearer


@pytest.fixture
def publisher() -> InMemoryPublisher:
    return InMemoryPublisher()


@pytest.fixture
async def client(publisher: InMemoryPublisher) -> AsyncIterator[httpx.AsyncClient]:
    settings = IngestSettings(max_body_bytes=4096, status_base_url="http://status.test")
    keys = InMemoryKeyStore()
    app = create_app(settings, publisher=publisher, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest",
                                 headers=bearer(add_key(keys, "officer"))) as c:
        yield c


async def test_accepted_submission_is_published_keyed_by_id_with_who_when_and_trace(
        client: httpx.AsyncClient, publisher: InMemoryPublisher) -> None:
    body = envelope()
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    headers = {"traceparent": f"00-{trace}-00f067aa0ba902b7-01"}
    response = await client.post("/v1/submissions", json=body, headers=headers)

    assert response.status_code == 202
    assert response.json() == {"id": body["id"], "status": "received", "trace_id": trace,
                               "status_url": f"http://status.test/v1/submissions/{body['id']}"}
    [record] = publisher.records
    assert record.topic == "dmp.submissions.received.v1"
    assert record.key == body["id"]
    event = orjson.loads(record.value)
    assert event["data"] == body["data"]
    assert event["submitted_by"] and event["received_at"] and event["trace_id"] == trace
    record_headers = dict(record.headers)
    assert record_headers["ce_type"] == b"org.dmp.submission.received.v1"
    assert record_headers["ce_subject"] == body["id"].encode()
    assert record_headers["traceparent"].startswith(f"00-{trace}-".encode())


async def test_broker_down_is_503_with_retry_after_and_never_202(
        client: httpx.AsyncClient, publisher: InMemoryPublisher) -> None:
    publisher.fail = True
    response = await client.post("/v1/submissions", json=envelope())
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["detail"][0]["type"] == "unavailable"


@pytest.mark.parametrize(("content", "headers", "status", "code"), [
    (b"{not json", {"content-type": "application/json"}, 400, "invalid_json"),
    (b"", {"content-type": "application/json"}, 400, "empty_body"),
    (b"id=1", {"content-type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"),
    (b"{}", {"content-type": "text/plain"}, 415, "unsupported_media_type"),
    (b"[1, 2]", {"content-type": "application/json"}, 422, "not_an_object"),
    (b'{"id": "1"}' + b" " * 5000, {"content-type": "application/json"}, 413, "body_too_large"),
])
async def test_requests_that_are_not_a_submission_get_a_named_error(
        client: httpx.AsyncClient, publisher: InMemoryPublisher, content: bytes, headers: dict[str, str],
        status: int, code: str) -> None:
    response = await client.post("/v1/submissions", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["detail"][0]["type"] == code
    assert publisher.records == []


async def test_envelope_problems_are_all_named(client: httpx.AsyncClient, publisher: InMemoryPublisher) -> None:
    response = await client.post("/v1/submissions", json={"id": "not-a-uuid", "type": "sizure", "data": [],
                                                          "extra": 1})
    assert response.status_code == 422
    found = {tuple(e["loc"]): e["type"] for e in response.json()["detail"]}
    assert found == {("body", "id"): "uuid_parsing", ("body", "type"): "unknown_type",
                     ("body", "data"): "dict_type", ("body", "extra"): "extra_forbidden"}
    assert publisher.records == []


async def test_missing_id_is_named(client: httpx.AsyncClient) -> None:
    body = envelope()
    del body["id"]
    response = await client.post("/v1/submissions", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == [{"loc": ["body", "id"], "msg": "is required", "type": "missing"}]


async def test_rules_beyond_the_published_shape_are_validates_business(
        client: httpx.AsyncClient, publisher: InMemoryPublisher) -> None:
    response = await client.post("/v1/submissions", json=envelope(country="nowhere", drug="moonshine"))
    assert response.status_code == 202
    assert len(publisher.records) == 1


async def test_data_of_the_wrong_shape_is_refused_naming_each_field(
        client: httpx.AsyncClient, publisher: InMemoryPublisher) -> None:
    body = envelope(quantity=-1, seized_on="2021-02-30", unit="bucket")
    del body["data"]["place"]
    response = await client.post("/v1/submissions", json=body)
    assert response.status_code == 422
    named = {tuple(e["loc"]): e["type"] for e in response.json()["detail"]}
    assert named == {("body", "data", "quantity"): "exclusive_minimum", ("body", "data", "seized_on"): "format",
                     ("body", "data", "unit"): "enum", ("body", "data", "place"): "missing"}
    assert publisher.records == []


async def test_health_and_openapi_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "live"}
    assert (await client.get("/health/ready")).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    assert "/v1/submissions" in schema["paths"]
    assert "dmp_http_requests_total" in (await client.get("/metrics")).text


async def test_batch_gives_one_verdict_per_item_in_order_and_bad_items_sink_nothing(
        client: httpx.AsyncClient, publisher: InMemoryPublisher) -> None:
    good1, good2 = envelope(), envelope(country="IRN")
    bad = {"id": "x", "type": "seizure", "data": {}}
    response = await client.post("/v1/submissions/batch", json=[good1, bad, good2, "nonsense"])

    assert response.status_code == 207
    body = response.json()
    assert [(i["index"], i["status"]) for i in body["items"]] == [
        (0, "received"), (1, "invalid"), (2, "received"), (3, "invalid")]
    assert body["items"][1]["errors"][0]["loc"] == ["body", "id"]
    assert (body["received"], body["invalid"], body["unavailable"]) == (2, 2, 0)
    assert [r.key for r in publisher.records] == [good1["id"], good2["id"]]


async def test_ndjson_batch_reports_an_unreadable_line_as_that_item_only(
        client: httpx.AsyncClient, publisher: InMemoryPublisher) -> None:
    lines = [orjson.dumps(envelope()), b"{broken", b"", orjson.dumps(envelope())]
    response = await client.post("/v1/submissions/batch", content=b"\n".join(lines),
                                 headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 207
    assert [i["status"] for i in response.json()["items"]] == ["received", "invalid", "received"]
    assert response.json()["items"][1]["errors"][0]["loc"] == ["body", "line 2"]
    assert len(publisher.records) == 2


async def test_batch_with_the_broker_down_says_which_items_to_resend(
        client: httpx.AsyncClient, publisher: InMemoryPublisher) -> None:
    publisher.fail = True
    response = await client.post("/v1/submissions/batch", json=[envelope(), {"id": 1}])
    assert response.status_code == 207
    assert response.headers["retry-after"] == "5"
    assert [i["status"] for i in response.json()["items"]] == ["unavailable", "invalid"]


async def test_batch_over_the_item_limit_is_refused_whole(publisher: InMemoryPublisher) -> None:
    keys = InMemoryKeyStore()
    app = create_app(IngestSettings(max_batch_items=3), publisher=publisher, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest",
                                 headers=bearer(add_key(keys, "officer"))) as c:
        response = await c.post("/v1/submissions/batch", json=[envelope() for _ in range(4)])
    assert response.status_code == 413
    assert response.json()["detail"][0]["type"] == "batch_too_large"
    assert publisher.records == []


async def test_unsupported_schema_version_is_named(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/submissions", json={**envelope(), "schema_version": 7})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "schema_version"]


async def test_the_received_event_is_exactly_what_its_model_would_encode(
        client: httpx.AsyncClient, publisher: InMemoryPublisher) -> None:
    body = envelope(place="Ünye — Çarşı", quantity=12.5)
    assert (await client.post("/v1/submissions", json=body)).status_code == 202
    value = publisher.records[0].value
    assert SubmissionReceived.model_validate_json(value).model_dump_json().encode() == value
    assert SubmissionReceived.model_validate_json(value).data == body["data"]


async def test_the_openapi_document_declares_the_bearer_scheme_the_submission_routes_require(
        client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    for path in ("/v1/submissions", "/v1/submissions/batch"):
        assert schema["paths"][path]["post"]["security"] == [{"HTTPBearer": []}]


async def test_answers_are_exactly_what_their_models_would_encode(client: httpx.AsyncClient) -> None:
    single = await client.post("/v1/submissions", json=envelope())
    assert SubmissionAccepted.model_validate_json(single.content).model_dump_json().encode() == single.content
    batch = await client.post("/v1/submissions/batch", json=[envelope(), {"id": "x", "type": "seizure", "data": {}}])
    assert BatchResult.model_validate_json(batch.content).model_dump_json().encode() == batch.content
