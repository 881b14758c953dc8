"""A field officer's seizure, from HTTP through Kafka to the view, on the real broker and store."""

from __future__ import annotations

import httpx

from tests.conftest import Stack, eventually
from tests.e2e.helpers import decided, status, submit, view
from tests.factories import envelope


def test_valid_seizure_becomes_validated_and_counts_in_the_view(stack: Stack) -> None:
    body = envelope(country="PAK", seized_on="2021-05-01", quantity=2500, unit="g", cases=3, persons_arrested=4)
    response = submit(stack, body)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "received"

    verdict = decided(stack, body["id"])
    assert verdict["status"] == "validated"
    assert verdict["errors"] == []
    assert view(stack, "seizures", country="PAK", year=2021) == [
        {"country": "PAK", "year": 2021, "drug": "heroin", "cases": 3, "quantity": 2.5, "unit": "kg",
         "persons_arrested": 4, "submissions": 1}]


def test_invalid_seizure_is_rejected_naming_each_field(stack: Stack) -> None:
    body = envelope(country="XXX", seized_on="1989-12-31", unit="l")
    assert submit(stack, body).status_code == 202

    verdict = decided(stack, body["id"])
    assert verdict["status"] == "rejected"
    fields = {tuple(e["loc"]) for e in verdict["errors"]}
    assert {("data", "country"), ("data", "seized_on"), ("data", "unit")} <= fields
    assert all(e["msg"] and e["type"] for e in verdict["errors"])
    assert view(stack, "seizures", country="XXX") == []


def test_same_submission_sent_twice_counts_once(stack: Stack) -> None:
    body = envelope(country="TJK", seized_on="2022-01-10", quantity=10, unit="kg")
    assert submit(stack, body).status_code == 202
    decided(stack, body["id"])
    resent = submit(stack, {**body, "data": dict(reversed(list(body["data"].items())))})
    assert resent.status_code == 202
    second = eventually(lambda: (s := status(stack, body["id"])) and len(s["history"]) == 2
                        and s["status"] == "validated" and s, what="the resubmission's verdict")

    assert second["version"] == 1
    assert view(stack, "seizures", country="TJK", year=2022) == [
        {"country": "TJK", "year": 2022, "drug": "heroin", "cases": 1, "quantity": 10.0, "unit": "kg",
         "persons_arrested": 2, "submissions": 1}]


def test_amended_seizure_moves_its_figures_to_the_new_bucket(stack: Stack) -> None:
    body = envelope(country="UZB", seized_on="2023-06-01", drug="opium", quantity=40, unit="kg")
    assert submit(stack, body).status_code == 202
    decided(stack, body["id"])
    assert [r["drug"] for r in view(stack, "seizures", country="UZB", year=2023)] == ["opium"]

    amended = envelope(body["id"], country="UZB", seized_on="2023-06-01", drug="morphine", quantity=41, unit="kg")
    assert submit(stack, amended).status_code == 202
    verdict = decided(stack, body["id"], version=2)

    assert verdict["status"] == "validated"
    assert verdict["current_valid_version"] == 2
    assert view(stack, "seizures", country="UZB", year=2023) == [
        {"country": "UZB", "year": 2023, "drug": "morphine", "cases": 1, "quantity": 41.0, "unit": "kg",
         "persons_arrested": 2, "submissions": 1}]


def test_rejected_amendment_keeps_the_last_valid_version_in_the_view(stack: Stack) -> None:
    body = envelope(country="KGZ", seized_on="2023-02-01", quantity=5, unit="kg")
    submit(stack, body)
    decided(stack, body["id"])
    bad = envelope(body["id"], country="KGZ", seized_on="2023-02-01", quantity=5, unit="l")
    submit(stack, bad)
    verdict = decided(stack, body["id"], version=2)

    assert verdict["status"] == "rejected"
    assert verdict["current_valid_version"] == 1
    assert [(r["quantity"], r["submissions"]) for r in view(stack, "seizures", country="KGZ", year=2023)] == [(5.0, 1)]


def test_unknown_submission_is_404(stack: Stack) -> None:
    response = httpx.get(f"{stack.url('aggregate')}/v1/submissions/5b0f5ac0-0000-4000-8000-000000000000",
                         headers=stack.analyst)
    assert response.status_code == 404
    assert response.json()["detail"][0]["type"] == "not_found"


def test_every_service_reports_ready_and_metrics(stack: Stack) -> None:
    for name in ("ingest", "validate", "aggregate"):
        ready = httpx.get(f"{stack.url(name)}/health/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert all(ready.json()["checks"].values())
        metrics = httpx.get(f"{stack.url(name)}/metrics", timeout=5).text
        assert "dmp_http_requests_total" in metrics
    assert "dmp_validate_decisions_total" in httpx.get(f"{stack.url('validate')}/metrics").text
