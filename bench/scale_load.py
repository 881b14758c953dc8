"""Submissions of all five types for the scale benchmark, and loading them through ingest's batch endpoint.

The mix is shaped like a year of field reports, not like the e2e stage's seizures: most are seizures,
then prices, financial cases, facility reports and training participations; many countries (a few
report most), ten years, every drug in units its form allows. Some are amended later (the same id
with new data) and some break a rule validate checks, so they are rejected.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import orjson

from bench.http import LoadResult, closed_loop
from bench.payloads import POINTS
from tests.factories import (
    financial_case_data,
    participant_submission_data,
    price_data,
    seizure_data,
    training_submission_data,
    treatment_facility_data,
)

TYPE_SHARES = {"seizure": 0.62, "price": 0.14, "financial_case": 0.08, "treatment_facility": 0.06,
               "training": 0.10}
COUNTRIES = ("AFG", "IRN", "PAK", "TUR", "TJK", "UZB", "KAZ", "KGZ", "TKM", "AZE", "ARM", "GEO", "RUS", "UKR",
             "BGR", "ROU", "SRB", "GRC", "ALB", "MKD", "BIH", "HRV", "AUT", "DEU", "NLD", "BEL", "FRA", "ITA", "ESP",
             "GBR", "POL", "IND", "CHN", "ARE", "OMN", "SAU", "IRQ", "EGY", "KEN", "TZA", "MOZ", "ZAF", "NGA", "LKA",
             "BGD", "MMR", "THA")
COUNTRY_WEIGHTS = tuple(1 / (rank + 1) for rank in range(len(COUNTRIES)))
"""Zipf-like: the first countries on the routes report most."""
DRUG_UNITS = {"opium": ("kg", "g"), "heroin": ("kg", "g"), "morphine": ("kg", "g"),
              "acetic_anhydride": ("l", "ml", "kg"), "other_precursor": ("kg", "l"), "cannabis_herb": ("kg", "g"),
              "cannabis_resin": ("kg", "g"), "methamphetamine": ("kg", "unit"), "amphetamine": ("g", "unit"),
              "ecstasy": ("unit", "g"), "captagon": ("unit",), "cocaine": ("kg", "g"), "tramadol": ("unit", "g"),
              "other": ("kg", "l", "unit")}
DRUG_WEIGHTS = (30, 25, 3, 4, 2, 12, 10, 6, 2, 2, 2, 4, 3, 1)
PRICE_DRUGS = ("heroin", "opium", "cannabis_resin", "methamphetamine", "cocaine")
ROUTES = ("balkan", "northern", "southern", "other", "unknown")
TRANSPORTS = ("land", "air", "sea", "rail", "postal", "other", "unknown")
CURRENCIES = ("USD", "EUR", "AFN", "PKR", "TJS", "KZT")
CASE_TYPES = ("money_laundering_investigation", "asset_seizure", "cash_smuggling", "informal_value_transfer", "other")
SERVICES = ("detox", "opioid_agonist", "psychosocial", "harm_reduction", "residential", "outpatient")
FIRST_DAY, DAYS = date(2015, 1, 1), 10 * 365
AMENDED = 0.05
"""Share of submissions sent again later with new data (an amendment)."""
REJECTED = 0.03
"""Share of new submissions that break a rule validate checks."""


@dataclass
class Corpus:
    """What has been sent so far: every submission's id and type (amendments pick from them)."""

    seed: int
    sent: list[tuple[str, str]] = field(default_factory=list)
    amendments: int = 0
    broken: int = 0
    """Submissions sent to be rejected (new ones that break a rule)."""

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - reproducible test data, not secrets

    @property
    def submissions(self) -> int:
        return len(self.sent)

    def next(self, count: int) -> list[dict[str, Any]]:
        """`count` new submissions, with amendments of earlier ones (sent or in this lot) mixed in after them."""
        out: list[dict[str, Any]] = []
        for _ in range(count):
            out.append(self._new())
            if self.rng.random() < AMENDED:
                sid, type_ = self.sent[self.rng.randrange(len(self.sent))]
                out.append(self._amendment(sid, type_))
        return out

    def _new(self) -> dict[str, Any]:
        type_ = self.rng.choices(tuple(TYPE_SHARES), weights=tuple(TYPE_SHARES.values()))[0]
        sid = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        self.sent.append((sid, type_))
        body = self._envelope(sid, type_)
        if self.rng.random() < REJECTED:
            self.broken += 1
            body["data"] = broken(type_, body["data"])
        return body

    def _amendment(self, sid: str, type_: str) -> dict[str, Any]:
        self.amendments += 1
        return self._envelope(sid, type_)

    def _envelope(self, sid: str, type_: str) -> dict[str, Any]:
        rng = self.rng
        day = FIRST_DAY + timedelta(days=rng.randrange(DAYS))
        country = rng.choices(COUNTRIES, weights=COUNTRY_WEIGHTS)[0]
        if type_ == "seizure":
            drug = rng.choices(tuple(DRUG_UNITS), weights=DRUG_WEIGHTS)[0]
            where: dict[str, Any] = {}
            if country in POINTS and rng.random() < 0.5:  # the outlines the rules check are known for these
                lat, lon = POINTS[country]
                where = {"coordinates": {"lat": round(lat + rng.uniform(-0.2, 0.2), 5),
                                         "lon": round(lon + rng.uniform(-0.2, 0.2), 5)}}
            data = seizure_data(seized_on=day.isoformat(), country=country, drug=drug,
                                unit=rng.choice(DRUG_UNITS[drug]), quantity=round(rng.lognormvariate(3, 2), 3) + 0.001,
                                cases=rng.choice((1, 1, 1, 2, 3)), persons_arrested=rng.randrange(0, 6),
                                transport=rng.choice(TRANSPORTS), route=rng.choice(ROUTES), **where)
            return {"id": sid, "type": type_, "schema_version": 2, "data": data}
        if type_ == "price":
            typical = round(rng.lognormvariate(6, 1.5), 2) + 1
            data = price_data(observed_on=day.isoformat(), country=country, drug=rng.choice(PRICE_DRUGS),
                              market=rng.choice(("retail", "wholesale")), price_typical=typical,
                              price_min=round(typical * 0.8, 2), price_max=round(typical * 1.3, 2),
                              currency=rng.choice(CURRENCIES), per=rng.choice(("g", "kg")),
                              purity_pct=round(rng.uniform(5, 90), 1))
        elif type_ == "financial_case":
            data = financial_case_data(reported_on=day.isoformat(), country=country, case_type=rng.choice(CASE_TYPES),
                                       amount=round(rng.lognormvariate(11, 2), 2) + 1,
                                       currency=rng.choice(CURRENCIES), linked_drug=rng.choice(PRICE_DRUGS),
                                       persons_charged=rng.randrange(0, 8))
        elif type_ == "treatment_facility":
            drugs = rng.sample(PRICE_DRUGS, rng.randrange(1, 4))
            data = treatment_facility_data(facility_id=f"{country}-{rng.randrange(400):03d}", country=country,
                                           name=f"Facility {rng.randrange(400)}",
                                           period=f"{day.year}-{day.month:02d}" if rng.random() < 0.7 else
                                           str(day.year), services=rng.sample(SERVICES, rng.randrange(1, 4)),
                                           capacity=rng.randrange(10, 500),
                                           in_treatment={d: rng.randrange(0, 200) for d in drugs})
        else:
            person = participant_submission_data(national_id=f"P{rng.randrange(2_000_000):07d}",
                                                 full_name=f"Participant {rng.randrange(2_000_000)}", country=country,
                                                 gender=rng.choice(("female", "male")))
            course = rng.randrange(3000)
            data = training_submission_data(course_id=f"TRN-{course:04d}", course_title=f"Course {course % 90}",
                                            starts_on=day.isoformat(), ends_on=(day + timedelta(days=4)).isoformat(),
                                            host_country=country, participant=person)
        return {"id": sid, "type": type_, "schema_version": 1, "data": data}


def broken(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    """`data` with one rule broken that only validate checks (ingest accepts the envelope)."""
    if type_ == "seizure":
        return {**data, "drug": "heroin", "unit": "l"}
    if type_ == "price":
        return {**data, "price_min": data["price_typical"] * 2}
    if type_ == "financial_case":
        return {**data, "currency": "ABC"}
    if type_ == "treatment_facility":
        return {**data, "period": "2020-13"}
    return {**data, "ends_on": "2014-01-01"}


def batches(bodies: list[dict[str, Any]], size: int) -> Iterator[bytes]:
    for start in range(0, len(bodies), size):
        yield orjson.dumps(bodies[start:start + size])


async def post_all(host: str, port: int, bodies: list[dict[str, Any]], headers: dict[str, str], size: int = 500,
                   concurrency: int = 2) -> LoadResult:
    """POST `bodies` to /v1/submissions/batch, `size` per request; every item must be received."""

    def received(response: Any) -> int:
        return int(orjson.loads(response.body)["received"])

    return await closed_loop(host, port, "/v1/submissions/batch", list(batches(bodies, size)), concurrency,
                             ok=(207,), items_of=received, headers=headers)
