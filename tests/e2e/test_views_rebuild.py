"""`dmp admin views rebuild` against the running stack: the rebuilt views equal the live ones (withdrawals included),
and after `--swap` the aggregate service follows the new generation and keeps the views exact; the ARQ export says which
one it read."""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

import httpx
from typer.testing import CliRunner

from cli.views import views_app
from tests.conftest import Stack, eventually
from tests.e2e.helpers import submit_batch, withdraw
from tests.factories import envelope

runner = CliRunner()


def expected_rows(final: dict[str, dict[str, Any]]) -> dict[tuple[str, str], list[int]]:
    rows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for data in final.values():
        row = rows[(data["country"], data["drug"])]
        row[0] += data["cases"]
        row[1] += data["quantity"]
        row[2] += 1
    return dict(rows)


def rows(stack: Stack) -> dict[tuple[str, str], list[int]]:
    response = httpx.get(f"{stack.url('aggregate')}/v1/views/seizures", params={"year": 2016, "limit": 1000},
                         headers=stack.analyst, timeout=10)
    return {(i["country"], i["drug"]): [i["cases"], round(i["quantity"] * 1000), i["submissions"]]
            for i in response.json()["items"]}


def export(stack: Stack, country: str) -> dict[str, Any]:
    response = httpx.get(f"{stack.url('aggregate')}/v1/exports/arq", params={"country": country, "year": 2016},
                         headers=stack.analyst, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def listed(stack: Stack, **filters: str) -> set[str]:
    """Every submission id the listing gives for `filters`, following `next` to the end."""
    ids: set[str] = set()
    cursor: str | None = None
    while True:
        params = {**filters, "limit": "1000", **({"cursor": cursor} if cursor else {})}
        response = httpx.get(f"{stack.url('aggregate')}/v1/submissions", params=params, headers=stack.analyst,
                             timeout=10)
        assert response.status_code == 200, response.text
        page = response.json()
        ids |= {item["id"] for item in page["items"]}
        cursor = page["next"]
        if cursor is None:
            return ids


def test_rebuild_from_the_log_equals_live_and_a_swap_keeps_the_running_stack_exact(stack: Stack) -> None:
    rng = random.Random(3)
    bodies = [envelope(country=rng.choice(["IRN", "TUR"]), drug=rng.choice(["heroin", "opium"]),
                       seized_on="2016-05-15", quantity=rng.randint(1, 900), unit="g", cases=rng.randint(1, 3))
              for _ in range(40)]
    amended = [envelope(b["id"], **{**b["data"], "country": "GEO"}) for b in bodies[::4]]
    rejected = [envelope(b["id"], **{**b["data"], "unit": "l"}) for b in bodies[1::5]]  # litres of a powder
    final = {b["id"]: b["data"] for b in bodies + amended}
    for batch in (bodies + bodies[::3], amended + rejected):
        assert submit_batch(stack, batch).status_code in (200, 207)
    eventually(lambda: rows(stack) == expected_rows(final), timeout=60, interval=0.5, what="the live views")
    withdrawn = bodies[::6]  # some of them amended, one of them twice
    for body in [*withdrawn, withdrawn[0]]:
        assert withdraw(stack, body["id"], {"reason": "entered by mistake"}).status_code == 202
    for body in withdrawn:
        final.pop(body["id"], None)
    eventually(lambda: rows(stack) == expected_rows(final), timeout=60, interval=0.5, what="the withdrawals")

    checked = runner.invoke(views_app, ["rebuild", "--wait", "20"], env=stack.env)
    assert checked.exit_code == 0, checked.output
    assert "no differences" in checked.output

    swapped = runner.invoke(views_app, ["rebuild", "--swap", "--wait", "20"], env=stack.env)
    assert swapped.exit_code == 0, swapped.output
    assert "generation 2 is live" in swapped.output
    eventually(lambda: export(stack, "GEO")["source"]["generation"] == 2, timeout=60, interval=0.5,
               what="aggregate to follow the swap")

    more = [envelope(country="ARM", seized_on="2016-07-01", quantity=250, unit="g", cases=2) for _ in range(5)]
    moved_back = [envelope(a["id"], **{**a["data"], "country": "IRN"}) for a in amended[::2]]  # some withdrawn
    assert submit_batch(stack, more + moved_back).status_code in (200, 207)
    final |= {b["id"]: b["data"] for b in more + moved_back}
    eventually(lambda: rows(stack) == expected_rows(final), timeout=60, interval=0.5, what="views after the swap")
    # The rebuilt generation lists by status from its own windows: the rejected are those whose last version was
    # the rejected one (neither withdrawn nor amended again since).
    still_rejected = {b["id"] for b in rejected} - {b["id"] for b in withdrawn + moved_back}
    eventually(lambda: listed(stack, status="rejected") == still_rejected, timeout=60, interval=0.5,
               what="the rebuilt generation's listing of rejected submissions")
    assert listed(stack, country="ARM") == {b["id"] for b in more}

    arq = export(stack, "ARM")
    assert [(s["drug"], s["cases"], s["submissions"]) for s in arq["seizures"]] == [("heroin", 10, 5)]
    assert arq["source"]["partitions"] and all(p["last_offset"] is None or p["processed_through"] >= p["last_offset"]
                                               for p in arq["source"]["partitions"])
    status = runner.invoke(views_app, ["status"], env=stack.env)
    assert status.exit_code == 0 and "live generation 2" in status.output
