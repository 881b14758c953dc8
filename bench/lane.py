"""What ingest's fast lane saves: CPU per single POST in this process, through the lane and through FastAPI's
own routing and dependency solving, alternating in one run (the lane stays only while it is worth it)."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any, cast

import orjson

from shared.auth import InMemoryKeyStore, make_key
from shared.kafka import InMemoryPublisher
from shared.settings import DEV_AUTH_PEPPER

WARM_UP = 200


def _app(lane: bool) -> tuple[Any, bytes, InMemoryPublisher]:
    from services.ingest.app import create_app
    from services.ingest.lane import SubmissionLane
    from services.ingest.settings import IngestSettings

    keys, publisher = InMemoryKeyStore(), InMemoryPublisher()
    new = make_key(DEV_AUTH_PEPPER.encode(), "officer", None, "bench")
    keys.records[new.record["_id"]] = new.record
    app = create_app(IngestSettings(rate_limit_per_s=0), publisher=publisher, keys=keys)
    if not lane:  # before the first request builds the middleware stack
        app.user_middleware = [m for m in app.user_middleware if cast(object, m.cls) is not SubmissionLane]
    return app, f"Bearer {new.key}".encode(), publisher


async def _post(app: Any, authorization: bytes, body: bytes) -> None:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/submissions", "raw_path": b"/v1/submissions", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"ingest"), (b"authorization", authorization),
                         (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("ingest", 80)}
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if status != [202]:
        raise RuntimeError(f"the lane comparison's POST was answered {status}")


async def _cost(app: Any, authorization: bytes, publisher: InMemoryPublisher, bodies: list[bytes]) -> float:
    """µs of CPU per POST of `bodies` (after a warm-up)."""
    for body in bodies[:WARM_UP]:
        await _post(app, authorization, body)
    start = time.process_time()
    for body in bodies[WARM_UP:]:
        await _post(app, authorization, body)
    publisher.records.clear()
    return 1e6 * (time.process_time() - start) / len(bodies[WARM_UP:])


def lane_costs(envelopes: list[dict[str, Any]], rounds: int = 5) -> tuple[float, float]:
    """Median µs of CPU per single POST (through the lane, through FastAPI's routing), in alternating rounds."""
    bodies = [orjson.dumps(e) for e in envelopes]
    apps = {True: _app(lane=True), False: _app(lane=False)}
    costs: dict[bool, list[float]] = {True: [], False: []}

    async def measure() -> None:
        for r in range(rounds):
            for lane in (True, False) if r % 2 == 0 else (False, True):
                costs[lane].append(await _cost(*apps[lane], bodies))

    asyncio.run(measure())
    return statistics.median(costs[True]), statistics.median(costs[False])
