"""The field officer's command line against the real stack: import, offline queue, interrupted syncs, verdicts.

The CLI runs as a subprocess (`python -m cli.main`), with its own DMP_HOME per test. Each test uses
its own countries and years, since the views are shared by the tests of this module.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from cli.queue import Item, Queue
from tests.conftest import Stack, eventually
from tests.factories import seizure_data

ROOT = Path(__file__).resolve().parents[2]
SEIZURE_HEADER = ["id", "seized_on", "country", "place", "lat", "lon", "drug", "quantity", "unit", "cases",
                  "persons_arrested", "transport", "route", "origin", "destination", "transit", "agency"]


class Officer:
    """One officer's machine: a DMP_HOME, their own key, and the stack's URLs in the environment."""

    def __init__(self, stack: Stack, home: Path) -> None:
        self.stack, self.home = stack, home
        self.key = stack.key("officer", name="cli e2e")

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DMP_")}
        return {**env, "DMP_HOME": str(self.home), "DMP_INGEST_URL": self.stack.url("ingest"),
                "DMP_AGGREGATE_URL": self.stack.url("aggregate"), "DMP_KEY": self.key, "DMP_SYNC_RETRIES": "2",
                "COLUMNS": "200",
                **extra}

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "cli.main", *args]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), cwd=ROOT, env=self.env(**env), capture_output=True, text=True,
                              timeout=180)

    def queue(self) -> Queue:
        return Queue.open(self.home / "queue.sqlite3")

    def counts(self) -> dict[str, int]:
        with self.queue() as q:
            return {str(state): n for state, n in q.counts().items()}


def write_sheet(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, SEIZURE_HEADER)
        writer.writeheader()
        writer.writerows(rows)


def read_sheet(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def row(**fields: Any) -> dict[str, Any]:
    return {"transport": "land", "route": "balkan", "place": "Border post", "unit": "kg", "drug": "heroin",
            "cases": 1, "persons_arrested": 0, **fields}


def view(stack: Stack, country: str, year: int) -> dict[str, tuple[int, float, int, int]]:
    """drug → (cases, quantity, persons arrested, submissions), as analysts read it."""
    response = httpx.get(f"{stack.url('aggregate')}/v1/views/seizures", params={"country": country, "year": year},
                         headers=stack.analyst, timeout=5)
    assert response.status_code == 200, response.text
    return {i["drug"]: (i["cases"], round(i["quantity"], 6), i["persons_arrested"], i["submissions"])
            for i in response.json()["items"]}


def status(stack: Stack, submission_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{stack.url('aggregate')}/v1/submissions/{submission_id}", headers=stack.analyst,
                         timeout=5)
    return response.json() if response.status_code == 200 else None


def problem_cells(stdout: str) -> set[tuple[str, str]]:
    """(row, column) of every line of a problems table (import's: row first; status's: sheet, then row)."""
    cells = set()
    for line in stdout.splitlines():
        parts = [p.strip() for p in line.split("│")]
        for i in (1, 2):
            if len(parts) >= 5 and parts[i].isdigit():
                cells.add((parts[i], parts[i + 1]))
                break
    return cells


def _count_line(stdout: str, label: str) -> str:
    """The line of `dmp status`'s counts table labelled `label`."""
    return next((line for line in stdout.splitlines() if label in line and "│" in line), "")


def status_shows(officer: Officer, count: int, label: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`dmp status` (run until it shows `count` submissions `label`)."""
    def check() -> subprocess.CompletedProcess[str] | None:
        result = officer.run("status", *args)
        return result if f"│ {count} " in _count_line(result.stdout, label) else None

    return eventually(check, what=f"{count} {label} in `dmp status`")


@pytest.fixture
def officer(stack: Stack, tmp_path: Path) -> Officer:
    return Officer(stack, tmp_path / "home")


def test_import_sends_good_rows_once_shows_bad_ones_and_follows_corrections(officer: Officer, tmp_path) -> None:
    stack = officer.stack
    sheet = tmp_path / "tkm-2014.csv"
    write_sheet(sheet, [
        row(seized_on="2014-02-01", country="TKM", quantity=1500, unit="g", persons_arrested=2),
        row(seized_on="2014-03-01", country="TKM", drug="opium", quantity=40, cases=2),
        row(seized_on="2014-04-01", country="TKM", quantity=2.5, persons_arrested=1, transit="IRN;TUR"),
        row(seized_on="2014-05-01", country="tkm", quantity=1),
        row(seized_on="2014-06-01", country="TKM", drug="opium", quantity=-3),
        row(seized_on="2014-07-01", country="TKM", quantity=1, unit="l"),
    ])

    imported = officer.run("import", str(sheet), "--type", "seizure")
    assert imported.returncode == 1, imported.stdout + imported.stderr
    assert problem_cells(imported.stdout) == {("5", "country"), ("6", "quantity"), ("7", "unit")}
    assert "3 new, 0 amended, 0 unchanged, 3 with problems (not queued)" in imported.stdout
    assert "3 received" in imported.stdout
    expected = {"heroin": (2, 4.0, 3, 2), "opium": (2, 40.0, 0, 1)}
    eventually(lambda: view(stack, "TKM", 2014) == expected, what="the three good rows in the view")

    ids = [r["id"] for r in read_sheet(sheet)]
    assert all(ids) and len(set(ids)) == 6  # written back, one per row
    checked = status_shows(officer, 3, "validated")
    assert "│ 0 " in _count_line(checked.stdout, "rejected")

    again = officer.run("import", str(sheet), "--type", "seizure")
    assert "0 new, 0 amended, 3 unchanged, 3 with problems" in again.stdout
    assert "nothing to send" in again.stdout
    first = status(stack, ids[0])
    assert first is not None and len(first["history"]) == 1  # not even resent
    assert view(stack, "TKM", 2014) == expected

    corrected = read_sheet(sheet)
    corrected[2]["quantity"] = "3.5"  # an amendment of a sent row
    corrected[4]["quantity"] = "7"  # a bad row, fixed
    write_sheet(sheet, corrected)
    fixed = officer.run("import", str(sheet), "--type", "seizure")
    assert "1 new, 1 amended (rows 4), 2 unchanged, 2 with problems" in fixed.stdout
    eventually(lambda: view(stack, "TKM", 2014) == {"heroin": (2, 5.0, 3, 2), "opium": (3, 47.0, 0, 2)},
               what="the view following the amendment and the corrected row")
    assert eventually(lambda: (s := status(stack, ids[2])) and s["version"] == 2 and s["status"] == "validated")


def test_a_sync_killed_midway_and_run_again_sends_every_row_exactly_once(officer: Officer, tmp_path) -> None:
    stack = officer.stack
    rng = random.Random(11)
    rows = [row(seized_on=f"2015-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", country=rng.choice(["IRQ", "SYR"]),
                place=f"checkpoint {n}", quantity=rng.randint(1, 5000), unit="g", cases=rng.randint(1, 3),
                persons_arrested=rng.randint(0, 4)) for n in range(300)]
    expected: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0, 0])
    for r in rows:
        totals = expected[r["country"]]
        totals[0] += r["cases"]
        totals[1] += r["quantity"]
        totals[2] += r["persons_arrested"]
        totals[3] += 1
    sheet = tmp_path / "levant-2015.csv"
    write_sheet(sheet, rows)
    queued = officer.run("import", str(sheet), "--type", "seizure", "--no-sync")
    assert queued.returncode == 0, queued.stdout + queued.stderr
    assert officer.counts()["pending"] == 300

    # Two submissions per request make the sync slow enough to be caught in the middle.
    sync = subprocess.Popen(officer.command("sync"), cwd=ROOT, env=officer.env(DMP_BATCH_SIZE="2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: officer.counts()["received"] >= 40, timeout=60, interval=0.01,
                   what="the sync to be under way")
    finally:
        sync.send_signal(signal.SIGKILL)
        sync.wait(timeout=10)
    interrupted = officer.counts()
    assert sync.returncode == -signal.SIGKILL
    assert 40 <= interrupted["received"] < 300 and interrupted["pending"] == 300 - interrupted["received"]

    resumed = officer.run("sync", "--batch-size", "50")  # any size: the point is the same ids, sent again
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert officer.counts()["received"] == 300

    def figures() -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        for country in ("IRQ", "SYR"):
            for drug, (cases, quantity, arrested, submissions) in view(stack, country, 2015).items():
                assert drug == "heroin"
                found[country] = [cases, round(quantity * 1000), arrested, submissions]
        return found

    eventually(lambda: figures() == dict(expected), timeout=60, interval=0.5, what="each row counted exactly once")
    with officer.queue() as q:
        assert {s.sent_versions for s in q.in_state("received")} == {1}  # each row sent as one submission


def test_offline_imports_wait_in_the_queue_until_ingest_is_back(officer: Officer, tmp_path) -> None:
    stack = officer.stack
    sheet = tmp_path / "geo-2016.csv"
    write_sheet(sheet, [row(seized_on="2016-01-10", country="GEO", place=f"Sarpi {n}", quantity=n + 1)
                        for n in range(5)])
    port = stack.procs["ingest"].port
    stack.kill("ingest")
    try:
        offline = officer.run("import", str(sheet), "--type", "seizure", DMP_SYNC_RETRIES="1")
        assert offline.returncode == 3, offline.stdout + offline.stderr
        assert "Traceback" not in offline.stderr
        assert "could not send 5 submission(s): cannot reach ingest" in offline.stderr
        assert "run `dmp sync` when the connection is back" in offline.stderr
        assert officer.counts()["pending"] == 5
        waiting = officer.run("status")
        assert "│ 5 " in _count_line(waiting.stdout, "pending")
    finally:
        stack.start("ingest", port=port)

    back = officer.run("sync")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "5 received" in back.stdout
    assert officer.counts()["received"] == 5
    eventually(lambda: view(stack, "GEO", 2016) == {"heroin": (5, 15.0, 0, 5)}, what="the offline rows in the view")


def test_rejections_by_the_server_come_back_as_sheet_rows_and_columns(officer: Officer, tmp_path) -> None:
    # A row the server rejects though this CLI's copy of the rules passed it (as when the server's rules are newer).
    sheet_path = str(tmp_path / "kaz-2017.csv")
    good = Item("5b0f5ac0-1111-4000-8000-000000000001", "seizure", 2,
                seizure_data(country="KAZ", seized_on="2017-03-01"), "sheet", sheet_path, 2)
    bad = Item("5b0f5ac0-1111-4000-8000-000000000002", "seizure", 2,
               seizure_data(country="KAZ", seized_on="2017-03-02", unit="l", transit=["RUS", "XXY"]), "sheet",
               sheet_path, 7)
    with officer.queue() as q:
        q.enqueue([good, bad])
    assert officer.run("sync").returncode == 0

    export = tmp_path / "rejected.csv"
    checked = status_shows(officer, 1, "rejected", "--export", str(export))
    assert {("7", "unit"), ("7", "transit")} <= problem_cells(checked.stdout)
    with export.open(encoding="utf-8-sig", newline="") as f:
        exported = list(csv.DictReader(f))
    assert {(r["row"], r["column"], r["value"]) for r in exported} == {("7", "unit", "l"),
                                                                       ("7", "transit", "XXY")}
    assert all(r["source"] == sheet_path and r["id"] == bad.id for r in exported)

    one = officer.run("status", bad.id)
    assert one.returncode == 0
    assert "rejected" in one.stdout and "kaz-2017.csv, row 7" in one.stdout
    rows = [[p.strip() for p in line.split("│")[1:3]] for line in one.stdout.splitlines() if "│" in line]
    assert ["data.unit", "unit"] in rows
    assert ["data.transit.1", "transit"] in rows
    eventually(lambda: view(officer.stack, "KAZ", 2017) == {"heroin": (1, 1.5, 2, 1)}, what="only the good row counted")


def test_training_participants_are_checked_locally_and_their_identity_leaves_no_trace(officer: Officer,
                                                                                       tmp_path) -> None:
    sheet = tmp_path / "training.csv"
    template = officer.run("template", "training", "--output", str(sheet))
    assert template.returncode == 0
    header = sheet.read_text().strip().split(",")
    person = {"course_id": "TRN-2018-001", "course_title": "Controlled Delivery", "starts_on": "2018-04-02",
              "ends_on": "2018-04-06", "host_country": "KGZ", "programme": "Border Liaison Offices",
              "participant.national_id": "AB 123456", "participant.full_name": "Aziza Karimova",
              "participant.agency": "Customs", "participant.country": "KGZ", "participant.gender": "female",
              "participant.role": "inspector"}
    with sheet.open("a", newline="") as f:
        writer = csv.DictWriter(f, header)
        writer.writerow(person)
        writer.writerow({**person, "participant.national_id": "", "participant.full_name": "Bakyt Osmonov"})
    imported = officer.run("import", str(sheet), "--type", "training")
    assert imported.returncode == 1, imported.stdout + imported.stderr
    assert problem_cells(imported.stdout) == {("3", "participant.national_id")}
    assert "Osmonov" not in imported.stdout
    submission_id = read_sheet(sheet)[0]["id"]
    verdict = eventually(lambda: (s := status(officer.stack, submission_id)) and s["status"] != "received" and s,
                         what="the participant's verdict")
    assert verdict["status"] == "validated", verdict
    with officer.queue() as q:
        kept = q.get(submission_id)
    assert kept is not None and kept.state == "received"
    assert not {"national_id", "full_name"} & set(kept.data["participant"])
