"""Reference data: the lists the rules check submissions against and the API publishes, each with its version.

The drug list and the unit conversions are versioned files beside this module; country and
currency codes are ISO 3166-1 and ISO 4217 as pycountry ships them (its version is theirs); the
code lists of single fields (routes, markets...) are the types below, which the rules' models use,
versioned with the release that defines them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal, get_args

import pycountry

__all__ = ["CODE_LISTS", "LISTS", "CaseType", "Conversion", "Drug", "Gender", "ListName", "Market", "ReferenceList",
           "Route", "Transport", "TreatmentService", "conversions", "countries", "currencies", "drugs",
           "reference_list"]

DATA = Path(__file__).resolve().parent
NOT_MONEY = frozenset({"XXX", "XTS"})
"""ISO 4217 codes that name no money at all: a price or an amount in them means nothing."""

Route = Literal["balkan", "northern", "southern", "other", "unknown"]
Transport = Literal["land", "air", "sea", "rail", "postal", "other", "unknown"]
Market = Literal["retail", "wholesale"]
CaseType = Literal["money_laundering_investigation", "asset_seizure", "cash_smuggling", "informal_value_transfer",
                   "other"]
Gender = Literal["female", "male", "other", "unknown"]
TreatmentService = Literal["detox", "opioid_agonist", "psychosocial", "harm_reduction", "residential", "outpatient"]
CODE_LISTS: dict[str, tuple[Any, str]] = {
    "routes": (Route, "a seizure's trafficking `route`"),
    "transports": (Transport, "a seizure's `transport`"),
    "markets": (Market, "a price's `market`"),
    "case_types": (CaseType, "a financial case's `case_type`"),
    "genders": (Gender, "a training participant's `gender`"),
    "treatment_services": (TreatmentService, "a treatment facility's `services`"),
}
"""Each single field's code list: its type and what it is for."""

ListName = Literal["drugs", "units", "countries", "currencies", "routes", "transports", "markets", "case_types",
                   "genders", "treatment_services"]
LISTS: tuple[ListName, ...] = get_args(ListName)


@dataclass(frozen=True)
class Drug:
    code: str
    category: str
    forms: tuple[str, ...]
    units: tuple[str, ...]


@dataclass(frozen=True)
class Conversion:
    to: str
    factor: Decimal


@dataclass(frozen=True)
class ReferenceList:
    """One published list: its name, version, where it comes from, and its items (each with a `code`)."""

    name: ListName
    version: str
    source: str
    items: list[dict[str, Any]]


@cache
def _file(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / f"{name}.v1.json").read_text())
    return loaded


@cache
def drugs() -> dict[str, Drug]:
    """The drug list: code → category, forms and the units those forms allow."""
    raw = _file("drugs")
    forms: dict[str, list[str]] = raw["forms"]
    table = {}
    for code, spec in raw["drugs"].items():
        units = [u for form in spec["forms"] for u in forms[form]] + spec.get("also_units", [])
        table[code] = Drug(code, spec["category"], tuple(spec["forms"]), tuple(dict.fromkeys(units)))
    return table


@cache
def conversions() -> tuple[str, dict[str, Conversion]]:
    """The unit conversion table and its version label (recorded with every normalised value)."""
    raw = _file("units")
    return raw["version"], {u: Conversion(c["to"], Decimal(c["factor"])) for u, c in raw["units"].items()}


@cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-3 codes."""
    return frozenset(c.alpha_3 for c in pycountry.countries)


@cache
def currencies() -> frozenset[str]:
    """ISO 4217 alphabetic codes, less the two that name no currency (XXX, XTS)."""
    return frozenset(c.alpha_3 for c in pycountry.currencies) - NOT_MONEY


@cache
def reference_list(name: ListName) -> ReferenceList:
    """The list `name` as the API publishes it, items in code order."""
    if name == "drugs":
        raw = _file("drugs")
        return ReferenceList(name, raw["version"], raw["source"], [
            {"code": d.code, "category": d.category, "forms": list(d.forms), "units": list(d.units)}
            for d in sorted(drugs().values(), key=lambda d: d.code)])
    if name == "units":
        raw = _file("units")
        return ReferenceList(name, raw["version"], raw["source"], [
            {"code": code, "to": c["to"], "factor": c["factor"]} for code, c in sorted(raw["units"].items())])
    if name in CODE_LISTS:
        codes, source = CODE_LISTS[name]
        return ReferenceList(name, f"dmp-pipeline {version('dmp-pipeline')}", f"the codes of {source}",
                             [{"code": code} for code in get_args(codes)])
    iso = f"pycountry {version('pycountry')}"
    if name == "countries":
        return ReferenceList(name, f"iso3166-1 ({iso})", "ISO 3166-1 alpha-3", [
            {"code": c.alpha_3, "name": c.name} for c in sorted(pycountry.countries, key=lambda c: c.alpha_3)])
    return ReferenceList(name, f"iso4217 ({iso})", "ISO 4217, less XXX and XTS (no money)", [
        {"code": c.alpha_3, "name": c.name} for c in sorted(pycountry.currencies, key=lambda c: c.alpha_3)
        if c.alpha_3 not in NOT_MONEY])
