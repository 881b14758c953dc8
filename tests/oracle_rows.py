"""What analysts must read in every view, computed straight from what officers submitted.

Nothing here uses the projection (its buckets, keys, integer figures or helpers): each expected row is
built from the submitted fields with the domain's own rules (kg and litres, prices per gram, the latest
period of a facility, distinct people), and the rows actually shown are read through the read side's row
functions (report.py), which the API answers with. Quantities and amounts are exact fractions here,
compared to millionths (the precision the views promise).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

from services.aggregate import report
from shared.store import Document

Rows = dict[str, dict[Any, Any]]
"""view → row key → the row's figures."""

PER_KG = {"g": Fraction(1, 1000), "kg": Fraction(1), "mg": Fraction(1, 1_000_000)}
"""How many kg one submitted unit is."""
PER_G = {"g": Fraction(1), "kg": Fraction(1, 1000)}
"""How many of a price's unit one gram is (a price per kg is 1/1000 of that per gram)."""


def _six(value: Fraction) -> float:
    """A value as the views give it: to the millionth."""
    return round(float(value), 6)


def _period_rank(period: str) -> int:
    """Months rank by number; a whole year's report counts as the latest of that year."""
    return int(period[5:7]) if len(period) > 4 else 13


def _mean(total: int, count: int) -> int:
    return round(Fraction(total, count))


def expected_rows(current: Iterable[tuple[str, str, Mapping[str, Any]]]) -> Rows:
    """Every view's rows for the current valid version of each submission: (id, type, submitted data)."""
    rows: Rows = defaultdict(dict)
    seizures: dict[Any, list[Any]] = defaultdict(lambda: [0, Fraction(0), 0, 0])
    routes: dict[Any, list[Any]] = defaultdict(lambda: [0, Fraction(0), 0])
    prices: dict[Any, list[Fraction]] = defaultdict(list)
    lows: dict[Any, list[Fraction]] = defaultdict(list)
    highs: dict[Any, list[Fraction]] = defaultdict(list)
    financial: dict[Any, list[Any]] = defaultdict(lambda: [0, Fraction(0), 0])
    reports: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
    trained: dict[Any, list[str]] = defaultdict(list)
    titles: dict[tuple[str, str, str], int] = defaultdict(int)
    courses: dict[tuple[str, int], list[str]] = defaultdict(list)
    for sid, type_, data in current:
        if type_ == "seizure":
            kg = Fraction(repr(data["quantity"])) * PER_KG[data["unit"]]
            year, month = int(data["seized_on"][:4]), data["seized_on"][:7]
            row = seizures[(data["country"], year, data["drug"], "kg")]
            row[0] += data.get("cases", 1)
            row[1] += kg
            row[2] += data.get("persons_arrested", 0)
            row[3] += 1
            route = routes[(data.get("route") or "unknown", month, data["drug"], "kg")]
            route[0] += data.get("cases", 1)
            route[1] += kg
            route[2] += 1
            point = data.get("coordinates")
            if point:
                rows["map"][sid] = (point["lon"], point["lat"], data["drug"], data["seized_on"], data["country"],
                                    data.get("place", ""), _six(kg), "kg")
        elif type_ == "price":
            key = (data["country"], int(data["observed_on"][:4]), data["drug"], data["market"], data["currency"])
            per_g = PER_G[data["per"]]
            typical = Fraction(repr(data["price_typical"])) * per_g
            prices[key].append(typical)
            low, high = data.get("price_min"), data.get("price_max")
            lows[key].append(typical if low is None else Fraction(repr(low)) * per_g)
            highs[key].append(typical if high is None else Fraction(repr(high)) * per_g)
        elif type_ == "financial_case":
            row = financial[(data["country"], int(data["reported_on"][:4]), data["case_type"], data["currency"])]
            row[0] += 1
            row[1] += Fraction(repr(data["amount"]))
            row[2] += data.get("persons_charged", 0)
        elif type_ == "treatment_facility":
            reports[(data["country"], int(data["period"][:4]), data["facility_id"], data["period"])].append(data)
        elif type_ == "training":
            person = data["participant"]
            year = int(data["starts_on"][:4])
            trained[(person["country"], year, person.get("agency") or "", data.get("programme") or "")].append(
                person["pseudonym"])
            titles[(person["country"], person["pseudonym"], " ".join(data["course_title"].lower().split()))] += 1
            courses[(data["host_country"], year)].append(data["course_id"])
    rows["seizures"] = {k: (v[0], _six(v[1]), v[2], v[3]) for k, v in seizures.items()}
    rows["routes"] = {k: (v[0], _six(v[1]), v[2]) for k, v in routes.items()}
    rows["prices"] = {k: (len(v), _six(min(lows[k])), _six(max(highs[k])), _six(sum(v, Fraction(0)) / len(v)))
                      for k, v in prices.items()}
    rows["financial"] = {k: (v[0], _six(v[1]), v[2]) for k, v in financial.items()}
    latest: dict[tuple[str, int], dict[str, tuple[str, list[Mapping[str, Any]]]]] = defaultdict(dict)
    for (country, year, facility, period), sent in reports.items():
        held = latest[(country, year)].get(facility)
        if held is None or _period_rank(period) > _period_rank(held[0]):
            latest[(country, year)][facility] = (period, sent)
    for country_year, facilities in latest.items():
        by_facility: list[tuple[str, str, int, int, int]] = []
        by_drug: dict[str, int] = defaultdict(int)
        for facility, (period, sent) in sorted(facilities.items()):
            n = len(sent)
            by_facility.append((facility, period, _mean(sum(d.get("capacity", 0) for d in sent), n),
                                _mean(sum(sum(d["in_treatment"].values()) for d in sent), n), n))
            for drug in {drug for d in sent for drug, count in d["in_treatment"].items() if count}:
                by_drug[drug] += _mean(sum(d["in_treatment"].get(drug, 0) for d in sent), n)
        rows["treatment"][country_year] = (tuple(by_facility), dict(sorted(by_drug.items())))
    rows["trainees"] = {k: (len(set(people)), len(people)) for k, people in trained.items()}
    rows["repeats"] = {k: n for k, n in titles.items() if n > 1}
    rows["courses"] = {k: (len(set(ids)), len(ids)) for k, ids in courses.items()}
    return {view: found for view, found in rows.items() if found}


def shown_rows(views: Mapping[str, Iterable[Document]]) -> Rows:
    """The same rows as the read side gives them, from each view's visible documents (shards merged)."""
    rows: Rows = defaultdict(dict)
    docs = {view: list(found) for view, found in views.items()}
    for doc in docs.get("seizures", []):
        r = report.seizure_row(doc)
        rows["seizures"][(r.country, r.year, r.drug, r.unit)] = (r.cases, r.quantity, r.persons_arrested,
                                                                 r.submissions)
    for doc in docs.get("routes", []):
        route = report.route_row(doc)
        rows["routes"][(route.route, route.month, route.drug, route.unit)] = (route.cases, route.quantity,
                                                                              route.submissions)
    for doc in docs.get("map", []):
        f = report.feature(doc)
        p = f.properties
        rows["map"][p.id] = (*f.geometry.coordinates, p.drug, p.seized_on, p.country, p.place, round(p.quantity, 6),
                             p.unit)
    for doc in docs.get("prices", []):
        price = report.price_row(doc)
        rows["prices"][(price.country, price.year, price.drug, price.market, price.currency)] = (
            price.observations, round(price.min, 6), round(price.max, 6), round(price.mean, 6))
    for doc in docs.get("financial", []):
        case = report.financial_row(doc)
        rows["financial"][(case.country, case.year, case.case_type, case.currency)] = (
            case.cases, case.amount, case.persons_charged)
    by_year: dict[tuple[str, int], list[Document]] = defaultdict(list)
    for doc in docs.get("treatment", []):
        by_year[(doc["country"], doc["year"])].append(doc)
    for country_year, found in by_year.items():
        summary = report.treatment_summary(found)
        rows["treatment"][country_year] = (
            tuple((f.facility_id, f.period, f.capacity, f.in_treatment, f.reports) for f in summary.by_facility),
            summary.in_treatment_by_drug)
    for key, training in report.training_rows(docs.get("trainees", [])):
        rows["trainees"][key] = (training.people, training.participations)
    for repeat in report.repeats_among(docs.get("repeats", []), None):
        rows["repeats"][(repeat.country, repeat.pseudonym, repeat.title_key)] = repeat.participations
    courses: dict[tuple[str, int], list[Document]] = defaultdict(list)
    for doc in docs.get("courses", []):
        courses[(doc["country"], doc["year"])].append(doc)
    for country_year, held in courses.items():
        held_courses = report.training_summary(held, [], [])
        rows["courses"][country_year] = (held_courses.courses_held, held_courses.course_participations)
    return {view: found for view, found in rows.items() if found}
