"""Seizure schema_version 2 (coordinates as one object), the v1 → v2 upcaster, and the version registry."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from services.validate.decision import decide
from services.validate.rules import LATEST, SUBMITTED_MODELS, SUPPORTED, TYPES, Accepted, Rejected, validate
from services.validate.rules.seizure import upcast_seizure_v1_to_v2
from shared.envelope import SubmissionValidated, dumps
from shared.topics import Topics
from tests.factories import received_event, seizure_data


def seizure_v2_data(**overrides: Any) -> dict[str, Any]:
    return seizure_data(**{"coordinates": {"lat": 34.35, "lon": 61.48}, **overrides})


def outcome(data: dict[str, Any], schema_version: int) -> Accepted | Rejected:
    return validate(received_event(data, schema_version=schema_version))


def problems(data: dict[str, Any], schema_version: int = 2) -> dict[tuple[str | int, ...], str]:
    result = outcome(data, schema_version)
    assert isinstance(result, Rejected), result
    return {tuple(e.loc): e.type for e in result.errors}


def test_a_v2_seizure_is_accepted_in_its_canonical_form() -> None:
    result = outcome(seizure_v2_data(), 2)
    assert isinstance(result, Accepted)
    assert result.schema_version == 2
    assert result.data == {
        "seized_on": "2024-03-02", "country": "AFG", "place": "Islam Qala border crossing",
        "coordinates": {"lat": 34.35, "lon": 61.48}, "drug": "heroin", "quantity": 1500.0, "unit": "g",
        "cases": 1, "persons_arrested": 2, "transport": "land", "route": "balkan", "origin": None,
        "destination": None, "transit": [], "agency": None,
        "normalised": {"quantity": 1.5, "unit": "kg", "rules": "units.v1", "submitted_schema_version": 2},
    }


def test_a_v1_seizure_is_published_as_v2() -> None:
    result = outcome(seizure_data(lat=34.35, lon=61.48, agency="Border Police"), 1)
    assert isinstance(result, Accepted)
    assert result.schema_version == 2
    assert "lat" not in result.data and "lon" not in result.data
    assert result.data["coordinates"] == {"lat": 34.35, "lon": 61.48}
    assert result.data["normalised"]["submitted_schema_version"] == 1


@pytest.mark.parametrize(("v1", "v2"), [
    ({"lat": 34.35, "lon": 61.48}, {"coordinates": {"lat": 34.35, "lon": 61.48}}),
    ({}, {}),
    ({"lat": None, "lon": None}, {"coordinates": None}),
    ({"origin": "IRN", "transit": ["TUR"], "cases": ..., "persons_arrested": ...},
     {"origin": "IRN", "transit": ["TUR"], "cases": ..., "persons_arrested": ...}),
])
def test_a_v1_seizure_and_its_v2_equivalent_validate_to_the_same_data(v1: dict[str, Any],
                                                                      v2: dict[str, Any]) -> None:
    from_v1, from_v2 = outcome(seizure_data(**v1), 1), outcome(seizure_data(**v2), 2)
    assert isinstance(from_v1, Accepted) and isinstance(from_v2, Accepted)
    assert from_v1.schema_version == from_v2.schema_version == 2
    assert from_v1.data["normalised"].pop("submitted_schema_version") == 1
    assert from_v2.data["normalised"].pop("submitted_schema_version") == 2
    assert from_v1.data == from_v2.data


def test_the_upcaster_folds_lat_and_lon_into_coordinates() -> None:
    v1 = {"seized_on": "2024-03-02", "quantity": 1.5, "lat": 34.35, "lon": 61.48, "agency": None}
    assert upcast_seizure_v1_to_v2(v1) == {"seized_on": "2024-03-02", "quantity": 1.5, "agency": None,
                                           "coordinates": {"lat": 34.35, "lon": 61.48}}
    assert v1["lat"] == 34.35, "the input is left as it was"


@pytest.mark.parametrize("v1", [{"lat": None, "lon": None}, {}])
def test_the_upcaster_turns_absent_coordinates_into_null(v1: dict[str, Any]) -> None:
    assert upcast_seizure_v1_to_v2({"place": "Herat", **v1}) == {"place": "Herat", "coordinates": None}


def test_a_v1_error_names_the_fields_the_officer_sent() -> None:
    assert problems(seizure_data(lat=34.3), schema_version=1) == {("data", "lon"): "coordinates_pair"}
    assert problems(seizure_data(lat=95, lon=0), schema_version=1) == {("data", "lat"): "less_than_equal"}


def test_v2_coordinates_need_both_halves() -> None:
    assert problems(seizure_v2_data(coordinates={"lat": 34.3})) == {("data", "coordinates", "lon"): "missing"}


@pytest.mark.parametrize(("coordinates", "bad"), [({"lat": 91, "lon": 0}, "lat"), ({"lat": 0, "lon": -181}, "lon"),
                                                  ({"lat": "34", "lon": 0}, "lat")])
def test_v2_coordinates_must_be_numbers_in_range(coordinates: dict[str, Any], bad: str) -> None:
    assert set(problems(seizure_v2_data(coordinates=coordinates))) == {("data", "coordinates", bad)}


def test_v2_refuses_v1_coordinates_and_extra_keys_in_coordinates() -> None:
    assert problems(seizure_data(lat=34.3, lon=62.1)) == {("data", "lat"): "extra_forbidden",
                                                          ("data", "lon"): "extra_forbidden"}
    assert problems(seizure_v2_data(coordinates={"lat": 1, "lon": 2, "alt": 3})) == {
        ("data", "coordinates", "alt"): "extra_forbidden"}


def test_v2_keeps_the_unit_rule() -> None:
    assert problems(seizure_v2_data(unit="l")) == {("data", "unit"): "unit_for_drug"}


def test_the_registry_knows_every_type_and_its_latest_version() -> None:
    assert LATEST == {"seizure": 2, "price": 1, "financial_case": 1, "treatment_facility": 1, "training": 1}
    assert {("seizure", 1), ("seizure", 2), ("price", 1), ("financial_case", 1), ("treatment_facility", 1),
            ("training", 1)} == SUPPORTED


def test_older_versions_upcast_and_only_the_latest_normalises() -> None:
    for (type_, version), rules in TYPES.items():
        latest = version == LATEST[type_]
        assert (rules.normalise is not None) == latest, (type_, version)
        assert (rules.upcast is not None) == (not latest), (type_, version)


@pytest.mark.parametrize("key", sorted(SUBMITTED_MODELS))
def test_every_submitted_form_has_a_json_schema(key: tuple[str, int]) -> None:
    schema = SUBMITTED_MODELS[key].model_json_schema()
    assert schema["additionalProperties"] is False
    assert schema["required"]


def test_the_validated_event_carries_the_latest_version_and_the_submitted_one() -> None:
    event = received_event(seizure_data(lat=34.35, lon=61.48), schema_version=1)
    out = decide(dumps(event), b"9a1b", {}, partition=0, offset=3, topics=Topics())
    assert out.accepted
    published = orjson.loads(out.value)
    assert published["schema_version"] == 2
    assert published["data"]["coordinates"] == {"lat": 34.35, "lon": 61.48}
    assert published["data"]["normalised"]["submitted_schema_version"] == 1
    assert "rules=rules/3" in published["validator"]


@pytest.mark.parametrize("microseconds", [0, 123456])
def test_the_validated_event_is_exactly_what_its_model_would_encode(microseconds: int) -> None:
    event = received_event(seizure_data(place="Ünye", quantity=0.1, lat=34.35, lon=61.48), schema_version=1)
    event = event.model_copy(update={"received_at": event.received_at.replace(microsecond=microseconds)})
    out = decide(dumps(event), b"9a1b", {}, partition=2, offset=7, topics=Topics())
    assert out.accepted
    assert SubmissionValidated.model_validate_json(out.value).model_dump_json().encode() == out.value
