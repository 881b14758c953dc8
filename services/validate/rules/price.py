"""Price rules (DOMAIN.md, `price`, schema_version 1): an observed drug price, normalised to per gram."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.validate.rules.fields import (
    Amount,
    CrossFieldProblem,
    Currency,
    DrugCode,
    Iso3,
    ReportDate,
    Text,
    as_json,
)
from services.validate.rules.reference import conversions
from shared.reference import Market

PriceUnit = Literal["g", "kg"]
Percent = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]

NORMAL_UNIT = "g"


class Price(BaseModel):
    """One observed drug price on a market (market monitoring)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    observed_on: ReportDate
    country: Iso3
    place: Text
    drug: DrugCode
    market: Market
    price_typical: Amount
    price_min: Amount | None = None
    price_max: Amount | None = None
    currency: Currency
    per: PriceUnit
    purity_pct: Percent | None = None


def cross_field_problems(data: dict[str, Any], invalid: set[str]) -> list[CrossFieldProblem]:
    """min ≤ typical ≤ max, reported on min or max (typical is the figure the views use)."""
    def given(field: str) -> float | None:
        value = data.get(field)
        return None if field in invalid or not isinstance(value, int | float) else float(value)

    low, typical, high = given("price_min"), given("price_typical"), given("price_max")
    problems: list[CrossFieldProblem] = []
    if typical is not None:
        if low is not None and low > typical:
            problems.append(("price_min", f"must not exceed price_typical ({data['price_typical']})", "price_order"))
        if high is not None and high < typical:
            problems.append(("price_max", f"must not be below price_typical ({data['price_typical']})",
                             "price_order"))
    elif low is not None and high is not None and low > high:
        problems.append(("price_max", f"must not be below price_min ({data['price_min']})", "price_order"))
    return problems


def normalise(price: Price) -> dict[str, Any]:
    """The validated price as JSON, plus its prices per gram and the unit table used."""
    version, table = conversions()
    submitted, normal = table[price.per], table[NORMAL_UNIT]
    assert submitted.to == normal.to, (price.per, NORMAL_UNIT)
    # One `per` weighs factor(per) / factor(g) grams, so divide by that to get a price per gram.
    per_gram = normal.factor / submitted.factor

    def convert(value: float | None) -> float | None:
        return None if value is None else float(Decimal(repr(value)) * per_gram)

    data = as_json(price)
    data["normalised"] = {"per": NORMAL_UNIT, "price_typical": convert(price.price_typical),
                          "price_min": convert(price.price_min), "price_max": convert(price.price_max),
                          "rules": version}
    return data
