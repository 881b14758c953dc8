"""Verdicts from a fake aggregate, mapped back to the sheet's rows and columns, and exported for correction."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli.queue import Item, Queue, Stored
from cli.verdicts import VerdictsRefused, export, problems_of, refresh, rejected_problems
from tests.factories import seizure_data, training_submission_data

GOOD = "00000000-0000-4000-8000-000000000001"
BAD = "00000000-0000-4000-8000-000000000002"
LATE = "00000000-0000-4000-8000-000000000003"
TRAINING = "00000000-0000-4000-8000-000000000004"


def status(submission_id: str, state: str, errors: list[dict[str, Any]] | None = None,
           version: int = 1) -> dict[str, Any]:
    return {"id": submission_id, "type": "seizure", "status": state, "version": version, "errors": errors or [],
            "current_valid_version": 1 if state == "validated" else None, "received_at": "", "updated_at": "",
            "history": []}


VERDICTS = {
    GOOD: status(GOOD, "validated"),
    BAD: status(BAD, "rejected", [{"loc": ["data", "quantity"], "msg": "must be greater than 0", "type": "gt"},
                                  {"loc": ["data", "coordinates", "lon"], "msg": "is required", "type": "missing"},
                                  {"loc": ["data", "transit", 1], "msg": "'XXY' is not a country", "type": "cc"}]),
    TRAINING: {**status(TRAINING, "rejected", [
        {"loc": ["data", "participant", "country"], "msg": "'tjk' is not a code", "type": "country_code"}]),
        "type": "training"},
}


def aggregate(request: httpx.Request) -> httpx.Response:
    submission_id = request.url.path.rsplit("/", 1)[-1]
    if submission_id in VERDICTS:
        return httpx.Response(200, json=VERDICTS[submission_id])
    return httpx.Response(404, json={"detail": [{"type": "not_found"}]})



def got(queue: Queue, submission_id: str) -> Stored:
    stored = queue.get(submission_id)
    assert stored is not None, submission_id
    return stored

@pytest.fixture
def queue(tmp_path) -> Iterator[Queue]:
    with Queue.open(tmp_path / "queue.sqlite3") as q:
        items = [Item(GOOD, "seizure", 2, seizure_data(), "sheet", "/sheets/s.csv", 2),
                 Item(BAD, "seizure", 2, seizure_data(quantity=0, transit=["IRN", "XXY"], place="x"), "sheet",
                      "/sheets/s.csv", 7),
                 Item(LATE, "seizure", 2, seizure_data(place="late"), "json", "/sheets/one.json", 1),
                 Item(TRAINING, "training", 1, training_submission_data(), "sheet", "/sheets/t.csv", 3)]
        q.enqueue(items)
        for i in items:
            q.mark_received(i.id, i.content_hash)
        yield q


def client(handler=aggregate) -> httpx.Client:
    return httpx.Client(base_url="http://aggregate.test", transport=httpx.MockTransport(handler))


def test_verdicts_are_fetched_for_received_submissions(queue: Queue) -> None:
    seen: list[str] = []
    with client() as c:
        report = refresh(queue, c, progress=lambda n: seen.append("x"))
    assert (report.checked, report.decided, report.unreachable) == (4, 3, None)
    assert len(seen) == 4
    assert queue.counts() == {"pending": 0, "received": 1, "invalid": 0, "validated": 1, "rejected": 2}
    with client() as c:
        assert refresh(queue, c).checked == 1  # only the one still waiting


def test_rejection_reasons_come_back_as_sheet_row_column_and_value(queue: Queue) -> None:
    with client() as c:
        refresh(queue, c)
    problems = [(p.source, p.row, p.column, p.value, p.problem) for p in problems_of(got(queue, BAD))]
    assert problems == [
        ("/sheets/s.csv", 7, "quantity", "0", "must be greater than 0"),
        ("/sheets/s.csv", 7, "lon", "", "is required"),
        ("/sheets/s.csv", 7, "transit", "XXY", "item 2: 'XXY' is not a country"),
    ]


def test_the_export_lists_every_problem_for_correction_without_identity(queue: Queue, tmp_path) -> None:
    with client() as c:
        refresh(queue, c)
    path = tmp_path / "rejected.csv"
    export(rejected_problems(queue), path)
    with path.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["source"], r["row"], r["column"], r["value"]) for r in rows] == [
        ("/sheets/s.csv", "7", "quantity", "0"), ("/sheets/s.csv", "7", "lon", ""),
        ("/sheets/s.csv", "7", "transit", "XXY"), ("/sheets/t.csv", "3", "participant.country", "TJK")]
    assert {r["id"] for r in rows} == {BAD, TRAINING}
    assert "A1234567" not in path.read_text(encoding="utf-8-sig")
    assert "Nigora" not in path.read_text(encoding="utf-8-sig")


def test_json_submissions_are_located_by_item_and_field(tmp_path) -> None:
    with Queue.open(tmp_path / "q.sqlite3") as q:
        item = Item(LATE, "seizure", 1, seizure_data(quantity=0), "json", "/one.json", 3)
        q.enqueue([item])
        q.mark_received(item.id, item.content_hash)
        q.apply_verdict(item.id, "rejected", 1, [], None)
        [problem] = problems_of(got(q, item.id))
        assert (problem.row, problem.column, problem.problem) == (3, "(submission)", "rejected without a reason")


def test_an_unreachable_aggregate_leaves_states_as_they_were(queue: Queue) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with client(down) as c:
        report = refresh(queue, c)
    assert "cannot reach aggregate" in (report.unreachable or "")
    assert queue.counts()["received"] == 4


def test_a_refused_key_is_said_plainly(queue: Queue) -> None:
    with client(lambda r: httpx.Response(403, json={})) as c, pytest.raises(VerdictsRefused, match="dmp login"):
        refresh(queue, c)


def test_the_rate_limit_is_waited_out_not_taken_for_an_outage(queue: Queue) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "2"}, json={})])
    waited: list[float] = []

    def limited(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or aggregate(request)

    with client(limited) as c:
        report = refresh(queue, c, sleep=waited.append)
    assert waited == [2.0]
    assert (report.checked, report.decided, report.unreachable) == (4, 3, None)
