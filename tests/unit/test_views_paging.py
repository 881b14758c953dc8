"""Paging is a property of the API: for any data (buckets sharded over partitions, some emptied by amendments) and
any page size, walking the pages yields every row once, in order; CSV pages and the GeoJSON map parse with the
standard library into the same rows."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.aggregate.app import create_app
from services.aggregate.apply import apply_batch
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.projection import Event
from services.aggregate.settings import AggregateSettings
from shared.auth import InMemoryKeyStore
from shared.envelope import content_hash
from tests.keys import add_key, bearer
from tests.unit.test_oracle import prices, seizures, trainings

TABLES = ["/v1/views/seizures", "/v1/views/routes", "/v1/views/prices", "/v1/views/trainings"]
CSV_TABLES = ["/v1/views/seizures", "/v1/views/routes", "/v1/views/prices"]
VERSION = st.one_of(st.tuples(st.just("seizure"), seizures), st.tuples(st.just("price"), prices),
                    st.tuples(st.just("training"), trainings))


@st.composite
def histories(draw: st.DrawFn) -> list[Event]:
    """Validated events for up to 25 submissions over 3 partitions, some amended (so some buckets emptied)."""
    found: list[Event] = []
    offsets = [0, 0, 0]
    for n in range(draw(st.integers(1, 25))):
        partition = draw(st.integers(0, 2))
        type_, data = draw(VERSION)
        for seq in range(draw(st.integers(1, 3))):
            if seq:
                data = draw(seizures if type_ == "seizure" else prices if type_ == "price" else trainings)
            found.append(Event("validated", f"s{n:02d}", type_, 100 * n + seq, content_hash(type_, 1, data),
                               "2024-06-01T00:00:00+00:00", "officer", "2024-06-01T00:00:00+00:00", data=data,
                               source=str(partition), offset=offsets[partition]))
            offsets[partition] += 1
    return found


async def walk(client: httpx.AsyncClient, path: str, key: str, limit: int) -> list[Any]:
    found, cursor = [], None
    for _ in range(1000):
        response = await client.get(path, params={"limit": limit, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body[key]) <= limit
        assert body[key] or cursor is None, "only a first page may be empty"
        found += body[key]
        cursor = body["next"]
        if cursor is None:
            return found
    raise AssertionError("paging did not end")


async def walk_csv(client: httpx.AsyncClient, path: str, limit: int) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    params: dict[str, Any] = {"format": "csv", "limit": limit}
    for _ in range(1000):
        response = await client.get(path, params=params)
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows += list(csv.DictReader(io.StringIO(response.text)))
        if "x-next-cursor" not in response.headers:
            return rows
        params = {**params, "cursor": response.headers["x-next-cursor"]}
    raise AssertionError("paging did not end")


async def check(events: list[Event], limits: list[int]) -> None:
    repository = InMemoryRepository()
    await apply_batch(repository, events)
    keys = InMemoryKeyStore()
    app = create_app(AggregateSettings(), repository=repository, keys=keys)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://aggregate",
                                 headers=bearer(add_key(keys, "analyst"))) as client:
        for path in TABLES:
            everything = (await client.get(path, params={"limit": 1000})).json()["items"]
            for limit in limits:
                assert await walk(client, path, "items", limit) == everything, (path, limit)
            if path in CSV_TABLES:
                for limit in limits[:2]:
                    rows = await walk_csv(client, path, limit)
                    assert rows == [{k: str(v) for k, v in item.items()} for item in everything], (path, limit)
        response = await client.get("/v1/views/map", params={"limit": 1000})
        collection = json.loads(response.text)
        assert collection["type"] == "FeatureCollection" and collection["next"] is None
        for feature in collection["features"]:
            assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Point"
            lon, lat = feature["geometry"]["coordinates"]
            assert isinstance(lon, float) and isinstance(lat, float) and -180 <= lon <= 180 and -90 <= lat <= 90
        ids = [f["properties"]["id"] for f in collection["features"]]
        assert ids == sorted(set(ids))
        for limit in limits:
            assert await walk(client, "/v1/views/map", "features", limit) == collection["features"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(events=histories(), limits=st.lists(st.integers(1, 7), min_size=2, max_size=3, unique=True))
def test_pages_never_skip_or_repeat_a_row_whatever_the_page_size(events: list[Event], limits: list[int]) -> None:
    asyncio.run(check(events, limits))
