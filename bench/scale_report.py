"""The scale benchmark's pure parts: its checkpoints, the read figures, the goals and the printed table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table

from bench.report import percentile, rounded

DEFAULT_CHECKPOINTS = (10_000, 100_000)
READ_P99_GOAL_MS = 100.0
AGGREGATE_RATIO_GOAL = 0.8
"""aggregate's rate at the largest size ÷ its rate at the smallest should be at least this."""
REBUILD_RATIO_GOAL = 0.5
"""`dmp admin views rebuild`'s events/s ÷ the raw replay's should be at least this."""
CONSOLE_GOAL_MS = 1000.0
"""Every console page loads in under a second (bench/console_load.py), judged on the slowest of its timings."""
STORE_RSS_GOAL_MB = 1024.0
RSS_GROWTH_LIMIT = 1.2
"""A service's resident memory "grows with stored submissions" when it is over this many times its RSS at the
smallest size (and 10 MB more) at the largest: allocator and garbage-collector noise stays under it."""
SERVICES = ("ingest", "validate", "aggregate")


def checkpoints(text: str) -> list[int]:
    """'10000,100000' or '10k,100k,1m' → the cumulative sizes to measure at, ascending; a single number N gives
    the default checkpoints below N and N itself."""
    sizes: list[int] = []
    for part in (p.strip().lower().replace("_", "") for p in text.split(",")):
        if not part:
            continue
        factor = {"k": 1_000, "m": 1_000_000}.get(part[-1], 1)
        digits = part[:-1] if factor > 1 else part
        if not digits.isdigit() or int(digits) * factor <= 0:
            raise ValueError(f"--scale: {part!r} is not a positive number of submissions (e.g. 10000,100000 or 1m)")
        sizes.append(int(digits) * factor)
    if not sizes:
        return list(DEFAULT_CHECKPOINTS)
    if len(sizes) == 1:
        sizes = [s for s in DEFAULT_CHECKPOINTS if s < sizes[0]] + sizes
    if sorted(set(sizes)) != sizes:
        raise ValueError(f"--scale: sizes must be distinct and ascending, got {text!r}")
    return sizes


def read_figures(samples_ms: Sequence[float]) -> dict[str, float | int | None]:
    """p50 and p99 (nearest rank) of one read's timings, and how many there were."""
    return {"p50": rounded(percentile(samples_ms, 50), 1), "p99": rounded(percentile(samples_ms, 99), 1),
            "n": len(samples_ms)}


def grows(first: float | None, last: float | None) -> bool | None:
    if first is None or last is None:
        return None
    return last > first * RSS_GROWTH_LIMIT and last > first + 10.0


def goals(points: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Each goal met or not (None: not measured), with the figures it was judged on."""
    out: dict[str, Any] = {}
    slow = {str(p["submissions"]): sorted(name for name, r in p.get("reads_ms", {}).items()
                                          if r.get("p99") is None or r["p99"] > READ_P99_GOAL_MS or r.get("errors"))
            for p in points}
    measured = any(p.get("reads_ms") for p in points)
    out["reads_p99"] = {"goal_ms": READ_P99_GOAL_MS, "met": (not any(slow.values())) if measured else None,
                        "over_goal": slow}
    late = {str(p["submissions"]): sorted(name for name, r in p.get("console_ms", {}).items()
                                          if r.get("p99") is None or r["p99"] >= CONSOLE_GOAL_MS) for p in points}
    out["console_load"] = {"goal_ms": CONSOLE_GOAL_MS, "over_goal": late,
                           "met": (not any(late.values())) if any(p.get("console_ms") for p in points) else None}
    rates = [p.get("aggregate", {}).get("per_s") for p in points]
    ratio = rates[-1] / rates[0] if len(rates) > 1 and rates[0] and rates[-1] else None
    out["aggregate_rate"] = {"goal": AGGREGATE_RATIO_GOAL, "ratio": rounded(ratio),
                             "met": None if ratio is None else ratio >= AGGREGATE_RATIO_GOAL}
    ratios = {str(p["submissions"]): p.get("rebuild_ratio") for p in points}
    known = [r for r in ratios.values() if r is not None]
    out["rebuild"] = {"goal": REBUILD_RATIO_GOAL, "ratios": ratios,
                      "met": all(r >= REBUILD_RATIO_GOAL for r in known) if known else None}
    peaks = [p.get("rss_mb", {}).get("store", {}).get("peak") for p in points]
    known_peaks = [v for v in peaks if v is not None]
    out["store_rss"] = {"goal_mb": STORE_RSS_GOAL_MB, "peak_mb": max(known_peaks) if known_peaks else None,
                        "met": max(known_peaks) < STORE_RSS_GOAL_MB if known_peaks else None}
    growing = {}
    for name in SERVICES:  # judged on the peaks: the largest a process got while the store held that much
        first = points[0].get("rss_mb", {}).get(name, {}).get("peak") if points else None
        last = points[-1].get("rss_mb", {}).get(name, {}).get("peak") if points else None
        growing[name] = grows(first, last) if len(points) > 1 else None
    verdicts = [g for g in growing.values() if g is not None]
    out["service_rss_flat"] = {"limit": RSS_GROWTH_LIMIT, "grows": growing,
                               "met": not any(verdicts) if verdicts else None}
    return out


def _met(value: bool | None) -> str:
    return "[yellow]n/a[/]" if value is None else "[green]yes[/]" if value else "[red]no[/]"


def _ms(read: Mapping[str, Any] | None) -> str:
    if not read or read.get("p50") is None:
        return "n/a"
    text = f"{read['p50']:,.0f} / {read['p99']:,.0f}"
    return text + (f" ({read['errors']} failed)" if read.get("errors") else "")


def _number(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


def table(doc: Mapping[str, Any]) -> Table:
    """One row per figure, one column per stored size, then the goal and whether it is met."""
    points = doc["checkpoints"]
    judged = doc["goals"]
    out = Table(title="DMP pipeline at scale (cumulative stored submissions; reads p50 / p99 in ms)")
    out.add_column("figure")
    for p in points:
        out.add_column(f"{p['submissions']:,}", justify="right")
    out.add_column("goal", justify="right")
    out.add_column("met", justify="center")

    def row(name: str, cells: Sequence[str], goal: str = "", met: bool | None = None, judge: bool = False) -> None:
        out.add_row(name, *cells, goal, _met(met) if judge else "")

    row("aggregate events/s (backlog drain)", [_number(p.get("aggregate", {}).get("per_s"), "/s") for p in points])
    row("  ÷ rate at the smallest size", [_number(p.get("aggregate", {}).get("ratio_to_first"), digits=2)
                                          for p in points], f"≥ {AGGREGATE_RATIO_GOAL:.1f} at the largest",
        judged["aggregate_rate"]["met"], judge=True)
    names = sorted({name for p in points for name in p.get("reads_ms", {})})
    for name in names:
        over = [name in slow for slow in judged["reads_p99"]["over_goal"].values()]
        row(name, [_ms(p.get("reads_ms", {}).get(name)) for p in points], f"p99 ≤ {READ_P99_GOAL_MS:.0f} ms",
            not any(over), judge=True)
    pages = sorted({name for p in points for name in p.get("console_ms", {})})
    for name in pages:
        over = [name in late for late in judged.get("console_load", {}).get("over_goal", {}).values()]
        row(f"{name} load", [_ms(p.get("console_ms", {}).get(name)) for p in points],
            f"max < {CONSOLE_GOAL_MS:,.0f} ms", not any(over), judge=True)
    row("store bytes / submission", [_number(p.get("store_bytes_per_submission")) for p in points])
    row("Kafka bytes / submission", [_number(p.get("kafka_bytes_per_submission")) for p in points])
    row("rebuild events/s", [_number(p.get("rebuild", {}).get("per_s"), "/s") for p in points])
    row("  raw replay ceiling events/s", [_number(p.get("ceiling", {}).get("per_s"), "/s") for p in points])
    row("  rebuild ÷ ceiling", [_number(p.get("rebuild_ratio"), digits=2) for p in points],
        f"≥ {REBUILD_RATIO_GOAL:.1f}", judged["rebuild"]["met"], judge=True)
    row("  rebuild time", [_rebuild_time(p.get("rebuild", {})) for p in points])
    processes = sorted({name for p in points for name in p.get("rss_mb", {})})
    for name in processes:
        goal, met, judge = "", None, False
        if name == "store":
            goal, met, judge = f"< {STORE_RSS_GOAL_MB:,.0f} MB", judged["store_rss"]["met"], True
        elif name in SERVICES:
            goal, met, judge = "flat", None if judged["service_rss_flat"]["grows"].get(name) is None else \
                not judged["service_rss_flat"]["grows"][name], True
        row(f"RSS {name} MB (now / peak)", [_rss(p.get("rss_mb", {}).get(name)) for p in points], goal, met, judge)
    return out


def _rss(value: Mapping[str, Any] | None) -> str:
    if not value:
        return "n/a"
    return f"{_number(value.get('now'))} / {_number(value.get('peak'))}"


def _rebuild_time(rebuild: Mapping[str, Any]) -> str:
    if not rebuild:
        return "n/a"
    text = f"{rebuild.get('seconds', 0):,.0f} s"
    if not rebuild.get("replayed_all"):
        text += " (stopped while replaying)"
    elif not rebuild.get("compared"):
        text += f" (replayed in {rebuild.get('replay_seconds', 0):,.0f} s; stopped while comparing)"
    return text
