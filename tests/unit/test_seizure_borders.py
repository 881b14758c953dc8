"""A seizure's coordinates fall in or near its country (DOMAIN.md), on Natural Earth's outlines."""

from __future__ import annotations

from typing import Any

import pytest

from services.validate.rules import Accepted, Rejected, borders, validate
from tests.factories import received_event as received
from tests.factories import seizure_data

KABUL = (34.53, 69.17)
HERAT = (34.35, 62.20)
TORKHAM_PAKISTAN_SIDE = (34.10, 71.10)  # the Khyber crossing, a few km into Pakistan
ISLAMABAD = (33.69, 73.06)
MID_ARABIAN_SEA = (15.0, 62.0)
GWADAR_OFFSHORE = (25.0, 62.4)  # ~20 km off Pakistan's coast: territorial waters
NORTH_CAPE_OFFSHORE = (71.8, 25.8)  # ~60 km off Norway, where a degree of longitude is short


def verdict(country: str, point: tuple[float, float], schema_version: int = 2) -> Accepted | Rejected:
    lat, lon = point
    pair = {"lat": lat, "lon": lon}
    where: dict[str, Any] = {"coordinates": pair} if schema_version == 2 else pair
    return validate(received(seizure_data(country=country, **where), schema_version=schema_version))


@pytest.mark.parametrize(("country", "point"), [
    ("AFG", KABUL), ("AFG", HERAT), ("PAK", ISLAMABAD),
    ("AFG", TORKHAM_PAKISTAN_SIDE), ("PAK", TORKHAM_PAKISTAN_SIDE), ("PAK", KABUL),  # ~85 km from the border
    ("PAK", GWADAR_OFFSHORE), ("NOR", NORTH_CAPE_OFFSHORE),
    ("SRB", (44.82, 20.46)), ("HUN", (47.50, 19.04)), ("MMR", (16.87, 96.20)),
])
def test_coordinates_in_or_near_the_country_are_accepted(country: str, point: tuple[float, float]) -> None:
    assert isinstance(verdict(country, point), Accepted)


@pytest.mark.parametrize(("country", "point"), [("PAK", HERAT), ("AFG", ISLAMABAD), ("IRN", MID_ARABIAN_SEA),
                                                ("AFG", (-34.53, -69.17))])
def test_coordinates_far_from_the_country_are_rejected(country: str, point: tuple[float, float]) -> None:
    outcome = verdict(country, point)
    assert isinstance(outcome, Rejected)
    assert [(e.loc, e.type) for e in outcome.errors] == [(["data", "coordinates"], "coordinates_outside_country")]
    assert f"outside {country}" in outcome.errors[0].msg and "km" in outcome.errors[0].msg


def test_v1_names_lat_when_its_coordinates_are_far_from_the_country() -> None:
    outcome = verdict("PAK", HERAT, schema_version=1)
    assert isinstance(outcome, Rejected)
    assert [(e.loc, e.type) for e in outcome.errors] == [(["data", "lat"], "coordinates_outside_country")]
    assert isinstance(verdict("AFG", KABUL, schema_version=1), Accepted)


def test_the_distance_reported_is_the_distance_to_the_border() -> None:
    where = borders.placement("IRN", *HERAT)
    assert where is not None and not where.near and where.km is not None
    assert 100 < where.km < 140  # Herat is ~115 km from the Iranian border at its nearest


def test_a_country_without_an_outline_of_its_own_is_not_checked() -> None:
    assert borders.outline("REU") is None  # Réunion: drawn as part of France in Natural Earth
    assert isinstance(verdict("REU", KABUL), Accepted)


def test_an_invalid_country_or_point_gives_only_its_own_problem() -> None:
    outcome = validate(received(seizure_data(country="XXX", coordinates={"lat": 34.5, "lon": 69.2}), schema_version=2))
    assert isinstance(outcome, Rejected)
    assert [e.loc for e in outcome.errors] == [["data", "country"]]
