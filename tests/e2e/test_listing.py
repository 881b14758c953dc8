"""Finding submissions over HTTP on the real broker and store: filters, officer scope, paging, CSV."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.conftest import Stack, eventually
from tests.e2e.helpers import decided
from tests.factories import price_data, seizure_data
from tests.keys import bearer


@dataclass(frozen=True)
class Sent:
    id: str
    type: str
    country: str
    valid: bool
    officer: str


def key_id(headers: dict[str, str]) -> str:
    return headers["Authorization"].split("_")[1]


def send(stack: Stack, headers: dict[str, str], type_: str, country: str, valid: bool) -> Sent:
    # An invalid one breaks a rule validate applies (its shape is right, so ingest takes it).
    data = (seizure_data(country=country, unit="kg" if valid else "l") if type_ == "seizure"
            else price_data(country=country, currency="USD" if valid else "ZZZ"))
    submission_id = str(uuid.uuid4())
    response = httpx.post(f"{stack.url('ingest')}/v1/submissions", headers=headers, timeout=15,
                          json={"id": submission_id, "type": type_, "schema_version": 1, "data": data})
    assert response.status_code == 202, response.text
    return Sent(submission_id, type_, country, valid, key_id(headers))


def listing(stack: Stack, headers: dict[str, str], **params: Any) -> httpx.Response:
    return httpx.get(f"{stack.url('aggregate')}/v1/submissions", params=params, headers=headers, timeout=15)


def every_page(stack: Stack, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        response = listing(stack, headers, **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["items"]
        cursor = body["next"]
        if cursor is None:
            return items


def paged_while(sending: Callable[[], None], stack: Stack, headers: dict[str, str], **params: Any) -> list[str]:
    """The ids of every page of the listing, in order, read while `sending` runs in another thread."""
    sender = threading.Thread(target=sending)
    pages: list[list[str]] = []
    sender.start()
    try:
        cursor = None
        while True:
            response = listing(stack, headers, **params, **({"cursor": cursor} if cursor else {}))
            assert response.status_code == 200, response.text
            pages.append(ids(response.json()["items"]))
            cursor = response.json()["next"]
            if cursor is None:
                break
    finally:
        sender.join()
    return [i for page in pages for i in page]


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["id"] for item in items]


@pytest.fixture(scope="module")
def officers(stack: Stack) -> tuple[dict[str, str], dict[str, str]]:
    return bearer(stack.key("officer", name="first")), bearer(stack.key("officer", name="second"))


@pytest.fixture(scope="module")
def sent(stack: Stack, officers: tuple[dict[str, str], dict[str, str]]) -> list[Sent]:
    """Two officers' submissions of two types, two countries, valid and not, all decided."""
    first, second = officers
    plan = [(first, "seizure", "TJK", True), (first, "seizure", "AFG", False), (first, "price", "TJK", False),
            (second, "seizure", "TJK", True), (second, "price", "KGZ", True), (second, "price", "TJK", True),
            (first, "price", "KGZ", True), (second, "seizure", "AFG", False)]
    found = [send(stack, headers, type_, country, valid) for headers, type_, country, valid in plan]
    for s in found:
        decided(stack, s.id)
    return found


def test_analyst_lists_every_submission_with_its_verdict(stack: Stack, sent: list[Sent]) -> None:
    items = {i["id"]: i for i in every_page(stack, stack.analyst)}
    assert set(items) >= {s.id for s in sent}
    for s in sent:
        item = items[s.id]
        assert (item["type"], item["country"], item["submitted_by"], item["version"]) == (s.type, s.country,
                                                                                          s.officer, 1)
        assert item["status"] == ("validated" if s.valid else "rejected")
        assert (item["reasons"] > 0) == (not s.valid)


@pytest.mark.parametrize(("parameter", "value"), [("type", "price"), ("country", "TJK"), ("status", "rejected"),
                                                  ("status", "validated")])
def test_each_filter_keeps_exactly_the_matching_submissions(stack: Stack, sent: list[Sent], parameter: str,
                                                            value: str) -> None:
    def matches(s: Sent) -> bool:
        return {"type": s.type, "country": s.country,
                "status": "validated" if s.valid else "rejected"}[parameter] == value

    found = set(ids(every_page(stack, stack.analyst, **{parameter: value})))
    assert found & {s.id for s in sent} == {s.id for s in sent if matches(s)}


def test_filters_combine(stack: Stack, sent: list[Sent]) -> None:
    expected = {s.id for s in sent if s.type == "seizure" and s.country == "TJK" and s.valid}
    found = set(ids(every_page(stack, stack.analyst, type="seizure", country="TJK", status="validated")))
    assert found & {s.id for s in sent} == expected


def test_analyst_lists_one_officers_submissions_by_key_id(stack: Stack, sent: list[Sent],
                                                          officers: tuple[dict[str, str], dict[str, str]]) -> None:
    second = key_id(officers[1])
    assert ids(every_page(stack, stack.analyst, submitted_by=second)) == [s.id for s in sent if s.officer == second]


def test_officer_sees_only_their_own_submissions_whatever_they_ask(
        stack: Stack, sent: list[Sent], officers: tuple[dict[str, str], dict[str, str]]) -> None:
    first, second = officers
    own = [s.id for s in sent if s.officer == key_id(first)]
    assert ids(every_page(stack, first)) == own
    assert ids(every_page(stack, first, submitted_by="me")) == own
    assert ids(every_page(stack, first, submitted_by=key_id(first), type="price")) == [
        s.id for s in sent if s.officer == key_id(first) and s.type == "price"]
    refused = listing(stack, first, submitted_by=key_id(second))
    assert refused.status_code == 403
    assert refused.json()["detail"][0]["loc"] == ["query", "submitted_by"]


def test_received_range_and_updated_since_select_by_time(stack: Stack, officers: tuple[dict[str, str],
                                                                                         dict[str, str]]) -> None:
    headers = bearer(stack.key("officer", name="timed"))
    before = send(stack, headers, "seizure", "UZB", True)
    decided(stack, before.id)
    between = datetime.now(UTC).isoformat()
    after = send(stack, headers, "seizure", "UZB", True)
    decided(stack, after.id)
    today = between[:10]

    assert ids(every_page(stack, headers, **{"from": between})) == [after.id]
    assert ids(every_page(stack, headers, to=between)) == [before.id]
    assert ids(every_page(stack, headers, **{"from": today, "to": today})) == [before.id, after.id]

    changed_since = datetime.now(UTC).isoformat()
    assert ids(every_page(stack, headers, updated_since=changed_since)) == []
    amended = httpx.post(f"{stack.url('ingest')}/v1/submissions", headers=headers, timeout=15, json={
        "id": before.id, "type": "seizure", "schema_version": 1, "data": seizure_data(country="KAZ", quantity=3)})
    assert amended.status_code == 202
    decided(stack, before.id, version=2)
    [item] = every_page(stack, headers, updated_since=changed_since)
    assert (item["id"], item["version"], item["country"]) == (before.id, 2, "KAZ")


def test_bad_query_parameters_are_named(stack: Stack) -> None:
    for params, name in [({"from": "2024-13-40"}, "from"), ({"status": "lost"}, "status"),
                         ({"limit": "0"}, "limit"), ({"cursor": "!!"}, "cursor"),
                         ({"country": "tj"}, "country")]:
        response = listing(stack, stack.analyst, **params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["detail"][0]["loc"] == ["query", name]


def test_paging_never_skips_or_repeats_while_submissions_arrive(stack: Stack) -> None:
    headers = bearer(stack.key("officer", name="busy"))
    first = [send(stack, headers, "seizure", "TKM", True) for _ in range(25)]
    eventually(lambda: len(every_page(stack, headers)) == len(first), what="the first submissions listed")
    more: list[Sent] = []
    seen = paged_while(lambda: more.extend(send(stack, headers, "price", "TKM", True) for _ in range(25)),
                       stack, headers, limit=4)
    assert len(seen) == len(set(seen)), "a submission was listed twice"
    assert [s.id for s in first] == seen[:len(first)], "a submission listed before paging began was skipped"
    assert set(seen) <= {s.id for s in first + more}
    everything = {s.id for s in first + more}
    settled = eventually(lambda: found if (found := every_page(stack, headers, limit=4))
                         and set(ids(found)) == everything else None, what="every submission listed")
    assert ids(settled) == ids(every_page(stack, headers, limit=7)), "the order depends on the page size"


def test_csv_page_has_the_json_items_and_the_next_cursor(stack: Stack, sent: list[Sent]) -> None:
    as_json = listing(stack, stack.analyst, limit=3).json()
    response = listing(stack, stack.analyst, limit=3, format="csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == ids(as_json["items"])
    assert [(r["status"], int(r["reasons"])) for r in rows] == [(i["status"], i["reasons"]) for i in as_json["items"]]
    assert response.headers["X-Next-Cursor"] == as_json["next"]


def test_filtered_pages_hold_exactly_the_matching_submissions_while_others_arrive(stack: Stack) -> None:
    """An analyst's filtered listing (read from the records' positions) pages without skipping or repeating."""
    headers = bearer(stack.key("officer", name="filtered"))
    plan = [("price" if n % 3 else "seizure", "MNG" if n % 4 else "BTN", n % 5 != 0) for n in range(24)]
    first = [send(stack, headers, type_, country, valid) for type_, country, valid in plan]
    for s in first:
        decided(stack, s.id)
    wanted = {"type": "price", "country": "MNG", "status": "validated"}

    def matches(s: Sent) -> bool:
        return (s.type, s.country, "validated" if s.valid else "rejected") == tuple(wanted.values())

    more: list[Sent] = []
    seen = paged_while(lambda: more.extend(send(stack, headers, type_, country, valid)
                                           for type_, country, valid in plan), stack, stack.analyst, limit=3, **wanted)
    mine = {s.id for s in first + more}
    assert len(seen) == len(set(seen)), "a submission was listed twice"
    assert [i for i in seen if i in mine][:len([s for s in first if matches(s)])] == [
        s.id for s in first if matches(s)], "a submission decided before paging began was skipped"
    for s in more:
        decided(stack, s.id)
    expected = [s.id for s in first + more if matches(s)]
    assert [i for i in ids(every_page(stack, stack.analyst, limit=4, **wanted)) if i in mine] == expected
