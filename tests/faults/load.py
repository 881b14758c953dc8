"""Steady load over HTTP as field officers' clients send it, and the oracle of what the views must show."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

COUNTRIES = ("AFG", "IRN", "PAK", "TJK")
YEAR = 2021
DRUG = "heroin"
RETRYABLE = {429, 500, 502, 503, 504}


OTHER_TYPES = ("price", "financial_case", "treatment_facility", "training")


def seizure(rng: random.Random, year: int = YEAR) -> dict[str, Any]:
    """A valid seizure in `year`; quantities in whole kilograms, so the sums are exact."""
    return {"id": str(uuid.uuid4()), "type": "seizure", "schema_version": 1, "data": {
        "seized_on": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "country": rng.choice(COUNTRIES),
        "place": "border crossing", "drug": DRUG, "quantity": rng.randint(1, 50), "unit": "kg",
        "cases": rng.randint(1, 3), "persons_arrested": rng.randint(0, 4), "transport": "land", "route": "balkan"}}


def other_type(rng: random.Random, year: int = YEAR) -> dict[str, Any]:
    """A valid submission of one of the four types other than seizure, dated in `year`."""
    from tests.factories import financial_case_data, price_data, training_submission_data, treatment_facility_data

    kind = rng.choice(OTHER_TYPES)
    day = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    data = {
        "price": lambda: price_data(observed_on=day, price_min=80, price_typical=rng.randint(90, 110), price_max=120),
        "financial_case": lambda: financial_case_data(reported_on=day, amount=rng.randint(1000, 9000)),
        "treatment_facility": lambda: treatment_facility_data(facility_id=f"KAZ-LD-{rng.randint(0, 10**6):06d}",
                                                              period=day[:7]),
        "training": lambda: training_submission_data(starts_on=day, ends_on=day),
    }[kind]()
    return {"id": str(uuid.uuid4()), "type": kind, "schema_version": 1, "data": data}


def amended(body: dict[str, Any], rng: random.Random, year: int = YEAR) -> dict[str, Any]:
    """The same seizure (same id) with new data: another date, country, quantity and cases in `year`."""
    return {**body, "data": seizure(rng, year)["data"]}


@dataclass
class Answer:
    """One HTTP attempt: when it started, how long it took, what came back (0 = no answer)."""

    started: float
    seconds: float
    status: int
    retry_after: str | None = None


@dataclass
class Load:
    """Client threads that each send one submission after another and retry each until it gets a 202.

    Like a real client: 503/429/5xx and connection errors are retried with the same id after the
    server's Retry-After (at most `max_backoff_s`); every tenth send repeats a submission that was
    already acknowledged, unchanged. `stop()` ends the stream but lets each thread finish the
    submission in hand (bounded by `give_up_s`). Each load reports seizures of its own `year`, so
    loads on one stack do not mix in the views.

    With `mix`, every fifth send amends a seizure the thread had acknowledged (same id, new data)
    and every fifth is one of the other four types. A thread amends and resends only its own
    submissions, so each id's versions are sent one after another and `latest` is what the
    views must show.
    """

    url: Callable[[], str]
    headers: dict[str, str]
    year: int = YEAR
    threads: int = 3
    pause_s: float = 0.05
    timeout_s: float = 10.0
    give_up_s: float = 150.0
    max_backoff_s: float = 2.0
    seed: int = 7
    mix: bool = False
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    latest: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The last acknowledged body of each id."""
    versions: Counter[str] = field(default_factory=Counter)
    """How many different bodies were acknowledged under each id (1, or more after amendments)."""
    acked: set[str] = field(default_factory=set)
    unacked: set[str] = field(default_factory=set)
    answers: list[Answer] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    resends: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for index in range(self.threads):
            worker = threading.Thread(target=self._run, args=(random.Random(self.seed * 100 + index),),
                                      name=f"load-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)
        return self

    def stop(self, timeout: float | None = None) -> None:
        self._stop.set()
        deadline = time.monotonic() + (timeout if timeout is not None else self.give_up_s + self.timeout_s + 5)
        for worker in self._workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        assert not any(w.is_alive() for w in self._workers), "load threads did not finish in time"

    def acked_count(self) -> int:
        with self._lock:
            return len(self.acked)

    def acked_ids(self) -> set[str]:
        """A copy of the acknowledged ids, taken while no thread adds one."""
        with self._lock:
            return set(self.acked)

    def answers_since(self, since: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started >= since]

    def wait_for_acks(self, more: int, timeout: float, what: str) -> int:
        """Block until `more` further submissions are acknowledged; fail after `timeout` seconds."""
        target = self.acked_count() + more
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.acked_count() >= target:
                return self.acked_count()
            if self.unexpected:
                raise AssertionError(f"unexpected answers: {self.unexpected[:5]}")
            time.sleep(0.2)
        raise AssertionError(f"{what}: fewer than {more} new acknowledgements in {timeout:.0f}s "
                             f"(acked {self.acked_count()}, statuses {dict(self.statuses)})")

    def _run(self, rng: random.Random) -> None:
        own: list[str] = []
        with httpx.Client(timeout=self.timeout_s, headers=self.headers) as client:
            count = 0
            while not self._stop.is_set():
                count += 1
                body = self._next(rng, count, own)
                if body["id"] not in self.sent:
                    own.append(body["id"])
                self._until_acknowledged(client, body)
                self._stop.wait(self.pause_s)

    def _next(self, rng: random.Random, count: int, own: list[str]) -> dict[str, Any]:
        with self._lock:
            mine = [sid for sid in own[-200:] if sid in self.latest]
            if count % 10 == 0 and mine:
                self.resends += 1
                return self.latest[rng.choice(mine)]
            if self.mix and count % 5 == 1 and mine:
                seizures = [sid for sid in mine if self.latest[sid]["type"] == "seizure"]
                if seizures:
                    return amended(self.latest[rng.choice(seizures)], rng, self.year)
        if self.mix and count % 5 == 3:
            return other_type(rng, self.year)
        return seizure(rng, self.year)

    def _until_acknowledged(self, client: httpx.Client, body: dict[str, Any]) -> None:
        with self._lock:
            self.sent.setdefault(body["id"], body)
        give_up = time.monotonic() + self.give_up_s
        while time.monotonic() < give_up:
            started = time.monotonic()
            status, retry_after = 0, None
            try:
                response = client.post(f"{self.url()}/v1/submissions", json=body)
                status, retry_after = response.status_code, response.headers.get("retry-after")
            except httpx.HTTPError:
                pass
            answer = Answer(started, time.monotonic() - started, status, retry_after)
            with self._lock:
                self.answers.append(answer)
                self.statuses[status] += 1
                if status == 202:
                    self.acked.add(body["id"])
                    self.unacked.discard(body["id"])
                    if self.latest.get(body["id"], {}).get("data") != body["data"]:
                        self.versions[body["id"]] += 1
                    self.latest[body["id"]] = body
                    return
                if status not in RETRYABLE and status != 0:
                    self.unexpected.append(f"{status} for {body['id']}")
                    self.unacked.add(body["id"])
                    return
            backoff = min(float(retry_after), self.max_backoff_s) if retry_after else 0.5
            time.sleep(backoff)
        with self._lock:
            if body["id"] not in self.acked:
                self.unacked.add(body["id"])


Row = tuple[int, int, int]
"""cases, quantity (kg), submissions"""


def oracle(bodies: list[dict[str, Any]]) -> dict[str, Row]:
    """What the seizures view must show per country for the bodies' year, each submission counted once."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for body in {b["id"]: b for b in bodies if b["type"] == "seizure"}.values():
        row = totals[body["data"]["country"]]
        row[0] += body["data"]["cases"]
        row[1] += body["data"]["quantity"]
        row[2] += 1
    return {country: (r[0], r[1], r[2]) for country, r in totals.items()}


def view_rows(aggregate_url: str, headers: dict[str, str], year: int = YEAR) -> dict[str, Row]:
    """The seizures view per country for `year` (heroin, the only drug sent)."""
    rows: dict[str, Row] = {}
    for country in COUNTRIES:
        response = httpx.get(f"{aggregate_url}/v1/views/seizures", params={"country": country, "year": year},
                             headers=headers, timeout=10)
        response.raise_for_status()
        for item in response.json()["items"]:
            if item["drug"] == DRUG:
                rows[country] = (item["cases"], round(item["quantity"]), item["submissions"])
    return rows
