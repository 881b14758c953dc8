"""Every submission type from HTTP to its view on the real broker and store; PII never leaves ingest."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import MongoClient

from tests.conftest import Stack, eventually
from tests.e2e.helpers import decided, submit, submit_batch, view
from tests.factories import (
    financial_case_data,
    participant_submission_data,
    price_data,
    seizure_data,
    training_submission_data,
    treatment_facility_data,
)


def body(type_: str, data: dict[str, Any], submission_id: str | None = None, version: int = 1) -> dict[str, Any]:
    return {"id": submission_id or str(uuid.uuid4()), "type": type_, "schema_version": version, "data": data}


def accepted(stack: Stack, envelope: dict[str, Any], version: int = 1) -> dict[str, Any]:
    response = submit(stack, envelope)
    assert response.status_code == 202, response.text
    verdict = decided(stack, envelope["id"], version)
    assert verdict["status"] == "validated", verdict["errors"]
    return verdict


def test_price_observations_become_min_max_mean_per_gram_and_follow_amendments(stack: Stack) -> None:
    first = body("price", price_data(country="AZE", observed_on="2022-04-01", price_typical=9000,
                                     price_min=8000, price_max=11000, per="kg"))
    second = body("price", price_data(country="AZE", observed_on="2022-06-01", price_typical=12, price_min=10,
                                      price_max=15, per="g"))
    accepted(stack, first)
    accepted(stack, second)
    [row] = view(stack, "prices", country="AZE", year=2022)
    assert (row["observations"], row["min"], row["max"], row["mean"], row["per"]) == (2, 8.0, 15.0, 10.5, "g")

    accepted(stack, body("price", {**second["data"], "price_typical": 20, "price_max": 25}, second["id"]), version=2)
    [row] = view(stack, "prices", country="AZE", year=2022)
    assert (row["observations"], row["min"], row["max"], row["mean"]) == (2, 8.0, 25.0, 14.5)


def test_financial_case_counts_and_amendment_moves_it(stack: Stack) -> None:
    case = body("financial_case", financial_case_data(country="KAZ", reported_on="2021-02-02", amount=1000.5))
    accepted(stack, case)
    assert [(r["case_type"], r["cases"], r["amount"]) for r in view(stack, "financial", country="KAZ", year=2021)] \
        == [("cash_smuggling", 1, 1000.5)]
    accepted(stack, body("financial_case", {**case["data"], "case_type": "asset_seizure"}, case["id"]), version=2)
    assert [(r["case_type"], r["cases"]) for r in view(stack, "financial", country="KAZ", year=2021)] == [
        ("asset_seizure", 1)]


def test_treatment_reports_count_the_latest_period_per_facility(stack: Stack) -> None:
    january = body("treatment_facility", treatment_facility_data(country="KGZ", facility_id="KGZ-1", period="2020-01",
                                                                 capacity=100, in_treatment={"heroin": 40}))
    march = body("treatment_facility", treatment_facility_data(country="KGZ", facility_id="KGZ-1", period="2020-03",
                                                               capacity=110, in_treatment={"heroin": 55}))
    accepted(stack, january)
    accepted(stack, march)
    sheet = view(stack, "fact-sheet", country="KGZ", year=2020)
    assert (sheet["treatment"]["facilities"], sheet["treatment"]["capacity"], sheet["treatment"]["in_treatment"]) \
        == (1, 110, 55)
    accepted(stack, body("treatment_facility", {**march["data"], "period": "2020-02"}, march["id"]), version=2)
    sheet = view(stack, "fact-sheet", country="KGZ", year=2020)
    assert sheet["treatment"]["by_facility"][0]["period"] == "2020-02"


def test_seizure_v2_coordinates_show_on_the_map_and_v1_is_upcast(stack: Stack) -> None:
    v2 = body("seizure", seizure_data(country="TKM", seized_on="2018-07-07", coordinates={"lat": 37.9, "lon": 58.4}),
              version=2)
    v1 = body("seizure", seizure_data(country="TKM", seized_on="2018-07-08", lat=38.0, lon=58.5))
    accepted(stack, v2)
    accepted(stack, v1)
    features = view(stack, "map", **{"from": "2018-07-01", "to": "2018-07-31"})["features"]
    assert sorted(f["geometry"]["coordinates"] for f in features) == [[58.4, 37.9], [58.5, 38.0]]


def test_each_type_names_the_broken_field_when_rejected(stack: Stack) -> None:
    cases = {
        "seizure": (seizure_data(unit="l"), ["data", "unit"]),
        "price": (price_data(price_min=99999), ["data", "price_min"]),
        "financial_case": (financial_case_data(currency="ABC"), ["data", "currency"]),
        "treatment_facility": (treatment_facility_data(period="2020-13"), ["data", "period"]),
        "training": (training_submission_data(ends_on="2024-04-01"), ["data", "ends_on"]),
    }
    for type_, (data, loc) in cases.items():
        envelope = body(type_, data)
        assert submit(stack, envelope).status_code == 202
        verdict = decided(stack, envelope["id"])
        assert verdict["status"] == "rejected", type_
        assert [e["loc"] for e in verdict["errors"]] == [loc], type_


def test_batch_with_good_and_bad_items(stack: Stack) -> None:
    good = [body("seizure", seizure_data(country="ARM", seized_on=f"2017-01-0{day}")) for day in (1, 2, 3)]
    response = submit_batch(stack, [good[0], {"id": "nope"}, good[1], body("unknown", {}), good[2]])
    assert response.status_code == 207
    assert [i["status"] for i in response.json()["items"]] == ["received", "invalid", "received", "invalid", "received"]
    eventually(lambda: [r["submissions"] for r in view(stack, "seizures", country="ARM", year=2017)] == [3],
               what="three batch items in the view")


def test_training_pseudonym_is_stable_and_identity_is_never_stored_or_published(stack: Stack) -> None:
    person = participant_submission_data(national_id="P-7731 0042", full_name="Zarina Oqilova", country="TJK")
    same_person = {**person, "national_id": "p77310042"}
    courses = [
        body("training", training_submission_data(course_id="C1", course_title="Risk profiling",
                                                  starts_on="2019-03-04", ends_on="2019-03-08", participant=person)),
        body("training", training_submission_data(course_id="C2", course_title="Risk  PROFILING",
                                                  starts_on="2019-09-02", ends_on="2019-09-06",
                                                  participant=same_person)),
    ]
    for course in courses:
        accepted(stack, course)

    [row] = view(stack, "trainings", country="TJK", year=2019)
    assert (row["people"], row["participations"]) == (1, 2)
    repeats = httpx_get_json(stack, "trainings", country="TJK", year=2019)["repeats"]
    assert [r["participations"] for r in repeats] == [2]

    # The number as sent, and as normalised ("P77310042"); its four-digit halves alone also turn up by chance in
    # ids, hashes and timestamps.
    secrets = [b"7731 0042", b"77310042", b"Zarina", b"Oqilova"]
    for topic, value in read_topics(stack):
        assert not any(s in value for s in secrets), f"identity found on {topic}: {value!r}"
    client: MongoClient[dict[str, Any]] = MongoClient(stack.infra.mongodb_url)
    try:
        database = client[stack.database]
        for name in database.list_collection_names():
            for document in database[name].find():
                encoded = orjson.dumps(document, default=str)
                assert not any(s in encoded for s in secrets), f"identity found in {name}: {encoded!r}"
    finally:
        client.close()


def test_a_participation_submitted_after_a_read_shows_in_the_trainings_view_and_fact_sheet(stack: Stack) -> None:
    def participation(national_id: str) -> dict[str, Any]:
        person = participant_submission_data(national_id=national_id, country="GEO")
        return body("training", training_submission_data(
            course_id="G1", course_title="Port control", host_country="GEO", starts_on="2018-05-07",
            ends_on="2018-05-11", participant=person))

    accepted(stack, participation("GEO-1"))

    def people() -> tuple[int, int]:
        [row] = view(stack, "trainings", country="GEO", year=2018)
        sheet = view(stack, "fact-sheet", country="GEO", year=2018)["trainings"]
        return row["people"], sheet["people_trained"]

    assert people() == (1, 1)
    assert people() == (1, 1)  # read again, nothing applied since
    submit(stack, participation("GEO-2"))
    eventually(lambda: people() == (2, 2), what="the second participant counted by both reads")


def httpx_get_json(stack: Stack, name: str, **params: Any) -> dict[str, Any]:
    import httpx

    body: dict[str, Any] = httpx.get(f"{stack.url('aggregate')}/v1/views/{name}", params=params,
                                     headers=stack.analyst, timeout=10).json()
    return body


def read_topics(stack: Stack) -> list[tuple[str, bytes]]:
    """Every record on the three topics of this stack, read back from the broker."""
    topics = [f"{stack.namespace}.dmp.submissions.{kind}.v1" for kind in ("received", "validated", "rejected")]

    async def read() -> list[tuple[str, bytes]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=stack.infra.bootstrap, auto_offset_reset="earliest",
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            cluster = await consumer._client.fetch_all_metadata()
            partitions = [TopicPartition(t, p) for t in topics for p in cluster.partitions_for_topic(t) or ()]
            consumer.assign(partitions)
            ends = await consumer.end_offsets(partitions)
            await consumer.seek_to_beginning()
            records: list[tuple[str, bytes]] = []

            async def behind() -> bool:
                return any([await consumer.position(tp) < end for tp, end in ends.items()])

            while await behind():
                batch = await consumer.getmany(timeout_ms=2000)
                records += [(r.topic, r.value) for rs in batch.values() for r in rs]
            return records
        finally:
            await consumer.stop()

    records = asyncio.run(read())
    assert records, "no records read back"
    return records
