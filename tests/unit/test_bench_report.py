"""The benchmark's report: medians of per-round ratios, goals, lower bounds, the printed table."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from bench import report
from bench.options import parse


def render(doc: dict[str, Any]) -> str:
    console = Console(width=200, record=True, color_system=None)
    console.print(report.table(doc))
    return console.export_text()


def sample() -> dict[str, Any]:
    stages = {
        "http_single": report.StageRounds(service=[100.0, 120.0, 110.0], ceiling=[1000.0, 1000.0, 1000.0]),
        "validate": report.StageRounds(service=[900.0, 800.0, 850.0], ceiling=[1000.0, 1000.0, 1000.0]),
    }
    latency = {"e2e_p50": 120.0, "e2e_p99": 480.04, "ack_p50": 3.0, "ack_p99": 9.0}
    return report.build(stages, latency, {"ingest": 80.0, "validate": 151.0}, {"cores": 2},
                        extra_absolute={"e2e": {"rate_per_s": 50.0, "submissions": 750, "followed": 750,
                                                "not_visible": 0, "p99_is_lower_bound": False}})


def test_ratio_is_the_median_of_the_per_round_ratios() -> None:
    doc = sample()
    assert doc["ratios"]["http_single"] == 0.11
    assert doc["ratios"]["validate"] == 0.85
    assert doc["ratios"]["ingest_batch"] is None
    assert doc["absolute"]["validate"]["service_per_s"] == 850.0
    assert doc["absolute"]["validate"]["rounds"]["ratios"] == [0.9, 0.8, 0.85]


def test_document_has_the_agreed_sections() -> None:
    doc = sample()
    assert set(doc["ratios"]) == {"http_single", "ingest_batch", "validate", "aggregate"}
    assert {"e2e_p50", "e2e_p99"} <= set(doc["latency_ms"])
    assert doc["latency_ms"]["e2e_p99"] == 480.0
    assert doc["machine"] == {"cores": 2}


def test_table_marks_goals_met_and_missed() -> None:
    text = render(sample())
    rows = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") > 3}
    assert "no" in rows["http_single"].split("│")[4]
    assert "yes" in rows["validate"].split("│")[4]
    assert "n/a" in rows["ingest_batch"].split("│")[4]
    assert "yes" in rows["e2e_p99"].split("│")[4]
    assert "yes" in rows["rss ingest"].split("│")[4]
    assert "no" in rows["rss validate"].split("│")[4]
    assert "n/a" in rows["rss aggregate"].split("│")[4]


def test_censored_latencies_print_as_lower_bounds() -> None:
    doc = sample()
    doc["absolute"]["e2e"].update(not_visible=20, p99_is_lower_bound=True)
    text = render(doc)
    assert "≥ 480 ms" in text
    assert "20 not visible" in text


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert report.percentile(values, 50) == 50.0
    assert report.percentile(values, 99) == 99.0
    assert report.percentile([7.0], 99) == 7.0
    assert report.percentile([], 50) is None


def test_options_from_environment_and_argv() -> None:
    opts = parse(["--rounds", "5"], env={"BENCH_ROUNDS": "2", "BENCH_AGGREGATE_EVENTS": "100", "BENCH_KEEP": "1"})
    assert opts.rounds == 5
    assert opts.aggregate_events == 100
    assert opts.keep is True


def test_a_probe_keeps_up_while_latency_stays_level_and_falls_behind_when_it_climbs() -> None:
    from bench.runner import keeps_up

    level = {"visible": [(t, 200.0 + (t % 3) * 40) for t in range(60)], "censored": []}
    climbing = {"visible": [(t, 200.0 + 25 * t) for t in range(60)], "censored": []}
    unseen = {"visible": level["visible"], "censored": [30_000.0]}
    queued = {"visible": [(t, 6_000.0 + (t % 3) * 40) for t in range(60)], "censored": []}
    assert keeps_up(level)[0]
    assert not keeps_up(queued)[0]
    assert not keeps_up(climbing)[0]
    assert "first third sent" in keeps_up(climbing)[1]
    assert not keeps_up(unseen)[0]
