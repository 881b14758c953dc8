"""What analysts read, made from view documents: rows, GeoJSON features and the fact sheet. Pure.

Everything that is not a plain sum is decided here, from exact counters (see projection.py):
the min and max price, the latest period per treatment facility, and distinct people trained.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, Field

from services.aggregate.projection import DRUG, HIGH, LOW, QUANTITY_SCALE
from shared.store import Document

ANNUAL = 13
"""A `YYYY` treatment report is a stock at the year's end: it ranks after December's."""


def _count(doc: Document, name: str = "submissions") -> int:
    return int(doc.get(name, 0))


def _scaled(doc: Document, name: str) -> float:
    return int(doc.get(name, 0)) / QUANTITY_SCALE


class SeizureRow(BaseModel):
    country: str
    year: int
    drug: str
    cases: int
    quantity: float = Field(description="Total in the normalised unit.")
    unit: str = Field(description="The normalised unit: kg, l or unit.")
    persons_arrested: int
    submissions: int


class RouteRow(BaseModel):
    route: str
    month: str = Field(description="YYYY-MM")
    drug: str
    unit: str
    cases: int
    quantity: float
    submissions: int


class PriceRow(BaseModel):
    country: str
    year: int
    drug: str
    market: str
    currency: str
    observations: int
    min: float = Field(description="Lowest price seen: price_min where given, else the typical price.")
    max: float = Field(description="Highest price seen: price_max where given, else the typical price.")
    mean: float = Field(description="Mean of the typical prices.")
    per: Literal["g"] = "g"


class FinancialRow(BaseModel):
    country: str
    year: int
    case_type: str
    currency: str
    cases: int
    amount: float
    persons_charged: int


def seizure_row(doc: Document) -> SeizureRow:
    return SeizureRow(country=doc["country"], year=doc["year"], drug=doc["drug"], cases=_count(doc, "cases"),
                      quantity=_scaled(doc, "quantity_micro"), unit=doc["unit"],
                      persons_arrested=_count(doc, "persons_arrested"), submissions=_count(doc))


def route_row(doc: Document) -> RouteRow:
    return RouteRow(route=doc["route"], month=doc["month"], drug=doc["drug"], unit=doc["unit"],
                    cases=_count(doc, "cases"), quantity=_scaled(doc, "quantity_micro"), submissions=_count(doc))


def price_row(doc: Document) -> PriceRow:
    observations = _count(doc)
    lows = [int(name[len(LOW):]) for name, n in doc.items() if name.startswith(LOW) and int(n) > 0]
    highs = [int(name[len(HIGH):]) for name, n in doc.items() if name.startswith(HIGH) and int(n) > 0]
    return PriceRow(country=doc["country"], year=doc["year"], drug=doc["drug"], market=doc["market"],
                    currency=doc["currency"], observations=observations, min=min(lows) / QUANTITY_SCALE,
                    max=max(highs) / QUANTITY_SCALE,
                    mean=_count(doc, "typical_micro") / (observations * QUANTITY_SCALE))


def financial_row(doc: Document) -> FinancialRow:
    return FinancialRow(country=doc["country"], year=doc["year"], case_type=doc["case_type"],
                        currency=doc["currency"], cases=_count(doc), amount=_scaled(doc, "amount_micro"),
                        persons_charged=_count(doc, "persons_charged"))


class Point(BaseModel):
    type: Literal["Point"] = "Point"
    coordinates: tuple[float, float] = Field(description="[longitude, latitude]")


class SeizureProperties(BaseModel):
    id: str = Field(description="The submission id.")
    drug: str
    seized_on: str
    country: str
    place: str
    quantity: float
    unit: str
    route: str | None = Field(None, description="The trafficking route (absent on points projected before it was "
                                                "kept: `dmp admin views rebuild` adds it).")


class Feature(BaseModel):
    type: Literal["Feature"] = "Feature"
    geometry: Point
    properties: SeizureProperties


class FeatureCollection(BaseModel):
    """A GeoJSON FeatureCollection; `next` is a foreign member carrying the paging cursor."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[Feature]
    next: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last page.")


def feature(doc: Document) -> Feature:
    return Feature(geometry=Point(coordinates=(doc["lon"], doc["lat"])),
                   properties=SeizureProperties(id=doc["_id"], drug=doc["drug"], seized_on=doc["seized_on"],
                                                country=doc["country"], place=doc["place"],
                                                quantity=doc["quantity"], unit=doc["unit"],
                                                route=doc.get("route")))


class TrainingRow(BaseModel):
    country: str = Field(description="The participants' country.")
    year: int
    agency: str
    programme: str
    people: int = Field(description="Distinct people trained.")
    participations: int = Field(description="Course participations; more than `people` when some came twice.")


class Repeat(BaseModel):
    country: str | None = Field(None, description="The participant's country (absent on repeats projected before "
                                                  "it was kept: `dmp admin views rebuild` adds it).")
    pseudonym: str
    title_key: str = Field(description="The normalised course title they were trained on more than once.")
    participations: int


TrainingKey = tuple[str, int, str, str]


def training_rows(trainees: Iterable[Document]) -> list[tuple[TrainingKey, TrainingRow]]:
    """Distinct people per country × year × agency × programme, ordered by that key."""
    groups: dict[TrainingKey, tuple[set[str], int]] = {}
    for doc in trainees:
        key = (doc["country"], doc["year"], doc["agency"], doc["programme"])
        people, participations = groups.get(key, (set(), 0))
        people.add(doc["pseudonym"])
        groups[key] = people, participations + _count(doc)
    return [(key, TrainingRow(country=key[0], year=key[1], agency=key[2], programme=key[3], people=len(people),
                              participations=participations))
            for key, (people, participations) in sorted(groups.items())]


def repeats_among(repeats: Iterable[Document], pseudonyms: set[str] | None) -> list[Repeat]:
    """People trained more than once on one course title, among `pseudonyms` (everyone when None)."""
    return sorted((Repeat(country=d.get("country"), pseudonym=d["pseudonym"], title_key=d["title_key"],
                          participations=_count(d))
                   for d in repeats
                   if _count(d) > 1 and (pseudonyms is None or d["pseudonym"] in pseudonyms)),
                  key=lambda r: (r.pseudonym, r.title_key))


class FacilityPeriod(BaseModel):
    facility_id: str
    period: str = Field(description="The facility's latest period reported in the year.")
    capacity: int
    in_treatment: int
    reports: int = Field(description="Reports for this period; above 1, the figures are their mean.")


class TreatmentSummary(BaseModel):
    facilities: int
    capacity: int
    in_treatment: int
    in_treatment_by_drug: dict[str, int]
    by_facility: list[FacilityPeriod]


def _period_rank(period: str) -> int:
    return int(period[5:7]) if len(period) > 4 else ANNUAL


def _mean(doc: Document, name: str) -> int:
    return round(Fraction(_count(doc, name), _count(doc)))


def treatment_summary(docs: Iterable[Document]) -> TreatmentSummary:
    """Capacity and people in treatment are stocks: each facility counts with its latest period only."""
    latest: dict[str, Document] = {}
    for doc in docs:
        held = latest.get(doc["facility_id"])
        if held is None or _period_rank(doc["period"]) > _period_rank(held["period"]):
            latest[doc["facility_id"]] = doc
    rows = [FacilityPeriod(facility_id=f, period=d["period"], capacity=_mean(d, "capacity"),
                           in_treatment=_mean(d, "in_treatment_total"), reports=_count(d))
            for f, d in sorted(latest.items())]
    by_drug: dict[str, int] = {}
    for doc in latest.values():
        for name in doc:
            if name.startswith(DRUG):
                by_drug[name[len(DRUG):]] = by_drug.get(name[len(DRUG):], 0) + _mean(doc, name)
    return TreatmentSummary(facilities=len(rows), capacity=sum(r.capacity for r in rows),
                            in_treatment=sum(r.in_treatment for r in rows),
                            in_treatment_by_drug=dict(sorted(by_drug.items())), by_facility=rows)


class TrainingSummary(BaseModel):
    courses_held: int = Field(description="Courses hosted by the country that year.")
    course_participations: int = Field(description="Participations in those courses, from any country.")
    people_trained: int = Field(description="Distinct people from the country trained that year, anywhere.")
    people_trained_twice_on_a_title: int = Field(
        description="Of those, people trained more than once on the same course title (in any year).")


def training_summary(courses: Iterable[Document], trainees: Iterable[Document],
                     repeats: Iterable[Document]) -> TrainingSummary:
    courses = list(courses)
    people = {d["pseudonym"] for d in trainees}
    return TrainingSummary(courses_held=len(courses), course_participations=sum(_count(d) for d in courses),
                           people_trained=len(people),
                           people_trained_twice_on_a_title=len({r.pseudonym for r in repeats_among(repeats, people)}))


class FactSheet(BaseModel):
    """One country's year, side by side."""

    country: str
    year: int
    seizures: list[SeizureRow]
    prices: list[PriceRow]
    financial: list[FinancialRow]
    treatment: TreatmentSummary
    trainings: TrainingSummary


ARQ_TITLE = ("UNODC Annual Report Questionnaire: extent and patterns of and trends in drug crop cultivation, "
             "drug manufacture and trafficking; national drug seizures, and drug prices")


class ArqSeizure(BaseModel):
    """One line of the national seizure table: one drug in one unit."""

    drug: str
    quantity: float = Field(description="Total quantity seized in `unit`.")
    unit: str = Field(description="kg (mass), l (volume) or unit (tablets, doses).")
    cases: int = Field(description="Number of seizure cases.")
    persons_arrested: int
    submissions: int = Field(description="Seizure reports behind the figures.")


class ArqPrice(BaseModel):
    """One line of the price table: one drug on one market level, in one currency, per gram."""

    drug: str
    market: str = Field(description="retail or wholesale")
    currency: str
    observations: int
    minimum: float
    maximum: float
    typical: float = Field(description="Mean of the typical prices observed.")
    per: Literal["g"] = "g"


class ArqPartition(BaseModel):
    partition: int
    last_offset: int | None = Field(
        description="Offset of the last validated event that changed a figure of this export.")
    processed_through: int | None = Field(
        description="Every validated event up to this offset had been applied when the export was read.")


class ArqSource(BaseModel):
    """Where the figures come from: the validated topic's partitions and offsets, and the views' generation."""

    topic: str
    generation: int
    partitions: list[ArqPartition]


class ArqExport(BaseModel):
    questionnaire: str = ARQ_TITLE
    country: str
    reporting_year: int
    generated_at: str
    seizures: list[ArqSeizure]
    prices: list[ArqPrice]
    source: ArqSource


def arq_export(country: str, year: int, seizures: Iterable[Document], prices: Iterable[Document],
               progress: Iterable[Document], topic: str, generation: int, generated_at: str) -> ArqExport:
    """The questionnaire's seizure and price tables for one country's reporting year, with the offsets behind them."""
    seizures, prices = list(seizures), list(prices)
    last: dict[int, int] = {}
    for doc in seizures + prices:
        for source, offset in doc.get("wm", {}).items():
            if str(source).isdigit():
                last[int(source)] = max(last.get(int(source), -1), int(offset))
    processed = {int(p["partition"]): int(p["next_offset"]) - 1 for p in progress if p.get("kind") == "validated"}
    partitions = [ArqPartition(partition=p, last_offset=last.get(p), processed_through=processed.get(p))
                  for p in sorted(last.keys() | processed.keys())]
    table = sorted((seizure_row(d) for d in seizures), key=lambda r: (r.drug, r.unit))
    price_table = sorted((price_row(d) for d in prices), key=lambda r: (r.drug, r.market, r.currency))
    return ArqExport(
        country=country, reporting_year=year, generated_at=generated_at,
        seizures=[ArqSeizure(drug=r.drug, quantity=r.quantity, unit=r.unit, cases=r.cases,
                             persons_arrested=r.persons_arrested, submissions=r.submissions) for r in table],
        prices=[ArqPrice(drug=r.drug, market=r.market, currency=r.currency, observations=r.observations,
                         minimum=r.min, maximum=r.max, typical=r.mean) for r in price_table],
        source=ArqSource(topic=topic, generation=generation, partitions=partitions))


ARQ_CSV_COLUMNS = ("section", "country", "reporting_year", "drug", "unit", "quantity", "cases", "persons_arrested",
                   "submissions", "market", "currency", "observations", "minimum", "maximum", "typical", "per",
                   "topic", "generation", "partition", "last_offset", "processed_through", "generated_at")
"""The export as one CSV table: `section` says which table a line belongs to; other sections' columns stay empty."""


def arq_csv_rows(export: ArqExport) -> list[dict[str, object]]:
    """The export's lines for `ARQ_CSV_COLUMNS`: `seizures`, then `prices`, then one `source` line per partition."""
    common = {"country": export.country, "reporting_year": export.reporting_year}
    source = {"topic": export.source.topic, "generation": export.source.generation,
              "generated_at": export.generated_at}
    return ([{"section": "seizures", **common, **row.model_dump()} for row in export.seizures]
            + [{"section": "prices", **common, **row.model_dump()} for row in export.prices]
            + [{"section": "source", **common, **source, **p.model_dump()} for p in export.source.partitions]
            + ([] if export.source.partitions else [{"section": "source", **common, **source}]))
