"""Reference data the rules check against (shared/reference: drugs, units, ISO codes) and the dates they allow."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from shared.reference import Conversion, Drug, conversions, countries, currencies, drugs

__all__ = ["EARLIEST_DATE", "Conversion", "Drug", "conversions", "countries", "currencies", "drugs",
           "latest_allowed_date"]

EARLIEST_DATE = date(1990, 1, 1)

# The timezone furthest ahead: its local date is the latest date anywhere on Earth.
_FURTHEST_AHEAD = timezone(timedelta(hours=14))


def latest_allowed_date() -> date:
    """Today in the timezone furthest ahead (UTC+14): nowhere on Earth is a later date today."""
    return datetime.now(_FURTHEST_AHEAD).date()
