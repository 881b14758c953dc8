"""ingest's fast paths answer exactly as the slow ones: the submission lane as FastAPI's routes, the quick
sanitising pass on plain JSON as the full one, the precomputed key digest as HMAC, event ids as uuid4, envelopes
read without the model as with it."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from services.ingest import edge
from services.ingest.app import create_app
from services.ingest.edge import BadSubmission, Envelope, is_plain, parse_envelope, read_envelope, sanitise
from services.ingest.lane import SubmissionLane
from services.ingest.settings import IngestSettings
from shared.auth import Authenticator, InMemoryKeyStore, _digest
from shared.envelope import EVENT_RECEIVED, SCHEMA_VERSIONS, cloudevent_headers, trace_id_from, utcnow, uuid4_text
from shared.kafka import InMemoryPublisher
from tests.factories import envelope, training_submission_data
from tests.keys import add_key, bearer

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
JSON = {"content-type": "application/json", "traceparent": f"00-{TRACE}-00f067aa0ba902b7-01"}


GOOD, OTHER = envelope(), envelope(place="Ünye — Çarşı", quantity=12.5)
BODIES: list[tuple[str, str, dict[str, str], bytes]] = [  # path, caller, headers, body
    ("/v1/submissions", "officer", JSON, orjson.dumps(GOOD)),
    ("/v1/submissions", "officer", JSON, json.dumps(OTHER).encode()),  # escaped non-ASCII: not plain
    ("/v1/submissions", "officer", JSON, orjson.dumps(envelope(place="Qal\u0065\u0301a"))),
    ("/v1/submissions", "officer", JSON, json.dumps(envelope(cases=2**64)).encode()),
    ("/v1/submissions", "officer", JSON, orjson.dumps({"id": "x", "type": "sizure", "data": [], "extra": 1})),
    ("/v1/submissions", "officer", JSON, orjson.dumps({"id": str(uuid.uuid4()), "type": "training",
                                                       "data": training_submission_data()})),
    ("/v1/submissions", "officer", JSON, b"{not json"),
    ("/v1/submissions", "officer", JSON, b'{"id": "1"}' + b" " * 5000),
    ("/v1/submissions", "officer", {"content-type": "text/plain"}, b"{}"),
    ("/v1/submissions", "analyst", JSON, orjson.dumps(GOOD)),
    ("/v1/submissions", "nobody", JSON, orjson.dumps(GOOD)),
    ("/v1/submissions/batch", "officer", JSON, orjson.dumps([GOOD, {"id": "x"}, OTHER, "nonsense"])),
    ("/v1/submissions/batch", "officer", {**JSON, "content-type": "application/x-ndjson"},
     orjson.dumps(GOOD) + b"\n{broken\n\n" + orjson.dumps(OTHER)),
    ("/v1/submissions/batch", "officer", JSON, b"{}"),
]


async def answers(lane: bool, fail: bool) -> list[Any]:
    """Each request's status, headers and body, and the events published for it (less their random parts)."""
    keys, publisher = InMemoryKeyStore(), InMemoryPublisher(fail=fail)
    app = create_app(IngestSettings(max_body_bytes=4096), publisher=publisher, keys=keys)
    if not lane:  # before the first request builds the middleware stack
        # Starlette types `cls` as a factory protocol; compared as the object it is
        app.user_middleware = [m for m in app.user_middleware if cast(object, m.cls) is not SubmissionLane]
    callers = {"officer": bearer(add_key(keys, "officer")), "analyst": bearer(add_key(keys, "analyst")), "nobody": {}}
    out: list[Any] = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest") as client:
        for path, caller, headers, body in BODIES:
            publisher.records.clear()
            response = await client.post(path, headers={**callers[caller], **headers}, content=body)
            events = [(r.topic, r.key, {**orjson.loads(r.value), "received_at": None, "submitted_by": None},
                       [(name, value) for name, value in r.headers if name not in ("ce_id", "ce_time", "traceparent")])
                      for r in publisher.records]
            out.append((path, response.status_code, sorted(response.headers.items()), response.content, events))
    return out


@pytest.mark.parametrize("fail", [False, True], ids=["broker up", "broker down"])
async def test_the_lane_answers_and_publishes_exactly_as_the_declared_routes(fail: bool) -> None:
    assert await answers(lane=True, fail=fail) == await answers(lane=False, fail=fail)


async def test_lane_requests_are_counted_under_their_route() -> None:
    def count() -> float:
        return REGISTRY.get_sample_value("dmp_http_requests_total", {
            "service": "ingest", "method": "POST", "route": "/v1/submissions/batch", "status": "207"}) or 0.0

    keys = InMemoryKeyStore()
    app = create_app(IngestSettings(), publisher=InMemoryPublisher(), keys=keys)
    before = count()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest",
                                 headers=bearer(add_key(keys, "officer"))) as client:
        response = await client.post("/v1/submissions/batch", json=[envelope()])
        assert (await client.get("/v1/submissions/batch")).status_code == 405
    assert response.status_code == 207
    assert response.headers["cache-control"] == "no-store"
    assert count() == before + 1


def test_plain_means_ascii_without_escapes_or_delete() -> None:
    assert is_plain(b'{"place": "Herat", "n": 1.5}')
    assert not is_plain('{"place": "Çarşı"}'.encode())
    assert not is_plain(b'{"place": "\\u0000"}')
    assert not is_plain(b'{"place": "a\\"b"}')
    assert not is_plain(b'{"place": "del\x7f"}')


def outcome(value: Any, plain: bool) -> Any:
    try:
        return "clean", sanitise(value, plain)
    except BadSubmission as exc:
        return "refused", exc.status, [e.model_dump() for e in exc.errors]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**65), max_value=2**65)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12)
    | st.sampled_from(["x" * 10_000, "x" * 10_001, "e\u0301", "\x7f", "tab\t", "\x85"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6) | st.sampled_from(["$where", "a.b", "", "k" * 10_001]), children,
                      max_size=4),
    max_leaves=30)


@settings(max_examples=300, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_the_quick_pass_on_plain_json_refuses_and_keeps_exactly_what_the_full_one_does(
        value: Any, ascii_only: bool) -> None:
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    parsed = orjson.loads(raw)  # as ingest parses bodies (integers past 64 bits become floats)
    assert outcome(parsed, is_plain(raw)) == outcome(parsed, False)


@pytest.mark.parametrize("depth", [15, 16, 17])
@pytest.mark.parametrize("innermost", ["deep", [], {}], ids=["string", "empty list", "empty object"])
def test_nesting_limits_are_the_same_on_both_passes(depth: int, innermost: Any) -> None:
    value: Any = innermost
    for _ in range(depth):
        value = [value]
    for body in (value, {"data": value}):
        assert outcome(body, True) == outcome(body, False)


@pytest.mark.parametrize("pepper", [b"", b"p", b"development-only-auth-pepper", b"k" * 64, b"k" * 65, b"k" * 200])
def test_the_precomputed_key_digest_is_the_hmac(pepper: bytes) -> None:
    authenticator = Authenticator(InMemoryKeyStore(), pepper)
    for secret in ("", "s", "Ab3_-" * 9, "ünï"):
        assert authenticator._digest(secret) == _digest(pepper, secret)
        assert authenticator._digest(secret) == hmac.new(pepper, secret.encode(), hashlib.sha256).hexdigest()


def test_event_ids_are_the_uuid4_the_uuid_module_makes_of_the_same_bytes() -> None:
    for random16 in (bytes(16), b"\xff" * 16, *(uuid.uuid4().bytes for _ in range(200))):
        assert uuid4_text(random16) == str(uuid.UUID(bytes=random16, version=4))
    headers = dict(cloudevent_headers(EVENT_RECEIVED, "subject", TRACE, utcnow()))
    assert uuid.UUID(headers["ce_id"].decode()).version == 4
    assert trace_id_from(headers["traceparent"].decode()) == TRACE
    assert headers["traceparent"] != dict(cloudevent_headers(EVENT_RECEIVED, "s", TRACE, utcnow()))["traceparent"]


@settings(max_examples=200, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_remembered_keys_change_no_outcome(value: Any, ascii_only: bool) -> None:
    raw = json.dumps({"data": value}, ensure_ascii=ascii_only).encode()
    parsed, plain = orjson.loads(raw), is_plain(raw)
    edge._GOOD_KEYS.clear()
    cold = outcome(parsed, plain)
    assert outcome(parsed, plain) == outcome(parsed, False) == cold  # its clean keys are remembered now
    assert all(type(key) is str and key and edge._clean_text(key) and key[0] != "$" and "." not in key
               for key in edge._GOOD_KEYS)


def model_outcome(value: Any) -> Any:
    try:
        parsed = parse_envelope(value)
    except BadSubmission as exc:
        return "refused", exc.status, [e.model_dump() for e in exc.errors]
    return "read", Envelope(str(parsed.id), parsed.type, parsed.schema_version, parsed.data)


def read_outcome(value: Any) -> Any:
    try:
        return "read", read_envelope(value)
    except BadSubmission as exc:
        return "refused", exc.status, [e.model_dump() for e in exc.errors]


submission_ids = st.uuids().flatmap(lambda u: st.sampled_from([
    str(u), str(u).upper(), u.hex, f"{{{u}}}", f"urn:uuid:{u}", str(u)[:-1], f" {u}", str(u).replace("-", "_")]))
envelope_fields = st.fixed_dictionaries({}, optional={
    "id": submission_ids | st.sampled_from([None, 7, "", "00000000-0000-0000-0000-000000000000"]),
    "type": st.sampled_from([*SCHEMA_VERSIONS, "sizure", "Seizure", None, 1, ["price"]]),
    "schema_version": st.sampled_from([1, 2, 3, 0, -1, True, False, 1.0, 2.5, "1", None, [1]]),
    "data": st.sampled_from([{}, {"country": "AFG"}, [], None, "x", {"nested": {"a": [1]}}]),
    "extra": st.just(1),
})


@settings(max_examples=500, deadline=None)
@given(value=envelope_fields | json_values)
def test_envelopes_are_read_without_the_model_exactly_as_with_it(value: Any) -> None:
    assert read_outcome(value) == model_outcome(value)


@settings(max_examples=300, deadline=None)
@given(time=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30))]))
       | st.datetimes())
def test_the_event_time_header_is_the_time_in_iso_8601(time: datetime) -> None:
    assert dict(cloudevent_headers(EVENT_RECEIVED, "s", TRACE, time))["ce_time"] == time.isoformat().encode()
