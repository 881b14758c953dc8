"""Field types shared by the submission types: report dates, ISO 3166 codes, codes from lists."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from services.validate.rules.reference import EARLIEST_DATE, countries, drugs, latest_allowed_date

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _parse_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise PydanticCustomError("date_format", "must be a date written YYYY-MM-DD, got '{value}'", {"value": value})
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("date_invalid", "{value} is not a calendar date", {"value": value}) from None


def _date_in_range(value: date) -> date:
    if value < EARLIEST_DATE:
        raise PydanticCustomError("date_too_early", "must not be before {earliest}", {"earliest": str(EARLIEST_DATE)})
    if value > latest_allowed_date():
        raise PydanticCustomError("date_in_future", "must not be in the future", {})
    return value


def _country(value: str) -> str:
    if value not in countries():
        code = value.upper()
        hint = f" (did you mean {code}?)" if code in countries() else ""
        raise PydanticCustomError("country_code",
                                  "'{value}' is not an ISO 3166-1 alpha-3 country code{hint}",
                                  {"value": value, "hint": hint})
    return value


def _drug(value: str) -> str:
    if value not in drugs():
        raise PydanticCustomError("drug_code", "'{value}' is not on the drug list ({known})",
                                  {"value": value, "known": ", ".join(drugs())})
    return value


ReportDate = Annotated[date, BeforeValidator(_parse_date), AfterValidator(_date_in_range)]
Iso3 = Annotated[str, AfterValidator(_country)]
DrugCode = Annotated[str, AfterValidator(_drug)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]
Amount = Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False)]
