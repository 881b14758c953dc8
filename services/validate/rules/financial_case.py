"""Financial case rules (DOMAIN.md, `financial_case`, schema_version 1): illicit financial flows (pillar 2)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from services.validate.rules.fields import (
    Amount,
    Count,
    CrossFieldProblem,
    Currency,
    DrugCode,
    Iso3,
    ReportDate,
    as_json,
)
from shared.reference import CaseType

RULES = "financial_case.v1"
"""Label of the rules the normalised form follows: nothing is converted, defaults are filled."""


class FinancialCase(BaseModel):
    """One case of illicit financial flows (pillar 2)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reported_on: ReportDate
    country: Iso3
    case_type: CaseType
    amount: Amount
    currency: Currency
    linked_drug: DrugCode | None = None
    persons_charged: Count = 0


def cross_field_problems(data: dict[str, Any], invalid: set[str]) -> list[CrossFieldProblem]:
    """A financial case has no rule spanning fields."""
    return []


def normalise(case: FinancialCase) -> dict[str, Any]:
    """The validated case as JSON, defaults filled."""
    data = as_json(case)
    data["normalised"] = {"rules": RULES}
    return data
