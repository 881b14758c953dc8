"""The `dmp` commands as an officer types them, without a network (`--no-sync`, verdicts already known)."""

from __future__ import annotations

import csv
import json
import stat
from collections.abc import Callable, Iterator
from typing import Any

import openpyxl
import pytest
from typer.testing import CliRunner

from cli import output
from cli.main import app
from cli.queue import Item, Queue
from shared.envelope import ErrorDetail
from tests.factories import envelope, seizure_data

HEADER = "id,seized_on,country,place,lat,lon,drug,quantity,unit,cases,persons_arrested,transport,route,transit\n"
GOOD = ",2024-03-02,AFG,Islam Qala,,,heroin,12.5,kg,1,2,land,balkan,IRN;TUR\n"
BAD = ",2024-03-03,afg,Herat,34.3,,heroin,0,l,1,2,land,balkan,\n"


@pytest.fixture
def run(tmp_path, monkeypatch) -> Iterator[Callable[..., Any]]:
    monkeypatch.setattr(output.console, "width", 200)
    runner = CliRunner(env={"DMP_HOME": str(tmp_path / "home"), "DMP_INGEST_URL": None, "DMP_AGGREGATE_URL": None,
                            "DMP_KEY": None, "DMP_BATCH_SIZE": None, "DMP_SYNC_RETRIES": None})

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input)

    yield invoke


def queue_of(tmp_path) -> Queue:
    return Queue.open(tmp_path / "home" / "queue.sqlite3")


def test_template_prints_the_header_or_writes_a_workbook(run, tmp_path) -> None:
    result = run("template", "seizure")
    assert result.exit_code == 0
    assert result.stdout.startswith("id,seized_on,country,place,lat,lon,drug,quantity")
    result = run("template", "training", "--output", str(tmp_path / "t.xlsx"))
    assert result.exit_code == 0, result.output
    assert openpyxl.load_workbook(tmp_path / "t.xlsx").sheetnames == ["training", "columns"]
    assert run("template", "nonsense").exit_code == 2


def test_import_shows_every_problem_by_row_and_column_and_queues_only_good_rows(run, tmp_path) -> None:
    sheet = tmp_path / "seizures.csv"
    sheet.write_text(HEADER + GOOD + BAD)
    result = run("import", str(sheet), "--type", "seizure", "--no-sync")
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stdout.splitlines() if "│ 3 " in line]
    assert [line.split("│")[2].strip() for line in lines] == ["country", "lon", "quantity", "unit"]
    assert "1 new, 0 amended, 0 unchanged, 1 with problems (not queued)" in result.stdout
    with queue_of(tmp_path) as q:
        assert q.counts()["pending"] == 1
        [(_, stored)] = q.pending(10)
    assert stored.row == 2
    assert stored.data["transit"] == ["IRN", "TUR"]
    with sheet.open() as f:
        written = list(csv.DictReader(f))
    assert written[0]["id"] == stored.id
    assert written[1]["id"]  # the bad row keeps its id for when it is corrected


def test_reimporting_changes_nothing_and_a_corrected_row_is_an_amendment(run, tmp_path) -> None:
    sheet = tmp_path / "seizures.csv"
    sheet.write_text(HEADER + GOOD + BAD)
    run("import", str(sheet), "--type", "seizure", "--no-sync")
    again = run("import", str(sheet), "--type", "seizure", "--no-sync")
    assert "0 new, 0 amended, 1 unchanged" in again.stdout
    sheet.write_text(sheet.read_text().replace("12.5", "13").replace("afg,Herat,34.3,,heroin,0,l",
                                                                       "AFG,Herat,,,heroin,3,kg"))
    fixed = run("import", str(sheet), "--type", "seizure", "--no-sync")
    assert fixed.exit_code == 0, fixed.output
    assert "1 new, 1 amended (rows 2), 0 unchanged, 0 with problems" in fixed.stdout
    with queue_of(tmp_path) as q:
        assert q.counts()["pending"] == 2


def test_rows_that_moved_in_a_sheet_without_ids_stop_the_import(run, tmp_path) -> None:
    path = tmp_path / "seizures.xlsx"
    rows = [["2024-03-02", "AFG", f"post {n}", "heroin", n + 1, "kg", "land", "balkan"] for n in range(3)]
    header = ["seized_on", "country", "place", "drug", "quantity", "unit", "transport", "route"]

    def save(data: list[list[Any]]) -> None:
        book = openpyxl.Workbook()
        book.active.append(header)
        for row in data:
            book.active.append(row)
        book.save(path)

    save(rows)
    first = run("import", str(path), "--type", "seizure", "--no-sync")
    assert first.exit_code == 0, first.output
    assert "row ids come from row numbers" in first.stderr
    save([rows[0], ["2024-03-09", "AFG", "inserted", "opium", 9, "kg", "land", "balkan"], *rows[1:]])
    moved = run("import", str(path), "--type", "seizure", "--no-sync")
    assert moved.exit_code == 1
    assert "nothing was queued" in moved.stderr
    with queue_of(tmp_path) as q:
        assert q.counts()["pending"] == 3
        assert {s.data["place"] for _, s in q.pending(10)} == {"post 0", "post 1", "post 2"}
    allowed = run("import", str(path), "--type", "seizure", "--no-sync", "--write-ids", "--allow-duplicates")
    assert allowed.exit_code == 0, allowed.output
    assert [c.value for c in openpyxl.load_workbook(path).active[1]][-1] == "id"


def test_submit_checks_locally_writes_missing_ids_and_queues_valid_envelopes(run, tmp_path) -> None:
    good = envelope()
    bad = {"type": "seizure", "data": seizure_data(country="XXX")}
    twin = {**good, "data": seizure_data(place="elsewhere")}
    path = tmp_path / "two.json"
    path.write_text(json.dumps([good, bad, twin]))
    result = run("submit", str(path), "--no-sync")
    assert result.exit_code == 1
    assert "data.country" in result.stdout
    assert "is also item 1's id" in result.stdout
    saved = json.loads(path.read_text())
    assert saved[0]["id"] == good["id"] and saved[1]["id"]
    with queue_of(tmp_path) as q:
        assert [s.id for _, s in q.pending(10)] == [good["id"]]


def test_status_counts_and_maps_rejections_back_to_the_sheet_then_exports_them(run, tmp_path) -> None:
    with queue_of(tmp_path) as q:
        ok = Item("00000000-0000-4000-8000-000000000001", "seizure", 2, seizure_data(), "sheet", "/x/s.csv", 2)
        bad = Item("00000000-0000-4000-8000-000000000002", "seizure", 2, seizure_data(place="p"), "sheet", "/x/s.csv",
                   9)
        waiting = Item("00000000-0000-4000-8000-000000000003", "seizure", 2, seizure_data(place="q"), "sheet",
                       "/x/s.csv", 10)
        q.enqueue([ok, bad, waiting])
        for i in (ok, bad):
            q.mark_received(i.id, i.content_hash)
        q.apply_verdict(ok.id, "validated", 1, [], 1)
        q.apply_verdict(bad.id, "rejected", 1, [ErrorDetail(loc=["data", "place"], msg="is too short", type="x")],
                        None)
    export = tmp_path / "rejected.csv"
    result = run("status", "--export", str(export))
    assert result.exit_code == 0, result.output
    counts = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in result.stdout.splitlines()
              if line.count("│") == 3}
    assert counts == {"pending (not sent yet)": "1", "received (awaiting a verdict)": "0", "validated": "1",
                      "rejected (to correct)": "1"}
    assert "s.csv │ 9   │ place  │ p     │ is too short" in result.stdout
    with export.open(encoding="utf-8-sig") as f:
        assert [(r["row"], r["column"], r["problem"]) for r in csv.DictReader(f)] == [("9", "place", "is too short")]


def test_login_keeps_urls_and_key_private_and_never_prints_the_key(run, tmp_path) -> None:
    result = run("login", "--url", "http://127.0.0.1:9/", "--key", "-", input="dmp_0123456789ab_verysecret\n")
    assert result.exit_code == 0, result.output
    stored = json.loads((tmp_path / "home" / "config.json").read_text())
    assert stored == {"ingest_url": "http://127.0.0.1:9", "aggregate_url": "http://127.0.0.1:8002",
                      "key": "dmp_0123456789ab_verysecret"}
    assert stat.S_IMODE((tmp_path / "home" / "config.json").stat().st_mode) == 0o600
    assert "verysecret" not in result.output
    assert "ingest does not answer" in result.stderr
    run("login", "--status-url", "http://status:1")
    assert json.loads((tmp_path / "home" / "config.json").read_text())["aggregate_url"] == "http://status:1"
    run("login", "--key", "")
    assert "key" not in json.loads((tmp_path / "home" / "config.json").read_text())


def test_the_contracts_commands_still_work(run) -> None:
    result = run("admin", "contracts", "check")
    assert result.exit_code == 0, result.output
    assert "matches" in result.stdout


def test_version_prints_the_projects_version_and_exits_zero(run) -> None:
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"dmp {project['version']}"
