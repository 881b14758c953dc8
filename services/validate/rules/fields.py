"""Field types shared by the submission types: report dates and periods, ISO codes, codes from lists."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, StringConstraints
from pydantic_core import PydanticCustomError

from services.validate.rules.reference import (
    EARLIEST_DATE,
    countries,
    currencies,
    drugs,
    latest_allowed_date,
)

# [0-9], not \d: \d also matches other scripts' digits, which int() and fromisoformat would then read.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PERIOD = re.compile(r"([0-9]{4})(?:-([0-9]{2}))?")


def _parse_date(value: Any) -> Any:
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
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


def period_bounds(value: str) -> tuple[int, int | None]:
    """(year, month or None) of a period already validated as `YYYY` or `YYYY-MM`."""
    match = _PERIOD.fullmatch(value)
    assert match is not None, value
    year, month = match.groups()
    return int(year), int(month) if month is not None else None


def _period(value: str) -> str:
    if not _PERIOD.fullmatch(value):
        raise PydanticCustomError("period_format", "must be a year (YYYY) or a month (YYYY-MM), got '{value}'",
                                  {"value": value})
    year, month = period_bounds(value)
    if month is not None and not 1 <= month <= 12:
        raise PydanticCustomError("period_invalid", "{value} is not a calendar month", {"value": value})
    if year < EARLIEST_DATE.year:
        raise PydanticCustomError("date_too_early", "must not be before {earliest}",
                                  {"earliest": str(EARLIEST_DATE.year)})
    if date(year, month or 1, 1) > latest_allowed_date():
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


def _currency(value: str) -> str:
    if value not in currencies():
        code = value.upper()
        hint = f" (did you mean {code}?)" if code in currencies() else ""
        raise PydanticCustomError("currency_code", "'{value}' is not an ISO 4217 currency code{hint}",
                                  {"value": value, "hint": hint})
    return value


def _drug(value: str) -> str:
    if value not in drugs():
        raise PydanticCustomError("drug_code", "'{value}' is not on the drug list ({known})",
                                  {"value": value, "known": ", ".join(drugs())})
    return value


ReportDate = Annotated[date, BeforeValidator(_parse_date), AfterValidator(_date_in_range)]
ReportPeriod = Annotated[str, AfterValidator(_period),
                         Field(json_schema_extra={"pattern": r"^[0-9]{4}(-[0-9]{2})?$"})]
Iso3 = Annotated[str, AfterValidator(_country)]
Currency = Annotated[str, AfterValidator(_currency)]
DrugCode = Annotated[str, AfterValidator(_drug)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]
Amount = Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False)]

CrossFieldProblem = tuple[str, str, str]
"""(field, message, code): a rule spanning fields, reported on the field that breaks it."""


def as_json(model: BaseModel) -> dict[str, Any]:
    """`model.model_dump(mode="json")`, straight from the model's serializer: the same dict, without the wrapper's
    keyword handling (every validated event is dumped once, so this is on the hot path)."""
    data: dict[str, Any] = model.__pydantic_serializer__.to_python(model, mode="json")
    return data
