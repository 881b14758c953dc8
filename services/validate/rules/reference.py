"""Reference data the rules check against: ISO codes from pycountry, drugs and units from versioned files."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path

import pycountry

DATA = Path(__file__).resolve().parent / "data"
EARLIEST_DATE = date(1990, 1, 1)

# ISO 4217 codes that name no money at all: a price or an amount in them means nothing.
_NOT_MONEY = frozenset({"XXX", "XTS"})
# The timezone furthest ahead: its local date is the latest date anywhere on Earth.
_FURTHEST_AHEAD = timezone(timedelta(hours=14))


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


@cache
def drugs() -> dict[str, Drug]:
    """The drug list: code → category, forms and the units those forms allow."""
    raw = json.loads((DATA / "drugs.v1.json").read_text())
    forms: dict[str, list[str]] = raw["forms"]
    table = {}
    for code, spec in raw["drugs"].items():
        units = [u for form in spec["forms"] for u in forms[form]] + spec.get("also_units", [])
        table[code] = Drug(code, spec["category"], tuple(spec["forms"]), tuple(dict.fromkeys(units)))
    return table


@cache
def conversions() -> tuple[str, dict[str, Conversion]]:
    """The unit conversion table and its version label (recorded with every normalised value)."""
    raw = json.loads((DATA / "units.v1.json").read_text())
    return raw["version"], {u: Conversion(c["to"], Decimal(c["factor"])) for u, c in raw["units"].items()}


@cache
def countries() -> frozenset[str]:
    """ISO 3166-1 alpha-3 codes."""
    return frozenset(c.alpha_3 for c in pycountry.countries)


@cache
def currencies() -> frozenset[str]:
    """ISO 4217 alphabetic codes, less the two that name no currency (XXX, XTS)."""
    return frozenset(c.alpha_3 for c in pycountry.currencies) - _NOT_MONEY


def latest_allowed_date() -> date:
    """Today in the timezone furthest ahead (UTC+14): nowhere on Earth is a later date today."""
    return datetime.now(_FURTHEST_AHEAD).date()
