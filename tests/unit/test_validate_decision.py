"""decide()'s hot path: the shortcuts it takes give exactly what the straightforward code would."""

from __future__ import annotations

import math
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import BaseModel
from shapely.geometry import Point

from services.validate.decision import decide
from services.validate.rules import TYPES, borders
from services.validate.rules.fields import as_json
from services.validate.rules.reference import latest_allowed_date
from services.validate.rules.seizure import Seizure
from shared.envelope import (
    EVENT_REJECTED,
    EVENT_VALIDATED,
    SubmissionRejected,
    SubmissionValidated,
    cloudevent_headers,
    dumps,
    trace_id_from,
)
from shared.topics import Topics
from tests.factories import (
    financial_case_data,
    price_data,
    received_event,
    seizure_data,
    training_data,
    treatment_facility_data,
)

TRACEPARENT = {"traceparent": b"00-" + b"ab" * 16 + b"-0123456789abcdef-01"}


def test_every_decision_names_where_it_came_from_and_carries_its_cloudevent_headers() -> None:
    valid = dumps(received_event(seizure_data(), schema_version=1))
    invalid = dumps(received_event(seizure_data(unit="l"), schema_version=1))
    outs = [decide(raw, b"9a1b", TRACEPARENT, partition=2, offset=offset, topics=Topics())
            for offset, raw in enumerate((valid, valid, invalid, b"not json"), start=40)]
    assert [o.accepted for o in outs] == [True, True, False, False]
    for offset, out in enumerate(outs, start=40):
        event = (SubmissionValidated if out.accepted else SubmissionRejected).model_validate_json(out.value)
        assert (event.received.partition, event.received.seq) == (2, offset)
        headers = dict(out.headers)
        assert list(headers) == [name for name, _ in cloudevent_headers("t", "s", "0" * 32, datetime.now(UTC))]
        assert headers["ce_type"] == (EVENT_VALIDATED if out.accepted else EVENT_REJECTED).encode()
        assert uuid.UUID(headers["ce_id"].decode()).version == 4
        assert trace_id_from(headers["traceparent"].decode()) == out.trace_id == "ab" * 16
        stamped = event.validated_at if isinstance(event, SubmissionValidated) else event.rejected_at
        assert headers["ce_time"] == stamped.isoformat().encode()
    assert len({dict(o.headers)["ce_id"] for o in outs}) == len(outs)


@pytest.mark.parametrize(("key", "data"), [
    (("seizure", 1), seizure_data(transit=["IRN"], lat=34.35, lon=62.2)),
    (("seizure", 2), seizure_data(coordinates={"lat": 34.35, "lon": 62.2}, agency=" DCA ")),
    (("price", 1), price_data()),
    (("financial_case", 1), financial_case_data()),
    (("treatment_facility", 1), treatment_facility_data()),
    (("training", 1), training_data()),
])
def test_as_json_is_model_dump_in_json_mode(key: tuple[str, int], data: dict[str, Any]) -> None:
    model: BaseModel = TYPES[key].model.model_validate(data)
    assert as_json(model) == model.model_dump(mode="json")
    assert orjson.dumps(as_json(model)) == orjson.dumps(model.model_dump(mode="json"))


def test_a_seizure_without_transit_gets_a_list_of_its_own_and_the_schema_still_says_so() -> None:
    first, second = Seizure.model_validate(seizure_data()), Seizure.model_validate(seizure_data())
    assert first.transit == [] and first.transit is not second.transit
    assert Seizure.model_json_schema()["properties"]["transit"]["default"] == []


def test_the_latest_allowed_date_is_today_fourteen_hours_ahead_of_utc() -> None:
    before = (datetime.now(UTC) + timedelta(hours=14)).date()
    latest = latest_allowed_date()
    after = (datetime.now(UTC) + timedelta(hours=14)).date()
    assert latest in {before, after}


def _reference_near(country: str, lat: float, lon: float) -> bool:
    """In or near, asked the long way: is the polygon containing a Point, or within reach of one?"""
    geometry = borders.outline(country)
    assert geometry is not None
    point = Point(lon, lat)
    lat_degrees = borders.NEAR_KM / borders._KM_PER_DEGREE
    lon_degrees = lat_degrees / max(math.cos(math.radians(lat)), 0.01)
    return bool(geometry.contains(point) or geometry.dwithin(point, lat_degrees)
                or (geometry.dwithin(point, lon_degrees)
                    and geometry.intersects(borders._disc(point, lon_degrees, lat_degrees))))


@pytest.mark.parametrize("country", ["AFG", "PAK", "NOR", "FJI"])
def test_placement_agrees_with_the_polygon(country: str) -> None:
    rng = random.Random(country)
    geometry = borders.outline(country)
    assert geometry is not None
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    for _ in range(40):
        lat, lon = rng.uniform(min_lat - 2, max_lat + 2), rng.uniform(min_lon - 2, max_lon + 2)
        lat, lon = max(-90.0, min(90.0, lat)), max(-180.0, min(180.0, lon))
        where = borders.placement(country, lat, lon)
        assert where is not None and where.near == _reference_near(country, lat, lon)
