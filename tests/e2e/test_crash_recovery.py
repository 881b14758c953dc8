"""Killing the aggregate consumer mid-stream (SIGKILL) must leave the views exact after restart."""

from __future__ import annotations

import random
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from tests.conftest import Stack, eventually
from tests.factories import envelope


def test_view_is_exact_after_aggregate_is_killed_mid_stream(stack: Stack) -> None:
    rng = random.Random(7)
    countries = ["IRN", "TUR", "AZE"]
    bodies = [envelope(country=rng.choice(countries), seized_on=f"2019-0{rng.randint(1, 9)}-15",
                       quantity=rng.randint(1, 5000), unit="g", cases=rng.randint(1, 3),
                       persons_arrested=rng.randint(0, 4)) for _ in range(300)]
    # Every third submission is sent again, and every fifth is amended to another country.
    amendments = [envelope(b["id"], **{**b["data"], "country": "GEO"}) for b in bodies[::5]]
    sends = bodies + bodies[::3] + amendments

    expected: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    final = {b["id"]: b["data"] for b in bodies} | {a["id"]: a["data"] for a in amendments}
    for data in final.values():
        row = expected[(data["country"], 2019)]
        row[0] += data["cases"]
        row[1] += data["quantity"]
        row[2] += data["persons_arrested"]
        row[3] += 1

    ingest = stack.url("ingest")
    with httpx.Client(timeout=15, headers=stack.officer) as client:
        def post(body: dict[str, Any]) -> int:
            return client.post(f"{ingest}/v1/submissions", json=body).status_code

        with ThreadPoolExecutor(8) as pool:
            first = list(pool.map(post, sends[:250]))
            stack.kill("aggregate")
            rest = list(pool.map(post, sends[250:]))
    assert set(first + rest) == {202}
    stack.start("aggregate")

    def rows() -> dict[tuple[str, int], list[int]]:
        items = []
        for country in [*countries, "GEO"]:
            response = httpx.get(f"{stack.url('aggregate')}/v1/views/seizures",
                                 params={"country": country, "year": 2019}, headers=stack.analyst, timeout=5)
            items += response.json()["items"]
        return {(i["country"], i["year"]): [i["cases"], round(i["quantity"] * 1000), i["persons_arrested"],
                                            i["submissions"]] for i in items}

    eventually(lambda: rows() == dict(expected), timeout=60, interval=0.5, what="views equal to the oracle")
    assert rows() == dict(expected)
