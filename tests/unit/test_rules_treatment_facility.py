"""Every treatment_facility rule of DOMAIN.md (pillar 4), and the period and totals normalised."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from services.validate.rules import Accepted, Rejected, validate
from services.validate.rules.reference import latest_allowed_date
from tests.factories import received_event, treatment_facility_data


def problems(**overrides: Any) -> dict[tuple[str | int, ...], str]:
    outcome = validate(received_event(treatment_facility_data(**overrides), type_="treatment_facility"))
    assert isinstance(outcome, Rejected), outcome
    return {tuple(e.loc): e.type for e in outcome.errors}


def accepted(**overrides: Any) -> dict[str, Any]:
    outcome = validate(received_event(treatment_facility_data(**overrides), type_="treatment_facility"))
    assert isinstance(outcome, Accepted), outcome
    assert outcome.schema_version == 1
    return outcome.data


def test_a_monthly_facility_report_is_accepted_with_period_and_total_normalised() -> None:
    assert accepted() == {
        "facility_id": "KAZ-ALM-007", "country": "KAZ", "name": "Almaty Regional Narcology Centre",
        "period": "2024-03", "services": ["detox", "opioid_agonist", "psychosocial"], "capacity": 120,
        "in_treatment": {"heroin": 85, "opium": 12, "methamphetamine": 30},
        "normalised": {"year": 2024, "month": 3, "in_treatment_total": 127, "submitted_schema_version": 1},
    }


def test_a_yearly_report_has_no_month() -> None:
    assert accepted(period="2023", in_treatment={})["normalised"] == {
        "year": 2023, "month": None, "in_treatment_total": 0, "submitted_schema_version": 1}


def test_more_people_in_treatment_over_a_period_than_places_is_accepted() -> None:
    assert accepted(capacity=10)["normalised"]["in_treatment_total"] == 127


def test_all_six_services_are_accepted() -> None:
    services = ["detox", "opioid_agonist", "psychosocial", "harm_reduction", "residential", "outpatient"]
    assert accepted(services=services)["services"] == services


def test_the_current_month_and_1990_are_accepted() -> None:
    accepted(period=latest_allowed_date().strftime("%Y-%m"))
    accepted(period="1990")
    accepted(period="1990-01")


def _next_month() -> str:
    today = latest_allowed_date()
    return (today.replace(day=1) + timedelta(days=32)).strftime("%Y-%m")


@pytest.mark.parametrize(("value", "code"), [
    ("2024-13", "period_invalid"),
    ("2024-00", "period_invalid"),
    ("24-03", "period_format"),
    ("2024/03", "period_format"),
    ("2024-03-01", "period_format"),
    ("2024-3", "period_format"),
    ("2024\n", "period_format"),
    ("٢٠٢٤", "period_format"),
    (2024, "string_type"),
    ("1989", "date_too_early"),
    ("1989-12", "date_too_early"),
    (str(date.today().year + 1), "date_in_future"),
    (_next_month(), "date_in_future"),
    (..., "missing"),
])
def test_period_is_a_real_past_year_or_month_since_1990(value: Any, code: str) -> None:
    assert problems(period=value) == {("data", "period"): code}


@pytest.mark.parametrize(("field", "value", "code"), [
    ("facility_id", "", "string_too_short"),
    ("facility_id", "x" * 101, "string_too_long"),
    ("facility_id", ..., "missing"),
    ("country", "KZ", "country_code"),
    ("name", " ", "string_too_short"),
    ("name", "x" * 201, "string_too_long"),
    ("services", [], "too_short"),
    ("services", ["detox", "residential", "detox"], "duplicate_service"),
    ("services", "detox", "list_type"),
    ("capacity", -1, "greater_than_equal"),
    ("capacity", 12.0, "int_type"),
    ("capacity", ..., "missing"),
    ("in_treatment", [], "dict_type"),
    ("in_treatment", ..., "missing"),
])
def test_each_facility_rule_names_its_field(field: str, value: Any, code: str) -> None:
    assert problems(**{field: value}) == {("data", field): code}


def test_a_service_off_the_list_is_named_by_position() -> None:
    assert problems(services=["detox", "spa"]) == {("data", "services", 1): "literal_error"}


def test_an_unknown_drug_in_treatment_is_named_by_its_key() -> None:
    assert problems(in_treatment={"heroin": 3, "krokodil": 2}) == {
        ("data", "in_treatment", "krokodil"): "drug_code"}


def test_a_negative_count_in_treatment_is_named_by_its_drug() -> None:
    assert problems(in_treatment={"heroin": -3}) == {("data", "in_treatment", "heroin"): "greater_than_equal"}


def test_unknown_fields_are_refused() -> None:
    assert problems(beds=40) == {("data", "beds"): "extra_forbidden"}


def test_every_facility_problem_is_reported_at_once() -> None:
    assert problems(period="2024-13", services=[], capacity=-1, in_treatment={"tea": 1}, name=...) == {
        ("data", "period"): "period_invalid", ("data", "services"): "too_short",
        ("data", "capacity"): "greater_than_equal", ("data", "in_treatment", "tea"): "drug_code",
        ("data", "name"): "missing"}
