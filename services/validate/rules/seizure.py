"""Seizure rules (DOMAIN.md, `seizure`), schema versions 1 and 2, the v1 → v2 upcaster and normalisation.

Version 2 replaces v1's optional `lat` and `lon` by one optional `coordinates: {lat, lon}`, so
"both or neither" is a matter of shape rather than a cross-field rule. A v1 submission is checked
against the v1 model (errors name the fields the officer sent), then upcast to v2.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.validate.rules import borders
from services.validate.rules.fields import Amount, Count, CrossFieldProblem, DrugCode, Iso3, ReportDate, Text, as_json
from services.validate.rules.reference import conversions, drugs
from shared.reference import Route, Transport

Unit = Literal["kg", "g", "l", "ml", "unit"]
Latitude = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]


class _SeizureFields(BaseModel):
    """The fields every seizure schema version shares."""

    model_config = ConfigDict(extra="forbid", strict=True)

    seized_on: ReportDate
    country: Iso3
    place: Text
    drug: DrugCode
    quantity: Amount
    unit: Unit
    cases: Annotated[Count, Field(ge=1)] = 1
    persons_arrested: Count = 0
    transport: Transport
    route: Route
    origin: Iso3 | None = None
    destination: Iso3 | None = None
    # A factory, not `= []`, which pydantic would deep-copy for every seizure; the schema still says [].
    transit: Annotated[list[Iso3], Field(max_length=30)] = Field(default_factory=list,
                                                                 json_schema_extra={"default": []})
    agency: Text | None = None


class SeizureV1(_SeizureFields):
    """One seizure event (pillars 1 and 3), schema_version 1: coordinates as two optional numbers."""

    lat: Latitude | None = None
    lon: Longitude | None = None


class Coordinates(BaseModel):
    """Where a seizure happened (WGS 84 degrees)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    lat: Latitude
    lon: Longitude


class Seizure(_SeizureFields):
    """One seizure event (pillars 1 and 3), schema_version 2: coordinates as one optional pair."""

    coordinates: Coordinates | None = None


def cross_field_problems_v1(data: dict[str, Any], invalid: set[str]) -> list[CrossFieldProblem]:
    """v1's rules spanning fields: coordinates in pairs, plus every v2 rule."""
    problems: list[CrossFieldProblem] = []
    has_lat, has_lon = data.get("lat") is not None, data.get("lon") is not None
    if has_lat != has_lon:
        missing, given = ("lon", "lat") if has_lat else ("lat", "lon")
        problems.append((missing, f"is required when {given} is given (coordinates come in pairs)", "coordinates_pair"))
    elif has_lat and not {"lat", "lon", "country"} & invalid:
        problems += _placement_problems("lat", data["country"], data["lat"], data["lon"])
    return problems + cross_field_problems(data, invalid)


def cross_field_problems(data: dict[str, Any], invalid: set[str]) -> list[CrossFieldProblem]:
    """Rules spanning fields, checked on the fields that are themselves valid: (field, msg, code)."""
    problems: list[CrossFieldProblem] = []
    if not {"drug", "unit"} & invalid and "drug" in data and "unit" in data:
        drug = drugs()[data["drug"]]
        if data["unit"] not in drug.units:
            problems.append(("unit", f"{data['unit']!r} does not suit {drug.code} ({' or '.join(drug.forms)}); "
                                     f"use {', '.join(drug.units)}", "unit_for_drug"))
    point = data.get("coordinates")
    if isinstance(point, dict) and not {"coordinates", "country"} & invalid:
        problems += _placement_problems("coordinates", data["country"], point["lat"], point["lon"])
    return problems


def _placement_problems(field: str, country: str, lat: float, lon: float) -> list[CrossFieldProblem]:
    """The coordinates must fall in or near `country` (borders.NEAR_KM), where its outline is known."""
    where = borders.placement(country, float(lat), float(lon))
    if where is None or where.near or where.km is None:
        return []
    return [(field, f"({lat}, {lon}) is about {where.km:,.0f} km outside {country}; coordinates must fall in "
                    f"{country} or within {borders.NEAR_KM:.0f} km of its borders (check the coordinates and "
                    f"the country, or leave the coordinates out)", "coordinates_outside_country")]


def upcast_seizure_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    """Validated v1 seizure data → v2: `lat` and `lon` become `coordinates` (or null). Pure."""
    upcast = dict(data)
    lat, lon = upcast.pop("lat", None), upcast.pop("lon", None)
    upcast["coordinates"] = None if lat is None or lon is None else {"lat": lat, "lon": lon}
    return upcast


def normalise(seizure: Seizure) -> dict[str, Any]:
    """The validated seizure as JSON, plus the quantity in kg, litres or units and the rules used."""
    version, table = conversions()
    conversion = table[seizure.unit]
    quantity = Decimal(repr(seizure.quantity)) * conversion.factor
    data = as_json(seizure)
    data["normalised"] = {"quantity": float(quantity), "unit": conversion.to, "rules": version}
    return data
