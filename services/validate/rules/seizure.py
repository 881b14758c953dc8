"""Seizure rules (DOMAIN.md, `seizure`, schema_version 1) and quantity normalisation."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.validate.rules.fields import Amount, Count, DrugCode, Iso3, ReportDate, Text
from services.validate.rules.reference import conversions, drugs

Unit = Literal["kg", "g", "l", "ml", "unit"]
Transport = Literal["land", "air", "sea", "rail", "postal", "other", "unknown"]
Route = Literal["balkan", "northern", "southern", "other", "unknown"]


class Seizure(BaseModel):
    """One seizure event (pillars 1 and 3)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    seized_on: ReportDate
    country: Iso3
    place: Text
    lat: Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)] | None = None
    lon: Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)] | None = None
    drug: DrugCode
    quantity: Amount
    unit: Unit
    cases: Annotated[Count, Field(ge=1)] = 1
    persons_arrested: Count = 0
    transport: Transport
    route: Route
    origin: Iso3 | None = None
    destination: Iso3 | None = None
    transit: Annotated[list[Iso3], Field(max_length=30)] = []
    agency: Text | None = None


def cross_field_problems(data: dict[str, Any], invalid: set[str]) -> list[tuple[str, str, str]]:
    """Rules spanning fields, checked on the fields that are themselves valid: (field, msg, code)."""
    problems: list[tuple[str, str, str]] = []
    has_lat, has_lon = data.get("lat") is not None, data.get("lon") is not None
    if has_lat != has_lon:
        missing, given = ("lon", "lat") if has_lat else ("lat", "lon")
        problems.append((missing, f"is required when {given} is given (coordinates come in pairs)", "coordinates_pair"))
    if not {"drug", "unit"} & invalid and "drug" in data and "unit" in data:
        drug = drugs()[data["drug"]]
        if data["unit"] not in drug.units:
            problems.append(("unit", f"{data['unit']!r} does not suit {drug.code} ({' or '.join(drug.forms)}); "
                                     f"use {', '.join(drug.units)}", "unit_for_drug"))
    return problems


def normalise(seizure: Seizure) -> dict[str, Any]:
    """The validated seizure as JSON, plus the quantity in kg, litres or units and the rules used."""
    version, table = conversions()
    conversion = table[seizure.unit]
    quantity = Decimal(repr(seizure.quantity)) * conversion.factor
    data = seizure.model_dump(mode="json")
    data["normalised"] = {"quantity": float(quantity), "unit": conversion.to, "rules": version}
    return data
