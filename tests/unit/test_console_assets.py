"""The files the console builds from the project's own data: the runbook table and the map outlines."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
import pytest

from services.aggregate.console import outlines
from services.aggregate.console.outlines import countries_json
from services.aggregate.console.runbook import runbook_entries, runbook_json

TABLE = """Some text.

| service | failing | meaning | what to do |
|---|---|---|---|
| ingest | `broker` | ingest cannot reach Kafka. | Check the broker. |
| validate, aggregate | `partitions` | no partitions. | Wait a few seconds. |

After the table.
"""


def test_each_row_of_the_runbook_table_becomes_an_entry_per_failing_check() -> None:
    assert runbook_entries(TABLE) == [
        {"services": ["ingest"], "failing": "broker", "meaning": "ingest cannot reach Kafka.",
         "action": "Check the broker."},
        {"services": ["validate", "aggregate"], "failing": "partitions", "meaning": "no partitions.",
         "action": "Wait a few seconds."}]


def test_the_runbook_the_project_ships_covers_every_readiness_check() -> None:
    entries = orjson.loads(runbook_json())["entries"]
    covered = {(service, e["failing"]) for e in entries for service in e["services"]}
    checks = {("ingest", "broker"), ("ingest", "keys"), ("validate", "broker"), ("validate", "partitions"),
              ("aggregate", "store"), ("aggregate", "broker"), ("aggregate", "partitions")}
    assert checks <= covered


def test_the_map_outlines_name_the_countries_by_iso3_with_lon_lat_rings() -> None:
    countries = {c["iso3"]: c for c in orjson.loads(countries_json())["countries"]}
    assert {"AFG", "TJK", "UZB", "KGZ", "IRN", "TUR", "PAK", "KAZ"} <= countries.keys()
    tajikistan = [point for ring in countries["TJK"]["rings"] for point in ring]
    assert all(67 < lon < 76 and 36 < lat < 42 for lon, lat in tajikistan)
    assert all(ring[0] == ring[-1] for c in countries.values() for ring in c["rings"])


def test_the_outlines_are_simplified_once_and_later_processes_read_what_was_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    countries_json.cache_clear()
    built = countries_json()
    assert [p.read_bytes() for p in tmp_path.iterdir()] == [built]

    def no_build() -> bytes:
        raise AssertionError("built again")

    monkeypatch.setattr(outlines, "_build", no_build)
    countries_json.cache_clear()  # as a new process
    assert countries_json() == built
    countries_json.cache_clear()
