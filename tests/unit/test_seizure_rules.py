"""Every seizure rule of DOMAIN.md as sent in schema_version 1, and quantity normalisation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from services.validate.rules import Accepted, Rejected, validate
from tests.factories import received_event as received
from tests.factories import seizure_data


def problems(**overrides: Any) -> dict[tuple[str | int, ...], str]:
    outcome = validate(received(seizure_data(**overrides)))
    assert isinstance(outcome, Rejected), outcome
    return {tuple(e.loc): e.type for e in outcome.errors}


def accepted(**overrides: Any) -> dict[str, Any]:
    outcome = validate(received(seizure_data(**overrides)))
    assert isinstance(outcome, Accepted), outcome
    return outcome.data


def test_a_complete_valid_seizure_is_accepted_with_defaults_filled() -> None:
    data = accepted(cases=..., persons_arrested=...)
    assert data["cases"] == 1
    assert data["persons_arrested"] == 0
    assert data["transit"] == []


@pytest.mark.parametrize(("value", "code"), [
    ("2024-02-30", "date_invalid"),
    ("02/03/2024", "date_format"),
    ("2024-3-2", "date_format"),
    (20240302, "date_format"),
    ("1989-12-31", "date_too_early"),
    ((date.today() + timedelta(days=3)).isoformat(), "date_in_future"),
])
def test_seizure_date_must_be_a_real_past_date_since_1990(value: Any, code: str) -> None:
    assert problems(seized_on=value) == {("data", "seized_on"): code}


def test_seizure_date_of_1990_and_of_today_are_accepted() -> None:
    accepted(seized_on="1990-01-01")
    accepted(seized_on=datetime.now(UTC).date().isoformat())


@pytest.mark.parametrize("field", ["country", "origin", "destination"])
@pytest.mark.parametrize("value", ["XXX", "afg", "AF", "Afghanistan", 4])
def test_countries_must_be_iso3_codes(field: str, value: Any) -> None:
    assert set(problems(**{field: value})) == {("data", field)}


def test_lowercase_country_code_is_rejected_with_a_hint() -> None:
    outcome = validate(received(seizure_data(country="afg")))
    assert isinstance(outcome, Rejected)
    assert "did you mean AFG" in outcome.errors[0].msg


def test_each_transit_country_is_checked() -> None:
    assert problems(transit=["IRN", "ZZZ", "TUR"]) == {("data", "transit", 1): "country_code"}


@pytest.mark.parametrize("place", ["", "   ", "x" * 201])
def test_place_is_1_to_200_characters(place: str) -> None:
    assert set(problems(place=place)) == {("data", "place")}


def test_coordinates_come_in_pairs() -> None:
    assert problems(lat=34.3) == {("data", "lon"): "coordinates_pair"}
    assert problems(lon=62.1) == {("data", "lat"): "coordinates_pair"}
    assert accepted(lat=34.3, lon=62.1)["coordinates"] == {"lat": 34.3, "lon": 62.1}
    assert accepted()["coordinates"] is None


@pytest.mark.parametrize(("lat", "lon", "bad"), [(91, 0, "lat"), (-90.5, 0, "lat"), (0, 180.1, "lon"),
                                                 (0, -181, "lon")])
def test_coordinates_must_be_in_range(lat: float, lon: float, bad: str) -> None:
    assert set(problems(lat=lat, lon=lon)) == {("data", bad)}


def test_drug_must_be_on_the_list() -> None:
    assert problems(drug="krokodil") == {("data", "drug"): "drug_code"}


@pytest.mark.parametrize("quantity", [0, -1, "12", True, 1e13])
def test_quantity_must_be_a_positive_number(quantity: Any) -> None:
    assert set(problems(quantity=quantity)) == {("data", "quantity")}


@pytest.mark.parametrize(("drug", "unit"), [("heroin", "l"), ("heroin", "unit"), ("captagon", "kg"),
                                            ("acetic_anhydride", "g"), ("cocaine", "ml")])
def test_unit_must_suit_the_drug_form(drug: str, unit: str) -> None:
    assert problems(drug=drug, unit=unit) == {("data", "unit"): "unit_for_drug"}


@pytest.mark.parametrize(("drug", "unit"), [("acetic_anhydride", "kg"), ("acetic_anhydride", "ml"),
                                            ("captagon", "unit"), ("methamphetamine", "unit"),
                                            ("other_precursor", "l"), ("other", "unit"), ("opium", "g")])
def test_units_allowed_by_the_drug_form_are_accepted(drug: str, unit: str) -> None:
    accepted(drug=drug, unit=unit)


def test_unknown_unit_is_rejected() -> None:
    assert set(problems(unit="lb")) == {("data", "unit")}


@pytest.mark.parametrize(("field", "value"), [("cases", 0), ("cases", 1.5), ("persons_arrested", -1),
                                              ("persons_arrested", "2"), ("cases", 2**64)])
def test_counts_are_whole_numbers_in_range(field: str, value: Any) -> None:
    assert set(problems(**{field: value})) == {("data", field)}


@pytest.mark.parametrize(("field", "value"), [("transport", "truck"), ("route", "silk")])
def test_transport_and_route_come_from_their_lists(field: str, value: str) -> None:
    assert problems(**{field: value}) == {("data", field): "literal_error"}


def test_missing_required_fields_are_each_named() -> None:
    assert problems(drug=..., place=..., route=...) == {
        ("data", "drug"): "missing", ("data", "place"): "missing", ("data", "route"): "missing"}


def test_unknown_fields_are_refused_so_typos_surface() -> None:
    assert problems(quantiy=3) == {("data", "quantiy"): "extra_forbidden"}


def test_every_problem_is_reported_at_once() -> None:
    found = problems(country="XXX", quantity=-3, unit="l", lat=10, seized_on="1980-01-01", place="")
    assert set(found) == {("data", "country"), ("data", "quantity"), ("data", "unit"), ("data", "lon"),
                          ("data", "seized_on"), ("data", "place")}


@pytest.mark.parametrize(("quantity", "unit", "expected", "normal_unit"), [
    (1500, "g", 1.5, "kg"), (2, "kg", 2.0, "kg"), (250, "ml", 0.25, "l"), (3.5, "l", 3.5, "l"),
    (1000, "unit", 1000.0, "unit"), (0.1, "g", 0.0001, "kg")])
def test_quantity_is_normalised_and_the_submitted_value_kept(quantity: float, unit: str, expected: float,
                                                             normal_unit: str) -> None:
    drug = {"kg": "heroin", "g": "heroin", "ml": "acetic_anhydride", "l": "acetic_anhydride", "unit": "captagon"}
    data = accepted(quantity=quantity, unit=unit, drug=drug[unit])
    assert data["normalised"] == {"quantity": expected, "unit": normal_unit, "rules": "units.v1",
                                  "submitted_schema_version": 1}
    assert (data["quantity"], data["unit"]) == (quantity, unit)


def test_a_type_without_rules_is_rejected_not_dropped() -> None:
    outcome = validate(received(seizure_data(), type_="precursor"))
    assert isinstance(outcome, Rejected)
    assert [(e.loc, e.type) for e in outcome.errors] == [(["type"], "unknown_type")]


def test_an_unknown_schema_version_is_rejected_not_dropped() -> None:
    outcome = validate(received(seizure_data(), schema_version=3))
    assert isinstance(outcome, Rejected)
    assert [(e.loc, e.type) for e in outcome.errors] == [(["schema_version"], "unknown_schema_version")]
