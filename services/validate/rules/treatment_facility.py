"""Treatment facility rules (DOMAIN.md, `treatment_facility`, schema_version 1): one facility, one period (pillar 4).

People in treatment over a period may outnumber the places a facility has at any one time, so
`in_treatment` is deliberately not checked against `capacity`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from services.validate.rules.fields import (
    Count,
    CrossFieldProblem,
    DrugCode,
    Identifier,
    Iso3,
    ReportPeriod,
    Text,
    as_json,
    period_bounds,
)
from shared.reference import TreatmentService


def _no_duplicates(services: list[str]) -> list[str]:
    repeated = sorted({s for s in services if services.count(s) > 1})
    if repeated:
        raise PydanticCustomError("duplicate_service", "lists {repeated} more than once",
                                  {"repeated": ", ".join(repeated)})
    return services


class TreatmentFacility(BaseModel):
    """One treatment facility's report for a year or a month (pillar 4)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    facility_id: Identifier
    country: Iso3
    name: Text
    period: ReportPeriod
    services: Annotated[list[TreatmentService], Field(min_length=1), AfterValidator(_no_duplicates)]
    capacity: Count
    in_treatment: dict[DrugCode, Count]


def cross_field_problems(data: dict[str, Any], invalid: set[str]) -> list[CrossFieldProblem]:
    """A facility report has no rule spanning fields (see the module docstring on capacity)."""
    return []


def normalise(facility: TreatmentFacility) -> dict[str, Any]:
    """The validated report as JSON, plus its period as year and month and the people in treatment in total."""
    year, month = period_bounds(facility.period)
    data = as_json(facility)
    data["normalised"] = {"year": year, "month": month, "in_treatment_total": sum(facility.in_treatment.values())}
    return data
