"""Every submission type lands in its views with exact figures, and amendments move them."""

from __future__ import annotations

import itertools
from typing import Any

from services.aggregate.apply import apply_batch
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.projection import Event, contributions, merge_shards
from services.aggregate.report import price_row, repeats_among, training_rows, treatment_summary
from shared.envelope import content_hash
from shared.store import Document

PERSON_A, PERSON_B = "a" * 64, "b" * 64
_offsets = itertools.count(1000)


def seizure(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "seized_on": "2024-03-02", "country": "AFG", "place": "Islam Qala", "coordinates": {"lat": 34.66, "lon": 61.06},
        "drug": "heroin", "quantity": 1500, "unit": "g", "cases": 1, "persons_arrested": 2, "transport": "land",
        "route": "balkan", "origin": "AFG", "destination": "TUR", "transit": ["IRN"], "agency": "Border Police",
    }
    data.update(overrides)
    factor = {"g": 0.001, "kg": 1.0}[data["unit"]]
    data["normalised"] = {"quantity": data["quantity"] * factor, "unit": "kg", "rules": "units.v1",
                          "submitted_schema_version": 2}
    return data


def price(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "observed_on": "2024-05-10", "country": "AFG", "place": "Kabul", "drug": "heroin", "market": "retail",
        "price_typical": 3.5, "price_min": None, "price_max": None, "currency": "USD", "per": "g", "purity_pct": None,
    }
    data.update(overrides)
    factor = {"g": 1, "kg": 1000}[data["per"]]
    data["normalised"] = {"per": "g", "rules": "units.v1", **{
        k: None if data[k] is None else data[k] / factor for k in ("price_typical", "price_min", "price_max")}}
    return data


def financial(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "reported_on": "2024-02-01", "country": "AFG", "case_type": "money_laundering_investigation",
        "amount": 250_000.5, "currency": "USD", "linked_drug": "heroin", "persons_charged": 3,
    }
    data.update(overrides)
    data["normalised"] = {"rules": "units.v1"}
    return data


def treatment(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "facility_id": "KBL-01", "country": "AFG", "name": "Kabul Recovery Centre", "period": "2024-03",
        "services": ["detox", "psychosocial"], "capacity": 40, "in_treatment": {"heroin": 20, "opium": 5},
    }
    data.update(overrides)
    period = data["period"]
    data["normalised"] = {"year": int(period[:4]), "month": int(period[5:7]) if len(period) > 4 else None,
                          "in_treatment_total": sum(data["in_treatment"].values())}
    return data


def training(person: str = PERSON_A, title: str = "Container profiling", **overrides: Any) -> dict[str, Any]:
    participant = {"pseudonym": person, "agency": "Customs", "country": "AFG", "gender": "f", "role": "officer"}
    participant.update(overrides.pop("participant", {}))
    data: dict[str, Any] = {
        "course_id": "CCP-2024-01", "course_title": title, "starts_on": "2024-04-01", "ends_on": "2024-04-05",
        "host_country": "TUR", "programme": "Container Control Programme", "participant": participant,
    }
    data.update(overrides)
    data["normalised"] = {"year": int(data["starts_on"][:4]), "title_key": " ".join(title.lower().split())}
    return data


def validated(type_: str, sid: str, seq: int, data: dict[str, Any], partition: int = 0) -> Event:
    """A validated event; offsets on the validated partition grow with every event built."""
    return Event("validated", sid, type_, seq, content_hash(type_, 1, data), f"2024-06-01T00:00:{seq % 60:02d}+00:00",
                 "officer", "2024-06-01T00:00:00+00:00", data=data, source=str(partition), offset=next(_offsets))


def merged(repo: InMemoryRepository, view: str) -> dict[str, Document]:
    """Every bucket of `view`, its shards merged (empty ones included), by bucket key."""
    shards: dict[str, list[Document]] = {}
    for (v, _), doc in sorted(repo.views.items()):
        if v == view:
            shards.setdefault(doc["bucket"], []).append(doc)
    return {bucket: merge_shards(view, group) for bucket, group in shards.items()}


def shown(repo: InMemoryRepository, view: str) -> dict[str, Document]:
    """The buckets of `view` a reader sees (empty buckets are hidden), shards merged."""
    return {key: doc for key, doc in merged(repo, view).items() if int(doc.get("submissions", 0)) > 0}


def figures(doc: Document, *names: str) -> tuple[int, ...]:
    return tuple(int(doc.get(name, 0)) for name in names)


async def test_seizure_counts_in_the_national_table_the_route_trend_and_the_map() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("seizure", "s1", 1, seizure()),
                             validated("seizure", "s2", 2, seizure(quantity=2.25, unit="kg", seized_on="2024-03-30",
                                                                   coordinates=None))])

    assert {k: figures(d, "cases", "quantity_micro", "submissions") for k, d in shown(repo, "seizures").items()} == {
        "AFG:2024:heroin:kg": (2, 3_750_000, 2)}
    assert {k: figures(d, "cases", "quantity_micro", "submissions") for k, d in shown(repo, "routes").items()} == {
        "balkan:2024-03:heroin:kg": (2, 3_750_000, 2)}
    [point] = shown(repo, "map").values()
    assert {k: point[k] for k in ("_id", "lon", "lat", "drug", "seized_on", "country", "place", "quantity", "unit")} \
        == {"_id": "s1", "lon": 61.06, "lat": 34.66, "drug": "heroin", "seized_on": "2024-03-02", "country": "AFG",
            "place": "Islam Qala", "quantity": 1.5, "unit": "kg"}


async def test_amended_seizure_moves_its_route_month_bucket() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("seizure", "s1", 1, seizure())])
    await apply_batch(repo, [validated("seizure", "s1", 2, seizure(route="northern", seized_on="2024-04-09",
                                                                   cases=3))])

    assert {k: figures(d, "cases", "quantity_micro", "submissions") for k, d in shown(repo, "routes").items()} == {
        "northern:2024-04:heroin:kg": (3, 1_500_000, 1)}
    assert figures(repo.views[("routes", "balkan:2024-03:heroin:kg#p0")], "cases", "quantity_micro") == (0, 0)


async def test_amended_coordinates_move_the_point_and_removing_them_hides_it() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("seizure", "s1", 1, seizure())])
    await apply_batch(repo, [validated("seizure", "s1", 2, seizure(coordinates={"lat": 37.5, "lon": 42.1},
                                                                   drug="opium"))])
    point = shown(repo, "map")["s1"]
    assert (point["lon"], point["lat"], point["drug"], point["submissions"]) == (42.1, 37.5, "opium", 1)

    await apply_batch(repo, [validated("seizure", "s1", 3, seizure(coordinates=None, drug="opium"))])
    assert shown(repo, "map") == {}

    await apply_batch(repo, [validated("seizure", "s1", 4, seizure(coordinates={"lat": 1.5, "lon": 2.5}))])
    point = shown(repo, "map")["s1"]
    assert (point["lon"], point["lat"], point["submissions"]) == (2.5, 1.5, 1)


def test_seizures_validated_before_coordinates_existed_use_top_level_lat_lon_or_none() -> None:
    legacy = seizure(lat=34.0, lon=62.0)
    del legacy["coordinates"]
    assert [c.dims["lon"] for c in contributions("seizure", legacy, "s1") if c.view == "map"] == [62.0]
    del legacy["lat"], legacy["lon"]
    assert [c for c in contributions("seizure", legacy, "s1") if c.view == "map"] == []


async def test_price_observations_give_exact_min_max_and_mean_per_gram() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [
        validated("price", "p1", 1, price(price_typical=3.1, price_min=2.2, price_max=4.4)),
        validated("price", "p2", 2, price(price_typical=3.3)),
        validated("price", "p3", 3, price(price_typical=3100, price_max=5000, per="kg")),
    ])
    [doc] = shown(repo, "prices").values()
    row = price_row(doc)
    assert doc["_id"] == "AFG:2024:heroin:retail:USD"
    assert (row.observations, row.min, row.max, row.per) == (3, 2.2, 5.0, "g")
    assert row.mean == 9.5 / 3  # (3.1 + 3.3 + 3.1) / 3, summed in exact millionths
    assert doc["typical_micro"] == 9_500_000


async def test_amending_away_the_lowest_price_reveals_the_next_lowest_exactly() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [
        validated("price", "p1", 1, price(price_typical=3.0, price_min=1.0, price_max=9.0)),
        validated("price", "p2", 2, price(price_typical=4.0, price_min=2.0)),
        validated("price", "p3", 3, price(price_typical=1.0)),  # the min shared by two observations
    ])
    assert (price_row(shown(repo, "prices")["AFG:2024:heroin:retail:USD"]).min,
            price_row(shown(repo, "prices")["AFG:2024:heroin:retail:USD"]).max) == (1.0, 9.0)

    await apply_batch(repo, [validated("price", "p1", 4, price(price_typical=3.0))])
    row = price_row(shown(repo, "prices")["AFG:2024:heroin:retail:USD"])
    assert (row.observations, row.min, row.max, row.mean) == (3, 1.0, 4.0, 8.0 / 3)

    await apply_batch(repo, [validated("price", "p3", 5, price(price_typical=2.5, market="wholesale"))])
    row = price_row(shown(repo, "prices")["AFG:2024:heroin:retail:USD"])
    assert (row.observations, row.min, row.max, row.mean) == (2, 2.0, 4.0, 3.5)
    moved = price_row(shown(repo, "prices")["AFG:2024:heroin:wholesale:USD"])
    assert (moved.observations, moved.min, moved.max, moved.mean) == (1, 2.5, 2.5, 2.5)
    # counters for prices nobody holds any more are dropped, not left at zero
    assert not [k for k, v in repo.views[("prices", "AFG:2024:heroin:retail:USD#p0")].items()
                if k.startswith(("lo_", "hi_")) and v == 0]


async def test_financial_cases_sum_amounts_exactly_and_amendments_move_them() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("financial_case", "f1", 1, financial()),
                             validated("financial_case", "f2", 2, financial(amount=0.1, persons_charged=0))])
    assert {k: figures(d, "submissions", "amount_micro", "persons_charged")
            for k, d in shown(repo, "financial").items()} == {
        "AFG:2024:money_laundering_investigation:USD": (2, 250_000_600_000, 3)}

    await apply_batch(repo, [validated("financial_case", "f1", 3, financial(case_type="cash_smuggling",
                                                                            reported_on="2023-12-30"))])
    assert {k: figures(d, "submissions", "amount_micro", "persons_charged")
            for k, d in shown(repo, "financial").items()} == {
        "AFG:2024:money_laundering_investigation:USD": (1, 100_000, 0),
        "AFG:2023:cash_smuggling:USD": (1, 250_000_500_000, 3)}


def fits_bson(value: Any) -> bool:
    if isinstance(value, dict):
        return all(fits_bson(v) for v in value.values())
    if isinstance(value, list):
        return all(fits_bson(v) for v in value)
    return not isinstance(value, int) or -(2**63) <= value < 2**63


async def test_sums_beyond_64_bits_are_kept_exact_as_text() -> None:
    repo = InMemoryRepository()
    huge = 9e12  # 9e18 millionths each; two of them overflow a BSON int64
    await apply_batch(repo, [validated("financial_case", "f1", 1, financial(amount=huge, currency="IRR")),
                             validated("financial_case", "f2", 2, financial(amount=2 * huge, currency="IRR"))])
    key = "AFG:2024:money_laundering_investigation:IRR"
    assert repo.views[("financial", f"{key}#p0")]["amount_micro"] == str(27 * 10**18)
    assert shown(repo, "financial")[key]["amount_micro"] == 27 * 10**18
    assert fits_bson(repo.views) and fits_bson(repo.submissions)

    await apply_batch(repo, [validated("financial_case", "f2", 3, financial(amount=1.0, currency="IRR"))])
    assert shown(repo, "financial")[key]["amount_micro"] == 9 * 10**18 + 1_000_000
    assert fits_bson(repo.views) and fits_bson(repo.submissions)


async def test_treatment_counts_each_facility_at_its_latest_period_never_summing_months() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [
        validated("treatment_facility", "t1", 1, treatment(period="2024-03", capacity=40,
                                                           in_treatment={"heroin": 20, "opium": 5})),
        validated("treatment_facility", "t2", 2, treatment(period="2024-06", capacity=50,
                                                           in_treatment={"heroin": 30})),
        validated("treatment_facility", "t3", 3, treatment(facility_id="HRT-02", period="2024", capacity=10,
                                                           in_treatment={"opium": 7})),
        validated("treatment_facility", "t4", 4, treatment(facility_id="HRT-02", period="2024-12", capacity=99,
                                                           in_treatment={"opium": 99})),
        validated("treatment_facility", "t5", 5, treatment(period="2023-12", capacity=1000)),
    ])
    summary = treatment_summary(d for d in shown(repo, "treatment").values() if d["year"] == 2024)
    assert [(f.facility_id, f.period, f.capacity, f.in_treatment) for f in summary.by_facility] == [
        ("HRT-02", "2024", 10, 7), ("KBL-01", "2024-06", 50, 30)]
    assert (summary.facilities, summary.capacity, summary.in_treatment) == (2, 60, 37)
    assert summary.in_treatment_by_drug == {"heroin": 30, "opium": 7}


async def test_amended_treatment_period_moves_the_report_and_the_latest_period_with_it() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("treatment_facility", "t1", 1, treatment(period="2024-03")),
                             validated("treatment_facility", "t2", 2, treatment(period="2024-06", capacity=50))])
    await apply_batch(repo, [validated("treatment_facility", "t2", 3, treatment(period="2024-02", capacity=50))])
    summary = treatment_summary(shown(repo, "treatment").values())
    assert [(f.period, f.capacity, f.in_treatment) for f in summary.by_facility] == [("2024-03", 40, 25)]
    assert summary.in_treatment_by_drug == {"heroin": 20, "opium": 5}


async def test_two_reports_of_one_facility_period_are_averaged_not_summed() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("treatment_facility", "t1", 1, treatment(capacity=40)),
                             validated("treatment_facility", "t2", 2, treatment(capacity=44))])
    [facility] = treatment_summary(shown(repo, "treatment").values()).by_facility
    assert (facility.capacity, facility.in_treatment, facility.reports) == (42, 25, 2)


async def test_people_trained_are_counted_once_however_many_courses_they_attend() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [
        validated("training", "r1", 1, training(PERSON_A)),
        validated("training", "r2", 2, training(PERSON_A, title="Risk analysis", course_id="CCP-2024-02")),
        validated("training", "r3", 3, training(PERSON_B)),
        validated("training", "r4", 4, training(PERSON_B, participant={"agency": "Police"})),
    ])
    rows = [row for _, row in training_rows(shown(repo, "trainees").values())]
    assert [(r.country, r.year, r.agency, r.people, r.participations) for r in rows] == [
        ("AFG", 2024, "Customs", 2, 3), ("AFG", 2024, "Police", 1, 1)]
    courses = {d["course_id"]: d["submissions"] for d in shown(repo, "courses").values()}
    assert courses == {"CCP-2024-01": 3, "CCP-2024-02": 1}
    assert [(r.pseudonym, r.title_key, r.participations) for r in repeats_among(shown(repo, "repeats").values(),
                                                                                 None)] == [
        (PERSON_B, "container profiling", 2)]


async def test_repeat_flag_clears_when_the_second_participation_is_amended_to_another_title() -> None:
    repo = InMemoryRepository()
    await apply_batch(repo, [validated("training", "r1", 1, training(PERSON_A)),
                             validated("training", "r2", 2, training(PERSON_A, title="container  PROFILING",
                                                                     starts_on="2025-01-10",
                                                                     ends_on="2025-01-12"))])
    assert [r.participations for r in repeats_among(shown(repo, "repeats").values(), None)] == [2]

    await apply_batch(repo, [validated("training", "r2", 3, training(PERSON_A, title="Maritime interdiction",
                                                                     participant={"country": "PAK"}))])
    assert repeats_among(shown(repo, "repeats").values(), None) == []
    assert sorted((d["country"], d["year"]) for d in shown(repo, "trainees").values()) == [
        ("AFG", 2024), ("PAK", 2024)]


def test_free_text_dimensions_are_hashed_into_keys_and_kept_verbatim() -> None:
    data = training(PERSON_A, course_id="Course 1.2 $special", participant={"agency": "Dept. of $ Customs"})
    for c in contributions("training", data, "r1"):
        assert "." not in c.key and "$" not in c.key
    trainee = next(c for c in contributions("training", data, "r1") if c.view == "trainees")
    assert trainee.dims["agency"] == "Dept. of $ Customs"
