"""The benchmark's results: medians, goals, the JSON document and the printed table. Pure."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

RATIO_GOALS: dict[str, float] = {"http_single": 0.5, "ingest_batch": 0.5, "validate": 0.8, "aggregate": 0.8}
"""Each stage's throughput ÷ its ceiling should be at least this."""
P99_GOAL_MS = 500.0
RSS_GOAL_MB = 150.0
SERVICES = ("ingest", "validate", "aggregate")

LABELS = {
    "http_single": ("ingest, one submission per POST", "bare uvicorn + orjson"),
    "ingest_batch": ("ingest, POST /v1/submissions/batch", "raw aiokafka producer"),
    "validate": ("validate (rules + transaction)", "transactional passthrough"),
    "aggregate": ("aggregate (projection + store)", "raw bulk upsert of the documents it writes"),
}


@dataclass
class StageRounds:
    """One stage's rates (records per second) round by round: the service's and its ceiling's."""

    service: list[float] = field(default_factory=list)
    ceiling: list[float] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [s / c for s, c in zip(self.service, self.ceiling, strict=False) if c > 0]


def median(values: Sequence[float]) -> float | None:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The `q`-th percentile (0–100), nearest rank."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def build(stages: Mapping[str, StageRounds], latency_ms: Mapping[str, float | None], rss_mb: Mapping[str, float],
          machine: Mapping[str, Any], extra_absolute: Mapping[str, Any] | None = None,
          breakdown: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The document written to var/bench/latest.json."""
    ratios = {name: rounded(median(stages[name].ratios())) if name in stages else None for name in RATIO_GOALS}
    absolute: dict[str, Any] = {}
    for name, rounds in stages.items():
        absolute[name] = {
            "service_per_s": rounded(median(rounds.service), 1), "ceiling_per_s": rounded(median(rounds.ceiling), 1),
            "rounds": {"service_per_s": [round(v, 1) for v in rounds.service],
                       "ceiling_per_s": [round(v, 1) for v in rounds.ceiling],
                       "ratios": [round(v, 3) for v in rounds.ratios()]}}
    absolute.update(extra_absolute or {})
    return {"ratios": ratios,
            "latency_ms": {k: rounded(v, 1) for k, v in latency_ms.items()},
            "rss_mb": {k: rounded(v, 1) for k, v in rss_mb.items()},
            "absolute": absolute,
            "goals": {"ratios": RATIO_GOALS, "e2e_p99_ms": P99_GOAL_MS, "rss_mb": RSS_GOAL_MB},
            "breakdown": dict(breakdown or {}),
            "settings": dict(settings or {}),
            "machine": dict(machine)}


def met(value: float | None, goal: float, at_least: bool) -> str:
    if value is None:
        return "[yellow]n/a[/]"
    ok = value >= goal if at_least else value <= goal
    return "[green]yes[/]" if ok else "[red]no[/]"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}/s"


def table(report: Mapping[str, Any]) -> Table:
    """The printed summary: one row per figure, its goal and whether it is met."""
    out = Table(title="DMP pipeline benchmark (medians; each stage ÷ its own ceiling, same run)")
    for column, justify in (("figure", "left"), ("value", "right"), ("goal", "right"), ("met", "center"),
                            ("detail", "left")):
        out.add_column(column, justify=justify)  # type: ignore[arg-type]
    absolute = report["absolute"]
    for name, goal in RATIO_GOALS.items():
        ratio = report["ratios"].get(name)
        stage = absolute.get(name, {})
        service, ceiling = LABELS[name]
        detail = (f"{service} {_rate(stage.get('service_per_s'))} ÷ {ceiling} {_rate(stage.get('ceiling_per_s'))}"
                  if stage else "not measured")
        out.add_row(name, "n/a" if ratio is None else f"{ratio:.2f}", f"≥ {goal:.2f}", met(ratio, goal, True), detail)
    latency = report["latency_ms"]
    run = absolute.get("e2e")
    runs = f" in {run['rounds']} runs" if run and run.get("rounds", 1) > 1 else ""
    detail = (f"202 → validated in GET; {run.get('followed', 0)} followed of {run.get('submissions', 0)} sent "
              f"at {run.get('rate_per_s', 0):,.1f}/s open loop{runs}" if run else "not measured")
    if run and run.get("max_sustained_per_s"):
        detail += (f" (half the maximum sustained rate of single POSTs, {_rate(run.get('max_sustained_per_s'))}; "
                   f"a backlog drains at {_rate(run.get('backlog_drain_per_s'))})")
    if run and run.get("not_visible"):
        detail += f"; [red]{run['not_visible']} not visible by the end[/]"
    for q, limit in (("p50", None), ("p99", P99_GOAL_MS)):
        value = latency.get(f"e2e_{q}")
        bound = "≥ " if run and run.get(f"{q}_is_lower_bound") else ""
        text = "n/a" if value is None else f"{bound}{value:,.0f} ms"
        extra = ""
        if q == "p99" and "ack_p50" in latency:
            extra = f"POST → 202 p50 {latency.get('ack_p50') or 0:,.0f} ms, p99 {latency.get('ack_p99') or 0:,.0f} ms"
        out.add_row(f"e2e_{q}", text, "" if limit is None else f"≤ {limit:.0f} ms",
                    "" if limit is None else met(value, limit, False), detail if q == "p50" else extra)
    for name in SERVICES:
        value = report["rss_mb"].get(name)
        out.add_row(f"rss {name}", "n/a" if value is None else f"{value:,.0f} MB", f"≤ {RSS_GOAL_MB:.0f} MB",
                    met(value, RSS_GOAL_MB, False), "peak VmHWM of its processes under load")
    return out


def breakdown_table(report: Mapping[str, Any]) -> Table | None:
    """Where each stage's time goes, from the services' own metrics and in-process timings."""
    notes = report.get("breakdown") or {}
    if not notes:
        return None
    out = Table(title="where the time goes")
    out.add_column("stage")
    out.add_column("observation")
    for stage, lines in notes.items():
        for i, line in enumerate(lines if isinstance(lines, list) else [lines]):
            out.add_row(stage if i == 0 else "", str(line))
    return out
