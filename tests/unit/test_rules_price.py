"""Every price rule of DOMAIN.md, and prices normalised to per gram."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from services.validate.rules import Accepted, Rejected, validate
from tests.factories import price_data, received_event


def problems(**overrides: Any) -> dict[tuple[str | int, ...], str]:
    outcome = validate(received_event(price_data(**overrides), type_="price"))
    assert isinstance(outcome, Rejected), outcome
    return {tuple(e.loc): e.type for e in outcome.errors}


def accepted(**overrides: Any) -> dict[str, Any]:
    outcome = validate(received_event(price_data(**overrides), type_="price"))
    assert isinstance(outcome, Accepted), outcome
    assert outcome.schema_version == 1
    return outcome.data


def test_a_wholesale_price_per_kg_is_accepted_and_normalised_to_per_gram() -> None:
    assert accepted() == {
        "observed_on": "2024-03-15", "country": "TJK", "place": "Dushanbe", "drug": "heroin",
        "market": "wholesale", "price_typical": 9000.0, "price_min": 8000.0, "price_max": 11000.0,
        "currency": "USD", "per": "kg", "purity_pct": 45.5,
        "normalised": {"per": "g", "price_typical": 9.0, "price_min": 8.0, "price_max": 11.0, "rules": "units.v1",
                       "submitted_schema_version": 1},
    }


def test_a_retail_price_per_gram_without_range_or_purity_keeps_its_value() -> None:
    data = accepted(market="retail", per="g", price_typical=12.5, price_min=..., price_max=..., purity_pct=...)
    assert (data["price_min"], data["price_max"], data["purity_pct"]) == (None, None, None)
    assert data["normalised"] == {"per": "g", "price_typical": 12.5, "price_min": None, "price_max": None,
                                  "rules": "units.v1", "submitted_schema_version": 1}


@pytest.mark.parametrize(("per_kg", "per_g"), [(1234.5, 1.2345), (0.3, 0.0003), (7, 0.007)])
def test_price_per_kg_is_divided_exactly_by_a_thousand(per_kg: float, per_g: float) -> None:
    data = accepted(price_typical=per_kg, price_min=..., price_max=...)
    assert data["normalised"]["price_typical"] == per_g


@pytest.mark.parametrize(("value", "code"), [
    ("2024-02-30", "date_invalid"), ("15/03/2024", "date_format"), ("1989-12-31", "date_too_early"),
    ((date.today() + timedelta(days=3)).isoformat(), "date_in_future"), (..., "missing")])
def test_observation_date_follows_the_report_date_rule(value: Any, code: str) -> None:
    assert problems(observed_on=value) == {("data", "observed_on"): code}


@pytest.mark.parametrize(("field", "value", "code"), [
    ("country", "TJ", "country_code"),
    ("place", "", "string_too_short"),
    ("place", "x" * 201, "string_too_long"),
    ("drug", "krokodil", "drug_code"),
    ("market", "street", "literal_error"),
    ("price_typical", 0, "greater_than"),
    ("price_typical", "9000", "float_type"),
    ("price_typical", ..., "missing"),
    ("price_min", -1, "greater_than"),
    ("price_max", 0, "greater_than"),
    ("currency", "usd", "currency_code"),
    ("currency", "XXX", "currency_code"),
    ("currency", "DOLLAR", "currency_code"),
    ("currency", 840, "string_type"),
    ("currency", ..., "missing"),
    ("per", "lb", "literal_error"),
    ("purity_pct", -0.1, "greater_than_equal"),
    ("purity_pct", 100.5, "less_than_equal"),
    ("purity_pct", "45", "float_type"),
])
def test_each_price_rule_names_its_field(field: str, value: Any, code: str) -> None:
    assert problems(**{field: value}) == {("data", field): code}


def test_lowercase_currency_is_rejected_with_a_hint() -> None:
    outcome = validate(received_event(price_data(currency="usd"), type_="price"))
    assert isinstance(outcome, Rejected)
    assert "did you mean USD" in outcome.errors[0].msg


def test_minimum_above_typical_is_reported_on_the_minimum() -> None:
    assert problems(price_min=9500) == {("data", "price_min"): "price_order"}


def test_maximum_below_typical_is_reported_on_the_maximum() -> None:
    assert problems(price_max=8500) == {("data", "price_max"): "price_order"}


def test_without_a_valid_typical_price_minimum_and_maximum_are_still_ordered() -> None:
    assert problems(price_typical=..., price_min=12000) == {
        ("data", "price_typical"): "missing", ("data", "price_max"): "price_order"}


def test_equal_prices_and_purity_bounds_are_accepted() -> None:
    accepted(price_min=9000, price_max=9000, purity_pct=0)
    accepted(purity_pct=100)


def test_unknown_fields_are_refused() -> None:
    assert problems(price_avg=10) == {("data", "price_avg"): "extra_forbidden"}


def test_every_price_problem_is_reported_at_once() -> None:
    assert problems(country="XXX", market="street", price_min=9500, price_max=-1, currency="EURO",
                    purity_pct=101, observed_on=...) == {
        ("data", "country"): "country_code", ("data", "market"): "literal_error",
        ("data", "price_min"): "price_order", ("data", "price_max"): "greater_than",
        ("data", "currency"): "currency_code", ("data", "purity_pct"): "less_than_equal",
        ("data", "observed_on"): "missing"}
