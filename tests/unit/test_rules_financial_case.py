"""Every financial_case rule of DOMAIN.md (illicit financial flows, pillar 2)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from services.validate.rules import Accepted, Rejected, validate
from tests.factories import financial_case_data, received_event


def problems(**overrides: Any) -> dict[tuple[str | int, ...], str]:
    outcome = validate(received_event(financial_case_data(**overrides), type_="financial_case"))
    assert isinstance(outcome, Rejected), outcome
    return {tuple(e.loc): e.type for e in outcome.errors}


def accepted(**overrides: Any) -> dict[str, Any]:
    outcome = validate(received_event(financial_case_data(**overrides), type_="financial_case"))
    assert isinstance(outcome, Accepted), outcome
    assert outcome.schema_version == 1
    return outcome.data


def test_a_financial_case_is_accepted_with_defaults_filled() -> None:
    assert accepted(linked_drug=..., persons_charged=...) == {
        "reported_on": "2024-05-20", "country": "UZB", "case_type": "cash_smuggling", "amount": 250000.0,
        "currency": "USD", "linked_drug": None, "persons_charged": 0,
        "normalised": {"rules": "financial_case.v1", "submitted_schema_version": 1},
    }


@pytest.mark.parametrize("case_type", ["money_laundering_investigation", "asset_seizure", "cash_smuggling",
                                       "informal_value_transfer", "other"])
def test_every_case_type_of_the_list_is_accepted(case_type: str) -> None:
    assert accepted(case_type=case_type)["case_type"] == case_type


@pytest.mark.parametrize(("field", "value", "code"), [
    ("reported_on", "2024-13-01", "date_invalid"),
    ("reported_on", "20.05.2024", "date_format"),
    ("reported_on", "1989-06-30", "date_too_early"),
    ("reported_on", (date.today() + timedelta(days=3)).isoformat(), "date_in_future"),
    ("country", "Uzbekistan", "country_code"),
    ("case_type", "fraud", "literal_error"),
    ("case_type", ..., "missing"),
    ("amount", 0, "greater_than"),
    ("amount", -100, "greater_than"),
    ("amount", "250000", "float_type"),
    ("amount", ..., "missing"),
    ("currency", "US$", "currency_code"),
    ("currency", ..., "missing"),
    ("linked_drug", "krokodil", "drug_code"),
    ("persons_charged", -1, "greater_than_equal"),
    ("persons_charged", 1.5, "int_type"),
    ("persons_charged", "3", "int_type"),
])
def test_each_financial_case_rule_names_its_field(field: str, value: Any, code: str) -> None:
    assert problems(**{field: value}) == {("data", field): code}


def test_unknown_fields_are_refused() -> None:
    assert problems(suspects=2) == {("data", "suspects"): "extra_forbidden"}


def test_every_financial_case_problem_is_reported_at_once() -> None:
    assert problems(country="XX", amount=0, currency="usd", persons_charged=-2, linked_drug="tea") == {
        ("data", "country"): "country_code", ("data", "amount"): "greater_than",
        ("data", "currency"): "currency_code", ("data", "persons_charged"): "greater_than_equal",
        ("data", "linked_drug"): "drug_code"}
