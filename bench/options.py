"""Benchmark options: argv overrides environment (BENCH_*), which overrides the defaults."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Options:
    rounds: int = 3
    """Alternating rounds per stage; medians are reported."""
    http_requests: int = 3000
    """Single POSTs per round, to ingest and to the bare endpoint each."""
    http_concurrency: int = 32
    batch_submissions: int = 10_000
    """Submissions per round through /v1/submissions/batch, and through the raw producer."""
    batch_size: int = 500
    batch_concurrency: int = 4
    validate_events: int = 10_000
    aggregate_events: int = 800
    """Validated events per round (after 50 untimed ones)."""
    e2e_seconds: float = 10.0
    capacity_submissions: int = 1500
    """Submissions posted at once (in batches) to measure how fast the three services together drain a backlog:
    where the search for the maximum sustained rate starts."""
    sustain_seconds: float = 8.0
    """Length of each constant-rate probe in the search for the maximum sustained rate of single POSTs."""
    sustain_probes: int = 5
    e2e_drain: float = 30.0
    """How long to wait after the last e2e POST for followed submissions to become visible."""
    e2e_samples_per_s: float = 20.0
    """How many submissions per second the e2e stage follows to visibility (each polled every 25 ms)."""
    e2e_rate: float = 0.0
    """Open-loop rate for the e2e stage; 0 = half the maximum sustained rate, measured first."""
    stages: str = "http_single,ingest_batch,validate,aggregate,e2e"
    keep: bool = False
    """Keep var/bench/run-<id>/ (broker and store data, logs) after a successful run."""
    scale: str = ""
    """Instead of the stages: load this many submissions of all five types and measure what stored volume costs at
    each checkpoint (`10000,100000`; one number N adds the default checkpoints below it): `make bench-scale`."""
    scale_probe: int = 5000
    """With --scale: submissions loaded while aggregate is stopped, at the end of each checkpoint, to time its drain."""
    rebuild_budget: float = 300.0
    """With --scale: seconds the rebuild (and, apart, the raw replay) may take at each checkpoint before being
    stopped."""
    profile: bool = False
    """Sample every service the bench starts with py-spy; stacks go to var/bench/run-<id>/profiles/
    (implies keep). The sampling costs the services a little CPU: ratios of a profiled run are lower."""


def parse(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> Options:
    env = dict(os.environ if env is None else env)
    defaults = Options()
    parser = argparse.ArgumentParser(prog="python -m bench", description="Benchmark every pipeline stage against "
                                     "its own ceiling; prints a table and writes var/bench/latest.json. Each option "
                                     "can also be given as BENCH_<NAME> in the environment.")
    for f in fields(Options):
        default = getattr(defaults, f.name)
        raw = env.get(f"BENCH_{f.name.upper()}")
        if f.type in ("bool", bool):
            value = raw.lower() in ("1", "true", "yes") if raw is not None else default
            parser.add_argument(f"--{f.name.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=value)
            continue
        kind = type(default)
        value = kind(raw) if raw is not None else default
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=value, metavar=kind.__name__.upper(),
                            help=f"(default {default}; env BENCH_{f.name.upper()})")
    args = parser.parse_args(argv)
    return Options(**{f.name: getattr(args, f.name) for f in fields(Options)})
