"""The scale benchmark's pure parts: its checkpoints, read percentiles, goals and table; its submissions."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from bench import scale_report
from bench.scale_load import Corpus
from services.validate.rules import Rejected, validate
from shared.envelope import SubmissionReceived

pytestmark = pytest.mark.unit


def test_checkpoints_are_cumulative_sizes_in_ascending_order() -> None:
    assert scale_report.checkpoints("10000,100000") == [10_000, 100_000]
    assert scale_report.checkpoints("10k, 100k, 1m") == [10_000, 100_000, 1_000_000]
    assert scale_report.checkpoints("1_000_000") == [10_000, 100_000, 1_000_000]
    assert scale_report.checkpoints("50000") == [10_000, 50_000]
    assert scale_report.checkpoints("2000") == [2000]
    assert scale_report.checkpoints("") == [10_000, 100_000]


@pytest.mark.parametrize("text", ["100000,10000", "10k,10000", "ten", "0", "-5", "1.5k"])
def test_checkpoints_refuse_what_is_not_an_ascending_list_of_sizes(text: str) -> None:
    with pytest.raises(ValueError, match="--scale"):
        scale_report.checkpoints(text)


def test_read_figures_are_nearest_rank_percentiles() -> None:
    timings = [float(ms) for ms in range(100, 0, -1)]  # 100 reads of 1..100 ms, out of order
    assert scale_report.read_figures(timings) == {"p50": 50.0, "p99": 99.0, "n": 100}
    few = [30.0, 10.0, 20.0]
    assert scale_report.read_figures(few) == {"p50": 20.0, "p99": 30.0, "n": 3}
    assert scale_report.read_figures([]) == {"p50": None, "p99": None, "n": 0}


def point(size: int, rate: float, p99: float, rebuild: float, ceiling: float, store_peak: float,
          aggregate_rss: float) -> dict[str, Any]:
    return {"submissions": size,
            "aggregate": {"per_s": rate, "ratio_to_first": None},
            "reads_ms": {"seizures": {"p50": p99 / 2, "p99": p99, "n": 20},
                         "listing": {"p50": 10.0, "p99": 20.0, "n": 20}},
            "store_bytes_per_submission": 4000, "kafka_bytes_per_submission": 2000,
            "rebuild": {"per_s": rebuild, "seconds": 60.0, "replayed_all": True, "compared": True},
            "ceiling": {"per_s": ceiling},
            "rebuild_ratio": rebuild / ceiling,
            "rss_mb": {"store": {"now": store_peak / 2, "peak": store_peak},
                       "aggregate": {"now": aggregate_rss, "peak": aggregate_rss},
                       "ingest": {"now": 80.0, "peak": 80.0}}}


def test_goals_are_judged_on_the_figures_of_every_size() -> None:
    good = scale_report.goals([point(10_000, 1000.0, 90.0, 600.0, 1000.0, 500.0, 100.0),
                               point(100_000, 850.0, 99.0, 500.0, 1000.0, 900.0, 110.0)])
    assert good["reads_p99"]["met"] is True
    assert good["aggregate_rate"] == {"goal": 0.8, "ratio": 0.85, "met": True}
    assert good["rebuild"]["met"] is True
    assert good["store_rss"]["met"] is True and good["store_rss"]["peak_mb"] == 900.0
    assert good["service_rss_flat"]["met"] is True

    bad = scale_report.goals([point(10_000, 1000.0, 90.0, 600.0, 1000.0, 500.0, 100.0),
                              point(100_000, 700.0, 140.0, 400.0, 1000.0, 1100.0, 200.0)])
    assert bad["reads_p99"]["met"] is False
    assert bad["reads_p99"]["over_goal"] == {"10000": [], "100000": ["seizures"]}
    assert bad["aggregate_rate"]["met"] is False
    assert bad["rebuild"]["met"] is False
    assert bad["store_rss"]["met"] is False
    assert bad["service_rss_flat"]["grows"] == {"ingest": False, "validate": None, "aggregate": True}
    assert bad["service_rss_flat"]["met"] is False


def test_one_size_judges_no_growth() -> None:
    judged = scale_report.goals([point(10_000, 1000.0, 90.0, 600.0, 1000.0, 500.0, 100.0)])
    assert judged["aggregate_rate"]["met"] is None
    assert judged["service_rss_flat"]["met"] is None


def test_table_has_a_column_per_size_and_says_which_goals_are_met() -> None:
    points = [point(10_000, 1000.0, 90.0, 600.0, 1000.0, 500.0, 100.0),
              point(100_000, 700.0, 140.0, 400.0, 1000.0, 900.0, 100.0)]
    points[1]["aggregate"]["ratio_to_first"] = 0.7
    points[0]["rebuild"].update(replayed_all=False, compared=False)
    points[1]["rebuild"].update(seconds=300.0, compared=False, replay_seconds=155.0)
    doc = {"checkpoints": points, "goals": scale_report.goals(points)}
    console = Console(width=200, record=True, color_system=None)
    console.print(scale_report.table(doc))
    text = console.export_text()
    header = next(line for line in text.splitlines() if "figure" in line)
    assert "10,000" in header and "100,000" in header
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in text.splitlines() if line.startswith("│")}
    assert lines["seizures"] == ["45 / 90", "70 / 140", "p99 ≤ 100 ms", "no"]
    assert lines["÷ rate at the smallest size"][1:] == ["0.70", "≥ 0.8 at the largest", "no"]
    assert lines["rebuild ÷ ceiling"] == ["0.60", "0.40", "≥ 0.5", "no"]
    assert lines["RSS store MB (now / peak)"] == ["250 / 500", "450 / 900", "< 1,024 MB", "yes"]
    assert lines["rebuild time"][:2] == ["60 s (stopped while replaying)",
                                         "300 s (replayed in 155 s; stopped while comparing)"]


def test_console_pages_are_judged_on_their_slowest_load_and_shown_beside_the_reads() -> None:
    points = [point(10_000, 1000.0, 90.0, 600.0, 1000.0, 500.0, 100.0),
              point(100_000, 900.0, 90.0, 600.0, 1000.0, 500.0, 100.0)]
    points[0]["console_ms"] = {"console map": {"p50": 400.0, "p99": 700.0, "n": 5}}
    points[1]["console_ms"] = {"console map": {"p50": 600.0, "p99": 1200.0, "n": 5},
                               "console audit": {"p50": 300.0, "p99": 999.0, "n": 5}}
    judged = scale_report.goals(points)
    assert judged["console_load"]["over_goal"] == {"10000": [], "100000": ["console map"]}
    assert judged["console_load"]["met"] is False
    console = Console(width=200, record=True, color_system=None)
    console.print(scale_report.table({"checkpoints": points, "goals": judged}))
    lines = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
             for line in console.export_text().splitlines() if line.startswith("│")}
    assert lines["console map load"] == ["400 / 700", "600 / 1,200", "max < 1,000 ms", "no"]
    assert lines["console audit load"] == ["n/a", "300 / 999", "max < 1,000 ms", "yes"]
    unmeasured = point(10_000, 1000.0, 90.0, 600.0, 1000.0, 500.0, 100.0)
    assert scale_report.goals([unmeasured])["console_load"]["met"] is None


def received(body: dict[str, Any]) -> SubmissionReceived:
    data = dict(body["data"])
    if body["type"] == "training":  # as ingest passes it on: the participant known by a pseudonym only
        person = {k: v for k, v in data["participant"].items() if k not in ("national_id", "full_name")}
        data["participant"] = {**person, "pseudonym": "a" * 64}
    return SubmissionReceived(id=body["id"], type=body["type"], schema_version=body["schema_version"], data=data,
                              submitted_by="officer", received_at=datetime.now(UTC), trace_id="0" * 32)


def test_the_corpus_mixes_five_types_with_amendments_and_only_the_broken_ones_are_rejected() -> None:
    corpus = Corpus(seed=3)
    bodies = corpus.next(4000)
    assert corpus.submissions == 4000
    assert len(bodies) == 4000 + corpus.amendments
    ids = Counter(b["id"] for b in bodies)
    assert sum(n - 1 for n in ids.values()) == corpus.amendments > 100
    assert set(Counter(b["type"] for b in bodies)) == {"seizure", "price", "financial_case", "treatment_facility",
                                                       "training"}
    assert len({b["data"].get("country") or b["data"].get("host_country") for b in bodies}) > 30
    first: dict[str, dict[str, Any]] = {}
    for b in bodies:
        first.setdefault(b["id"], b)
    rejected = sum(isinstance(validate(received(b)), Rejected) for b in first.values())
    assert rejected == corpus.broken > 50
