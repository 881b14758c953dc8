"""Runs the benchmark: its own broker, store and service processes, every stage against its ceiling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import orjson
from rich.console import Console

from bench import payloads, report
from bench.http import HTTPError, Pool, Response, closed_loop
from bench.kafkatools import (
    BenchError,
    CpuProbe,
    passthrough,
    preload,
    produce_all,
    send_and_wait_concurrently,
    watch_group,
)
from bench.lane import lane_costs
from bench.options import Options, parse
from infra import kafka, services, store
from infra.proc import ROOT, VAR, free_port, spawn, stop_pid, wait_until
from shared.kafka import ensure_topics
from shared.topics import Topics

T = TypeVar("T")

console = Console(width=None if sys.stdout.isatty() else 140)
BENCH = VAR / "bench"
PARTITIONS = 6
PRIMER = 50
"""aggregate gets this many events (and the store ceiling this many documents) before its clock starts."""
WARM_UP = 200
"""Items run through an in-process timing before its clock starts (caches, first-use loading)."""
STORE_PARTS = ("views", "submissions", "progress", "audit")
"""The collections aggregate's store-write timings are labelled with (services/aggregate/worker.py)."""


def log(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set size of `pid` (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text → {'name{labels}': value} (comments skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        with contextlib.suppress(ValueError):
            out[name] = float(value)
    return out


def metric(metrics: dict[str, float], name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for key, value in metrics.items():
        base, _, rest = key.partition("{")
        if base == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += value
    return total


@dataclass
class Proc:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@dataclass
class Bench:
    opts: Options
    broker: kafka.Broker
    store: store.Store
    base: Path
    run_id: str
    procs: list[Proc] = field(default_factory=list)
    rss: dict[str, float] = field(default_factory=dict)
    stages: dict[str, report.StageRounds] = field(default_factory=dict)
    latency: dict[str, float | None] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    breakdown: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    cpu_shares: dict[str, dict[str, list[dict[str, float]]]] = field(default_factory=dict)
    warm: bool = False
    """Whether a stage has already put traffic through the broker in this run (its JIT-compiled code is warm)."""

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    def namespace(self, tag: str) -> str:
        return f"b{self.run_id}{tag}"

    def env(self, namespace: str) -> dict[str, str]:
        """What tests/conftest.py's Stack gives the services: a fresh topic namespace, groups and database."""
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "MONGODB_URL": self.store.url,
                "MONGODB_DATABASE": f"dmp_{namespace}", "DMP_TOPIC_NAMESPACE": namespace,
                "VALIDATE_GROUP_ID": f"{namespace}-validate", "VALIDATE_TRANSACTIONAL_ID": f"{namespace}-validate-0",
                "AGGREGATE_GROUP_ID": f"{namespace}-aggregate", "DMP_LOG_LEVEL": "WARNING",
                # The per-key rate limit (50/s by default) would measure the limiter, not the service.
                "DMP_RATE_LIMIT_PER_S": "0"}

    def keys(self, namespace: str) -> dict[str, dict[str, str]]:
        """Authorization headers for an officer (every country), an analyst and an admin, stored in the namespace's
        database the way `dmp admin keys create` stores them. Empty if this version of the services has no keys."""
        try:
            from shared.auth import make_key
            from shared.settings import ServiceSettings
        except ImportError:
            return {"officer": {}, "analyst": {}}
        from pymongo import MongoClient

        pepper = ServiceSettings().auth_pepper.get_secret_value().encode()
        client: MongoClient[dict[str, Any]] = MongoClient(self.store.url)
        out = {}
        try:
            for role in ("officer", "analyst", "admin"):
                new = make_key(pepper, role, None, f"bench-{role}")
                client[f"dmp_{namespace}"]["api_keys"].insert_one(new.record)
                out[role] = {"Authorization": f"Bearer {new.key}"}
        finally:
            client.close()
        return out

    async def start(self, name: str, namespace: str, wait: bool = True) -> Proc:
        """One of the three services as a process (infra/services.py), on a free port."""
        svc = services.start(name, free_port(), self.base / "logs" / f"{namespace}-{name}.log", self.env(namespace))
        assert svc.proc is not None
        proc = Proc(name, svc.url, svc.proc, svc.log)
        self.procs.append(proc)
        if self.opts.profile:
            self.profile(proc, f"{namespace}-{name}")
        if wait:
            await asyncio.to_thread(services.wait_ready, svc, 90)
        return proc

    def profile(self, proc: Proc, label: str) -> None:
        """Sample `proc` with py-spy until it exits; its stacks are written then, collapsed (one line per
        stack with its sample count: speedscope and flamegraph.pl open them)."""
        py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
        if py_spy is None:
            raise BenchError("--profile needs py-spy (pip install py-spy)")
        out = self.base / "profiles" / f"{label}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        spawn([py_spy, "record", "--pid", str(proc.proc.pid), "--rate", "200", "--nonblocking", "--gil",
               "--format", "raw", "--output", str(out)], self.base / "logs" / f"py-spy-{label}.log", cwd=ROOT)

    async def start_bare(self) -> Proc:
        port = free_port()
        log_path = self.base / "logs" / "bare.log"
        popen = spawn([sys.executable, "-m", "bench.bare"], log_path, env={"BARE_PORT": str(port)}, cwd=ROOT)
        proc = Proc("bare", f"http://127.0.0.1:{port}", popen, log_path)
        self.procs.append(proc)
        await asyncio.to_thread(wait_until, lambda: services.is_ready(proc.url), 60, "bare endpoint", 0.25,
                                popen, log_path)
        return proc

    def stop(self, proc: Proc) -> None:
        """Record the process's peak RSS, then stop it (its own process group only)."""
        if proc.proc.poll() is None:
            peak = vm_hwm_mb(proc.proc.pid)
            if peak is not None and proc.name in report.SERVICES:
                self.rss[proc.name] = max(self.rss.get(proc.name, 0.0), peak)
            stop_pid(proc.proc.pid, timeout=20)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.proc.wait(timeout=5)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(self.procs):
            try:
                self.stop(proc)
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                console.print(f"[red]could not stop {proc.name} (pid {proc.proc.pid}): {exc!r}[/]")

    async def metrics(self, proc: Proc) -> dict[str, float]:
        host, port = hostport(proc.url)
        pool = Pool(host, port)
        try:
            return parse_metrics((await pool.request("GET", "/metrics")).body.decode())
        finally:
            pool.close()

    def probe(self, **pids: int) -> CpuProbe:
        """CPU use of the given processes plus the broker, the store and this process."""
        base = {"bench": os.getpid()}
        if self.broker.pid is not None:
            base["broker"] = self.broker.pid
        if self.store.pid is not None:
            base["store"] = self.store.pid
        return CpuProbe({**base, **pids})

    async def quiet(self, below: float = 0.15, timeout: float = 30.0) -> float:
        """Wait until the broker and the store together use less than `below` of a core over a second (they
        may still be digesting what the last run left them), at most `timeout` s; returns the seconds waited."""
        probe = self.probe()
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            before = probe.snapshot()
            await asyncio.sleep(1.0)
            shares = CpuProbe.share(before, probe.snapshot(), 1.0)
            if shares.get("broker", 0.0) + shares.get("store", 0.0) < below:
                break
        return time.perf_counter() - started

    async def settle(self, what: str) -> None:
        """`quiet`, before each side of a round: the broker's and the store's leftovers from the last stage or side
        would slow whichever side comes next (and only the side that uses them)."""
        waited = await self.quiet()
        if waited > 1.5:
            log(f"{what}: waited {waited:.0f}s for the broker and the store to settle")

    def cpu(self, stage: str, side: str, shares: dict[str, float]) -> None:
        self.cpu_shares.setdefault(stage, {}).setdefault(side, []).append(shares)

    def cpu_note(self, stage: str, side: str, main: str, per_item: float | None) -> None:
        """One line: mean CPU use (cores) of each process over the timed windows, and `main`'s CPU per item."""
        rounds = self.cpu_shares.get(stage, {}).get(side, [])
        if not rounds:
            return
        names = sorted({n for r in rounds for n in r})
        mean = {n: sum(r.get(n, 0.0) for r in rounds) / len(rounds) for n in names}
        self.extra.setdefault("cpu_cores", {}).setdefault(stage, {})[side] = {n: round(v, 2) for n, v in mean.items()}
        line = f"{side} CPU (cores): " + ", ".join(f"{n} {v:.2f}" for n, v in sorted(mean.items(),
                                                                                  key=lambda kv: -kv[1]))
        if per_item and mean.get(main):
            line += f" → {main} {1e6 * mean[main] / per_item:,.0f} µs CPU per item"
        self.note(stage, line)

    def note(self, stage: str, line: str) -> None:
        self.breakdown.setdefault(stage, []).append(line)
        log(f"  [cyan]{stage}[/]: {line}")


def hostport(url: str) -> tuple[str, int]:
    host, _, port = url.removeprefix("http://").partition(":")
    return host, int(port)


def ordered(round_: int) -> tuple[str, str]:
    """Alternate which side goes first, so warm-up and drift fall on both."""
    return ("service", "ceiling") if round_ % 2 == 0 else ("ceiling", "service")


# --- stages -------------------------------------------------------------------------------------------------


async def http_single(b: Bench) -> None:
    o = b.opts
    rounds = b.stages["http_single"] = report.StageRounds()
    ns = b.namespace("h")
    await ensure_topics(b.bootstrap, Topics.under(ns).all(), PARTITIONS)
    auth = (await asyncio.to_thread(b.keys, ns))["officer"]
    ingest = await b.start("ingest", ns)
    bare = await b.start_bare()
    targets = {"service": ingest, "ceiling": bare}
    probe = b.probe(ingest=ingest.proc.pid, bare=bare.proc.pid)
    try:
        warm = payloads.bodies(payloads.envelopes(300, seed=9))
        for proc in targets.values():
            await closed_loop(*hostport(proc.url), "/v1/submissions", warm, o.http_concurrency, ok=(202,),
                              headers=auth)
        for r in range(o.rounds):
            bodies = payloads.bodies(payloads.envelopes(o.http_requests, seed=r))
            for side in ordered(r):
                await b.settle(f"http_single round {r + 1}, {side}")
                before = probe.snapshot()
                result = await closed_loop(*hostport(targets[side].url), "/v1/submissions", bodies,
                                           o.http_concurrency, ok=(202,), headers=auth)
                b.cpu("http_single", side, CpuProbe.share(before, probe.snapshot(), result.seconds))
                if result.errors:
                    raise BenchError(f"{side}: {result.errors} of {result.requests} requests failed: {result.statuses}")
                getattr(rounds, side).append(result.rate)
            log(f"http_single round {r + 1}: ingest {rounds.service[-1]:,.0f}/s, bare {rounds.ceiling[-1]:,.0f}/s")
        m = await b.metrics(ingest)
        count = metric(m, "dmp_http_request_duration_seconds_count", route="/v1/submissions")
        seconds = metric(m, "dmp_http_request_duration_seconds_sum", route="/v1/submissions")
    finally:
        b.stop(bare)
        b.stop(ingest)
    # What the broker alone gives 32 clients that each wait for their own ack.
    records = payloads.received(payloads.envelopes(o.http_requests, seed=99))
    topic = Topics.under(b.namespace("hp")).received
    await ensure_topics(b.bootstrap, [topic], PARTITIONS)
    producer_rate = len(records) / await send_and_wait_concurrently(b.bootstrap, topic, records, o.http_concurrency)
    b.extra["http_single_diagnostics"] = {"producer_send_and_wait_per_s": round(producer_rate, 1),
                                          "ingest_server_mean_ms": round(1000 * seconds / count, 2) if count else None}
    service = report.median(rounds.service) or 0.0
    b.cpu_note("http_single", "service", "ingest", per_item=service)
    b.cpu_note("http_single", "ceiling", "bare", per_item=report.median(rounds.ceiling))
    if count:
        b.note("http_single", f"ingest's own histogram: {1000 * seconds / count:.1f} ms per POST on average with "
                              f"{o.http_concurrency} in flight")
    b.note("http_single", f"{o.http_concurrency} clients each waiting for their own broker ack (raw producer "
                          f"send_and_wait, no HTTP): {producer_rate:,.0f}/s — ingest reaches "
                          f"{service / producer_rate:.0%} of that")
    with_lane, without = await asyncio.to_thread(lane_costs, payloads.envelopes(2200, seed=31))
    b.extra["fast_lane"] = {"cpu_us_per_post_lane": round(with_lane, 1), "cpu_us_per_post_routed": round(without, 1)}
    b.note("http_single", f"in this process, a POST costs {with_lane:.0f} µs of CPU through ingest's fast lane and "
                          f"{without:.0f} µs through FastAPI's routing ({1 - with_lane / without:.0%} less)")


async def ingest_batch(b: Bench) -> None:
    o = b.opts
    rounds = b.stages["ingest_batch"] = report.StageRounds()
    ns = b.namespace("i")
    await ensure_topics(b.bootstrap, Topics.under(ns).all(), PARTITIONS)
    auth = (await asyncio.to_thread(b.keys, ns))["officer"]
    ingest = await b.start("ingest", ns)
    host, port = hostport(ingest.url)
    probe = b.probe(ingest=ingest.proc.pid)

    def received_count(response: Any) -> int:
        return int(orjson.loads(response.body)["received"])

    try:
        warm = [orjson.dumps(payloads.envelopes(o.batch_size, seed=19))]
        await closed_loop(host, port, "/v1/submissions/batch", warm, 1, ok=(207,), headers=auth)
        for r in range(o.rounds):
            envs = payloads.envelopes(o.batch_submissions, seed=100 + r)
            bodies = [orjson.dumps(envs[i:i + o.batch_size]) for i in range(0, len(envs), o.batch_size)]
            records = payloads.received(envs)
            topic = Topics.under(b.namespace(f"ic{r}")).received
            await ensure_topics(b.bootstrap, [topic], PARTITIONS)
            for side in ordered(r):
                await b.settle(f"ingest_batch round {r + 1}, {side}")
                before = probe.snapshot()
                if side == "service":
                    result = await closed_loop(host, port, "/v1/submissions/batch", bodies, o.batch_concurrency,
                                               ok=(207,), items_of=received_count, headers=auth)
                    if result.items != len(envs):
                        raise BenchError(f"ingest received {result.items} of {len(envs)}: {result.statuses}")
                    seconds = result.seconds
                    rounds.service.append(result.rate)
                else:
                    seconds = await produce_all(b.bootstrap, topic, records)
                    rounds.ceiling.append(len(records) / seconds)
                b.cpu("ingest_batch", side, CpuProbe.share(before, probe.snapshot(), seconds))
            log(f"ingest_batch round {r + 1}: ingest {rounds.service[-1]:,.0f}/s, "
                f"raw producer {rounds.ceiling[-1]:,.0f}/s")
        m = await b.metrics(ingest)
        count = metric(m, "dmp_http_request_duration_seconds_count", route="/v1/submissions/batch")
        seconds = metric(m, "dmp_http_request_duration_seconds_sum", route="/v1/submissions/batch")
    finally:
        b.stop(ingest)
    b.cpu_note("ingest_batch", "service", "ingest", per_item=report.median(rounds.service))
    b.cpu_note("ingest_batch", "ceiling", "bench", per_item=report.median(rounds.ceiling))
    # The CPU ingest spends per item before publishing: envelope parsing and the received event.
    try:
        cpu: float | None = prepare_cost(payloads.envelopes(2000, seed=29))
    except Exception as exc:  # noqa: BLE001 - a diagnostic; ingest's internals may have moved
        cpu = None
        log(f"  could not time ingest's prepare() in-process: {exc!r}")
    if count:
        b.note("ingest_batch", f"a {o.batch_size}-item request takes {1000 * seconds / count:.0f} ms in ingest "
                               f"({1e6 * seconds / count / o.batch_size:.0f} µs/item, {o.batch_concurrency} in flight)")
    if cpu is not None:
        b.note("ingest_batch", f"envelope checks + received event (prepare) alone cost {cpu:.0f} µs/item "
                               "in-process")


def prepare_cost(envs: list[dict[str, Any]]) -> float:
    """µs per item of ingest's `prepare` (parse the envelope, build the received event), in this process."""
    from services.ingest.edge import is_plain
    from services.ingest.settings import IngestSettings
    from services.ingest.submission import prepare
    from shared.auth import Principal

    settings = IngestSettings()
    officer = Principal(key_id="bench", role="officer", countries=None, name="bench")
    items = [(e, is_plain(orjson.dumps(e))) for e in envs]
    for e, plain in items[:WARM_UP]:
        prepare(e, None, settings, officer, plain=plain)
    start = time.perf_counter()
    for e, plain in items[WARM_UP:]:
        prepare(e, None, settings, officer, plain=plain)
    return 1e6 * (time.perf_counter() - start) / len(items[WARM_UP:])


async def validate(b: Bench) -> None:
    from services.validate.settings import ValidateSettings

    o = b.opts
    max_batch = ValidateSettings().max_batch
    rounds = b.stages["validate"] = report.StageRounds()
    parts: dict[str, float] = {}
    ceiling_batches: list[tuple[float, float]] = []
    for r in range(o.rounds):
        records = payloads.received(payloads.envelopes(o.validate_events, seed=200 + r))
        for side in ordered(r):
            await b.settle(f"validate round {r + 1}, {side}")
            ns = b.namespace(f"v{r}{side[0]}")
            topics = Topics.under(ns)
            await ensure_topics(b.bootstrap, topics.all(), PARTITIONS)
            await preload(b.bootstrap, topics.received, records)
            if side == "service":
                proc = await b.start("validate", ns, wait=False)
                try:
                    progress = await watch_group(b.bootstrap, f"{ns}-validate", topics.received, len(records),
                                                 timeout=600, proc=proc.proc, probe=b.probe(validate=proc.proc.pid))
                    m = await b.metrics(proc)
                    for key, seconds in validate_parts(m).items():
                        parts[key] = parts.get(key, 0.0) + seconds
                finally:
                    b.stop(proc)
                rounds.service.append(progress.rate)
            else:
                group = f"{ns}-passthrough"
                timing: list[float] = []
                task = asyncio.create_task(passthrough(b.bootstrap, topics, group, f"{ns}-passthrough-0",
                                                       max_batch, len(records), timing))
                try:
                    progress = await watch_group(b.bootstrap, group, topics.received, len(records), timeout=600,
                                                 probe=b.probe())
                finally:
                    await task
                ceiling_batches.append((sum(timing), len(timing)))
                rounds.ceiling.append(progress.rate)
            b.cpu("validate", side, progress.cpu)
        log(f"validate round {r + 1}: validate {rounds.service[-1]:,.0f}/s, "
            f"passthrough {rounds.ceiling[-1]:,.0f}/s")
    b.cpu_note("validate", "service", "validate", per_item=report.median(rounds.service))
    b.cpu_note("validate", "ceiling", "bench", per_item=report.median(rounds.ceiling))
    try:
        decide_us: float | None = decide_cost(payloads.received(payloads.envelopes(2000, seed=29)))
    except Exception as exc:  # noqa: BLE001 - a diagnostic; validate's internals may have moved
        decide_us = None
        log(f"  could not time decide() in-process: {exc!r}")
    c_sum, c_count = (sum(x) for x in zip(*ceiling_batches, strict=True)) if ceiling_batches else (0.0, 0.0)
    if parts.get("batches") and c_count:
        b.note("validate", f"a batch (≤{max_batch}) takes {1000 * parts['batch'] / parts['batches']:.0f} ms in "
                           f"validate ({parts['batches'] / o.rounds:.0f} batches/round; {phase_ms(parts)}) vs "
                           f"{1000 * c_sum / c_count:.0f} ms in the passthrough ({c_count / o.rounds:.0f} "
                           "batches/round)")
    if decide_us is not None:
        b.note("validate", f"decide() (parse, rules, decision event) costs {decide_us:.0f} µs/event in-process "
                           f"({max_batch * decide_us / 1000:.0f} ms per {max_batch}-event batch)")


def decide_cost(records: list[payloads.Record]) -> float:
    from services.validate.decision import decide

    topics = Topics()
    for offset, r in enumerate(records[:WARM_UP]):  # first use loads reference data (country outlines)
        decide(r.value, r.key, dict(r.headers), 0, offset, topics)
    start = time.perf_counter()
    for offset, r in enumerate(records[WARM_UP:]):
        decide(r.value, r.key, dict(r.headers), 0, offset, topics)
    return 1e6 * (time.perf_counter() - start) / len(records[WARM_UP:])


async def aggregate(b: Bench) -> None:
    from services.aggregate.settings import AggregateSettings

    o = b.opts
    max_batch = AggregateSettings().max_batch
    rounds = b.stages["aggregate"] = report.StageRounds()
    parts: dict[str, float] = {}
    for r in range(o.rounds):
        records, rejected = payloads.validated(payloads.received(payloads.envelopes(PRIMER + o.aggregate_events,
                                                                                    seed=300 + r)), Topics())
        if rejected:
            raise BenchError(f"{rejected} of the generated seizures were rejected by the rules")
        for side in ordered(r):
            await b.settle(f"aggregate round {r + 1}, {side}")
            ns = b.namespace(f"a{r}{side[0]}")
            if side == "service":
                topics = Topics.under(ns)
                await ensure_topics(b.bootstrap, topics.all(), PARTITIONS)
                await preload(b.bootstrap, topics.validated, records[:PRIMER])
                proc = await b.start("aggregate", ns, wait=False)
                group = f"{ns}-aggregate"
                try:
                    # Started, assigned and through its first (small) batch: now give it the measured events,
                    # all at once as the ceiling has them (its clock starts when they are committed: the
                    # bench's own producer is not aggregate's work, and its time varies from run to run).
                    await watch_group(b.bootstrap, group, topics.validated, PRIMER, timeout=300, proc=proc.proc,
                                      since=(0, time.perf_counter(), {}))
                    probe = b.probe(aggregate=proc.proc.pid)
                    await preload(b.bootstrap, topics.validated, records[PRIMER:], transactional_id=f"{ns}-load")
                    since = (PRIMER, time.perf_counter(), probe.snapshot())
                    progress = await watch_group(b.bootstrap, group, topics.validated, len(records), timeout=900,
                                                 proc=proc.proc, probe=probe, since=since)
                    m = await b.metrics(proc)
                finally:
                    b.stop(proc)
                for key, seconds in aggregate_parts(m).items():
                    parts[key] = parts.get(key, 0.0) + seconds
                stored = await asyncio.to_thread(count_documents, b.store.url, f"dmp_{ns}", "submissions")
                if stored != len(records):
                    raise BenchError(f"aggregate committed every offset but stored {stored} of {len(records)} "
                                     "submissions")
                rounds.service.append(progress.rate)
                b.cpu("aggregate", side, progress.cpu)
            else:
                primed, written = await payloads.projected(records, Topics(), PRIMER, PARTITIONS)
                documents = sum(len(docs) for docs in written.values())
                seconds, cpu = await asyncio.to_thread(bulk_upsert, b.store.url, f"dmp_{ns}", primed, written,
                                                       max_batch, b.probe())
                rounds.ceiling.append((len(records) - PRIMER) / seconds)
                b.extra.setdefault("aggregate_ceiling_documents", []).append(
                    {"events": len(records) - PRIMER, "documents": documents,
                     "by_collection": {name: len(docs) for name, docs in written.items()}})
                b.cpu("aggregate", side, cpu)
        log(f"aggregate round {r + 1}: aggregate {rounds.service[-1]:,.1f}/s, "
            f"bulk upsert {rounds.ceiling[-1]:,.1f}/s")
    b.cpu_note("aggregate", "service", "aggregate", per_item=report.median(rounds.service))
    b.cpu_note("aggregate", "ceiling", "store", per_item=report.median(rounds.ceiling))
    if parts.get("batch"):
        b.note("aggregate", f"of its batch time ({parts['batch'] / parts['batches']:.2f} s per batch of "
                            f"≤{max_batch}): {batch_shares(parts)}")
    plan = await asyncio.to_thread(explain_by_id, b.store.url, f"dmp_{b.namespace(f'a{o.rounds - 1}c')}")
    if plan:
        b.note("aggregate", f"store query plan for find {{_id: {{$in: […]}}}}: {plan}")
        b.extra["store_plan_by_id"] = plan


def aggregate_parts(m: dict[str, float]) -> dict[str, float]:
    """aggregate's batch time ("batch" seconds over "batches") and the seconds spent in each store call."""
    return {key: metric(m, name, **labels) for key, name, labels in (
        ("batch", "dmp_consumer_batch_seconds_sum", {"service": "aggregate"}),
        ("batches", "dmp_consumer_batch_seconds_count", {"service": "aggregate"}),
        *((f"{c} writes", "dmp_store_write_seconds_sum", {"collection": c}) for c in STORE_PARTS),
        *((f"{c} reads", "dmp_store_read_seconds_sum", {"collection": c}) for c in ("submissions", "views")),
        ("offset commits", "dmp_aggregate_commit_seconds_sum", {}))}


def batch_shares(parts: dict[str, float]) -> str:
    """'views writes 40%, …, the rest (5%) projection and the loop', from `aggregate_parts`."""
    calls = {k: v for k, v in parts.items() if k not in ("batch", "batches")}
    total = parts["batch"]
    shares = ", ".join(f"{name} {seconds / total:.0%}" for name, seconds in
                       sorted(calls.items(), key=lambda kv: -kv[1]) if seconds)
    return f"{shares}, the rest ({1 - sum(calls.values()) / total:.0%}) projection and the loop"


VALIDATE_PHASES = ("decide", "send", "offsets", "commit")


def validate_parts(m: dict[str, float]) -> dict[str, float]:
    """validate's batch time ("batch" seconds over "batches") and the seconds spent in each phase of its batches."""
    return {"batch": metric(m, "dmp_consumer_batch_seconds_sum", service="validate"),
            "batches": metric(m, "dmp_consumer_batch_seconds_count", service="validate"),
            **{phase: metric(m, "dmp_validate_batch_phase_seconds_sum", phase=phase) for phase in VALIDATE_PHASES}}


def phase_ms(parts: dict[str, float]) -> str:
    """'decide 47 ms, send 27 ms, offsets 8 ms, commit 3 ms' per batch, from `validate_parts`."""
    return ", ".join(f"{phase} {1000 * parts[phase] / parts['batches']:.0f} ms" for phase in VALIDATE_PHASES)


def count_documents(url: str, database: str, collection: str) -> int:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(url)
    try:
        return int(client[database][collection].count_documents({}))
    finally:
        client.close()


def explain_by_id(url: str, database: str) -> str | None:
    """How the store runs aggregate's reads, a find of `_id`s (FerretDB answers with its SQLite plan)."""
    from pymongo import MongoClient
    from pymongo.errors import PyMongoError

    client: MongoClient[dict[str, Any]] = MongoClient(url)
    try:
        doc = client[database]["submissions"].find_one()
        if doc is None:
            return None
        plan = client[database].command("explain", {"find": "submissions", "filter": {"_id": {"$in": [doc["_id"]]}}})
        return str(plan.get("queryPlanner", {}).get("Plan") or plan.get("queryPlanner", {}).get("winningPlan"))
    except PyMongoError:
        return None
    finally:
        client.close()


Collections = dict[str, list[dict[str, Any]]]


def bulk_upsert(url: str, database: str, primed: Collections, written: Collections, batch: int,
                probe: CpuProbe) -> tuple[float, dict[str, float]]:
    """The store ceiling: the documents aggregate ends up writing for the measured events (submission records
    and view shards, each once, in its collection), as ReplaceOne upserts by _id, `batch` per bulk_write. What
    the first PRIMER events leave goes in off the clock. Seconds for the rest, and the CPU use over them."""
    from pymongo import MongoClient, ReplaceOne

    def upsert(docs_by_collection: Collections) -> None:
        for name, docs in docs_by_collection.items():
            for i in range(0, len(docs), batch):
                client[database][name].bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True)
                                                   for d in docs[i:i + batch]], ordered=False)

    client: MongoClient[dict[str, Any]] = MongoClient(url)
    try:
        upsert(primed)
        before, started = probe.snapshot(), time.perf_counter()
        upsert(written)
        seconds = time.perf_counter() - started
        return seconds, CpuProbe.share(before, probe.snapshot(), seconds)
    finally:
        client.close()


async def e2e(b: Bench) -> None:
    """202 → visible, at half the highest rate of single POSTs the pipeline sustains, measured first in this run.

    Field officers send submissions one per POST, spread out in time, so the pipeline's capacity is
    measured with that traffic: constant-rate runs, searched for the highest rate at which latency
    does not keep growing. (A backlog posted at once in batches drains faster, because every stage
    then works in large batches; that rate is measured first, as the search's starting point.)
    """
    o = b.opts
    sustained = drain = None
    if not o.e2e_rate:
        drain = await pipeline_capacity(b, o.capacity_submissions)
        sustained = await sustained_rate(b, drain)
    rate = o.e2e_rate or (sustained or 100.0) / 2
    if not b.warm:
        # Nothing has gone through this run's new broker yet: its first seconds of traffic at this rate are
        # slow while the JVM compiles, unlike every later run's. The
        # figure is the pipeline's steady state, so a run like the measured ones goes first, off the clock.
        await run_point(b, "w", rate, WARM_UP_SECONDS, drain=o.e2e_drain)
        log(f"e2e: warmed the new broker up with {WARM_UP_SECONDS:g}s at {rate:,.1f}/s (not counted)")
    result = await e2e_point(b, "e", rate, o.e2e_seconds)
    b.latency.update({"e2e_p50": result["p50"], "e2e_p99": result["p99"],
                      "ack_p50": result["ack_p50"], "ack_p99": result["ack_p99"]})
    b.extra["e2e"] = {**result["summary"], "max_sustained_per_s": round(sustained, 1) if sustained else None,
                      "backlog_drain_per_s": round(drain, 1) if drain else None}


WARM_UP_SECONDS = 8.0


async def sustained_rate(b: Bench, drain: float) -> float:
    """The highest constant rate of single POSTs the pipeline keeps up with (`keeps_up`), to within ~20 %.

    Each probe runs the three services afresh at one rate for `sustain_seconds`. Above capacity the
    queue, and so the latency, grows for as long as the rate lasts; below it, it does not. Probes
    start at half the backlog drain rate (single POSTs cost every stage more than batches, so the
    drain rate bounds the search), go up by half or down by 40 % until a kept-up and a lost rate
    are found, then bisect.
    """
    o = b.opts
    kept: float | None = None
    lost: float | None = None
    rate = drain / 2
    for probe in range(o.sustain_probes):
        point = await run_point(b, f"s{probe}", rate, o.sustain_seconds, drain=o.sustain_seconds)
        ok, why = keeps_up(point)
        log(f"sustain probe at {rate:,.1f}/s: {'kept up' if ok else 'fell behind'} ({why})")
        b.extra.setdefault("sustain_probes", []).append({"rate_per_s": round(rate, 1), "kept_up": ok, "why": why})
        if ok:
            kept = max(kept or 0.0, rate)
        else:
            lost = min(lost or rate, rate)
        if kept and lost:
            if lost / kept < 1.2:
                break
            rate = (kept * lost) ** 0.5
        elif ok and rate >= drain:
            break
        else:
            rate = min(rate * 1.5, drain) if ok else rate * 0.6
    if kept is None:
        raise BenchError(f"the pipeline fell behind at every probed rate, down to {rate / 0.6:,.1f}/s")
    b.note("e2e", "maximum sustained rate of single POSTs {:,.0f}/s; probes: {}".format(kept, ", ".join(
        f"{p['rate_per_s']:,.0f}/s {'kept up' if p['kept_up'] else 'fell behind'}"
        for p in b.extra["sustain_probes"])))
    return kept


QUEUED_MS = 1000.0
"""A pipeline whose submissions wait this long (p50) is queueing, not keeping up, even if the wait stopped growing
(unloaded, they are visible in 150-250 ms)."""


def keeps_up(point: dict[str, Any]) -> tuple[bool, str]:
    """Whether a constant-rate run kept up: every followed submission visible, and the latency of the last
    third sent no higher than the first third's plus a quarter of it (at least 150 ms), nor above `QUEUED_MS`."""
    if point["censored"]:
        return False, f"{len(point['censored'])} followed submissions not visible in time"
    latencies = [latency for _, latency in sorted(point["visible"])]
    third = max(1, len(latencies) // 3)
    first, last = report.percentile(latencies[:third], 50) or 0.0, report.percentile(latencies[-third:], 50) or 0.0
    ok = last <= min(first + max(150.0, first / 4), QUEUED_MS)
    return ok, f"p50 of the first third sent {first:,.0f} ms, of the last third {last:,.0f} ms"


async def pipeline_capacity(b: Bench, submissions: int) -> float:
    """Submissions per second from the first batch POST until aggregate has committed every validated event,
    with the three services running together as they share the machine: how fast a backlog drains."""
    ns = b.namespace("c")
    topics = Topics.under(ns)
    await ensure_topics(b.bootstrap, topics.all(), PARTITIONS)
    auth = await asyncio.to_thread(b.keys, ns)
    procs = {name: await b.start(name, ns) for name in report.SERVICES}
    probe = b.probe(**{name: p.proc.pid for name, p in procs.items()})
    try:
        envs = payloads.envelopes(submissions, seed=77)
        bodies = [orjson.dumps(envs[i:i + 500]) for i in range(0, len(envs), 500)]
        before, started = probe.snapshot(), time.perf_counter()
        posting = asyncio.create_task(closed_loop(*hostport(procs["ingest"].url), "/v1/submissions/batch", bodies,
                                                  2, ok=(207,), headers=auth["officer"]))
        progress = await watch_group(b.bootstrap, f"{ns}-aggregate", topics.validated, submissions, timeout=900,
                                     proc=procs["aggregate"].proc, probe=probe, since=(0, started, before))
        posted = await posting
        if posted.errors:
            raise BenchError(f"{posted.errors} batch POSTs failed: {posted.statuses}")
    finally:
        for proc in procs.values():
            b.stop(proc)
    rate = progress.rate
    log(f"pipeline: {submissions} submissions posted at once, in views after {submissions / rate:.1f}s: "
        f"a backlog drains at {rate:,.0f}/s")
    b.note("e2e", f"a backlog drains at {rate:,.0f}/s ({submissions} submissions posted at once in batches, until "
                  "aggregate committed them all); CPU " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                         sorted(progress.cpu.items(), key=lambda kv: -kv[1]))
           + " cores")
    return rate


async def run_point(b: Bench, tag: str, rate: float, seconds: float, drain: float) -> dict[str, Any]:
    """Run the three services on a fresh namespace and database, submit at `rate`/s open loop for `seconds`,
    and follow a sample of the submissions until they are visible (see `open_loop`)."""
    o = b.opts
    await b.settle(tag)
    ns = b.namespace(tag)
    await ensure_topics(b.bootstrap, Topics.under(ns).all(), PARTITIONS)
    auth = await asyncio.to_thread(b.keys, ns)
    procs = {name: await b.start(name, ns) for name in report.SERVICES}
    probe = b.probe(**{name: p.proc.pid for name, p in procs.items()})
    ingest = Pool(*hostport(procs["ingest"].url), auth["officer"])
    agg = Pool(*hostport(procs["aggregate"].url), auth["analyst"])
    try:
        # Warm-up: a few submissions all the way through, off the clock.
        warm = payloads.envelopes(20, seed=49)
        await closed_loop(*hostport(procs["ingest"].url), "/v1/submissions", payloads.bodies(warm), 4, ok=(202,),
                          headers=auth["officer"])
        await until_visible(agg, [e["id"] for e in warm], timeout=120)
        n = max(1, int(rate * seconds))
        envs = payloads.envelopes(n, seed=400 + sum(map(ord, tag)))
        every = max(1, round(rate / o.e2e_samples_per_s))
        log(f"{tag}: {n} submissions at {rate:,.1f}/s open loop, following every {every}. one")
        before, started = probe.snapshot(), time.perf_counter()
        result = await open_loop(ingest, agg, envs, rate, every, drain=drain)
        result["cpu"] = CpuProbe.share(before, probe.snapshot(), time.perf_counter() - started)
        result["scraped"] = {name: await b.metrics(procs[name]) for name in ("validate", "aggregate")}
        result["submissions"] = n
    finally:
        ingest.close()
        agg.close()
        for proc in procs.values():
            b.stop(proc)
    return result


async def e2e_point(b: Bench, tag: str, rate: float, seconds: float) -> dict[str, Any]:
    """The e2e figures at one rate, over `rounds` runs with their samples pooled (a slow moment of the machine
    weighs in as it happened, but does not stand for the whole figure): latency percentiles, CPU and each
    consumer's batches."""
    o = b.opts
    results = [await run_point(b, f"{tag}{r}", rate, seconds, drain=o.e2e_drain) for r in range(o.rounds)]
    per_round = []
    for r, result in enumerate(results):
        samples = [latency for _, latency in result["visible"]] + result["censored"]
        per_round.append((report.percentile(samples, 50) or 0.0, report.percentile(samples, 99) or 0.0))
        log(f"e2e round {r + 1} at {rate:,.1f}/s: p50 {per_round[-1][0]:,.0f} ms, p99 {per_round[-1][1]:,.0f} ms "
            f"({len(samples)} followed, {len(result['censored'])} not visible after {o.e2e_drain:.0f}s of drain)")
    samples = [latency for result in results for _, latency in result["visible"]]
    censored = sum(len(result["censored"]) for result in results)
    samples += [latency for result in results for latency in result["censored"]]
    acks = [ack for result in results for ack in result["ack"]]
    p50, p99 = report.percentile(samples, 50), report.percentile(samples, 99)
    log(f"e2e at {rate:,.1f}/s, {len(results)} runs pooled: p50 {p50 or 0:,.0f} ms, p99 {p99 or 0:,.0f} ms")
    cpu = {name: round(sum(result["cpu"].get(name, 0.0) for result in results) / len(results), 2)
           for name in {name for result in results for name in result["cpu"]}}
    scraped = {name: _summed([result["scraped"][name] for result in results]) for name in results[0]["scraped"]}
    summary = {"rate_per_s": round(rate, 1), "rounds": len(results),
               "submissions": sum(result["submissions"] for result in results), "followed": len(samples),
               "not_visible": censored, "failed_posts": sum(result["failed"] for result in results),
               "achieved_per_s": round(min(result["achieved"] for result in results), 1),
               "p50_is_lower_bound": censored > 0.5 * len(samples) if samples else False,
               "p99_is_lower_bound": censored > 0.01 * len(samples) if samples else False,
               "per_round_p50_p99_ms": [[round(a), round(z)] for a, z in per_round],
               "cpu_cores": cpu}
    b.note("e2e", f"at {rate:,.1f}/s, {len(results)} runs of {seconds:g}s pooled: p99 per run "
                  + ", ".join(f"{z:,.0f}" for _, z in per_round) + " ms")
    b.note("e2e", f"at {rate:,.1f}/s: CPU " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(cpu.items(),
                                                                                         key=lambda kv: -kv[1]))
           + " cores" + (f"; {censored} of {len(samples)} followed submissions not visible after "
                         f"{o.e2e_drain:.0f}s" if censored else ""))
    consumers = {name: batches_of(m, name) for name, m in scraped.items()}
    b.note("e2e", f"at {rate:,.1f}/s: " + "; ".join(
        f"{name} {c['batches']:,.0f} batches of {c['mean_size']:.1f} events, {c['mean_ms']:,.0f} ms each"
        for name, c in consumers.items() if c["batches"]))
    summary["consumers"] = consumers
    split = [(d, total - d) for result in results
             for (_, total), d in zip(result["visible"], result["decided"], strict=True) if d is not None]
    decided, after = [d for d, _ in split], [a for _, a in split]
    if split:
        before = [round(report.percentile(decided, q) or 0) for q in (50, 99)]
        rest = [round(report.percentile(after, q) or 0) for q in (50, 99)]
        summary["split_ms"] = {"to_decided_p50_p99": before, "decided_to_visible_p50_p99": rest}
        b.note("e2e", f"at {rate:,.1f}/s: 202 → validate's decision p50 {before[0]:,} ms, p99 {before[1]:,} ms; "
                      f"decision → visible p50 {rest[0]:,} ms, p99 {rest[1]:,} ms (transaction, aggregate, poll)")
    parts = aggregate_parts(scraped["aggregate"])
    if parts["batch"]:
        b.note("e2e", f"at {rate:,.1f}/s, of aggregate's batch time: {batch_shares(parts)}")
    phases = validate_parts(scraped["validate"])
    if phases["batches"]:
        b.note("e2e", f"at {rate:,.1f}/s, a validate batch: {phase_ms(phases)}")
    return {"p50": p50, "p99": p99, "ack_p50": report.percentile(acks, 50),
            "ack_p99": report.percentile(acks, 99), "summary": summary}


def _summed(scrapes: list[dict[str, float]]) -> dict[str, float]:
    """Several runs' metrics as one (counters and histogram sums add up)."""
    total: dict[str, float] = {}
    for scrape in scrapes:
        for key, value in scrape.items():
            total[key] = total.get(key, 0.0) + value
    return total


def batches_of(m: dict[str, float], service: str) -> dict[str, float]:
    """How many batches a consumer processed (warm-up included), their mean size and mean time."""
    batches = metric(m, "dmp_consumer_batch_seconds_count", service=service)
    events = metric(m, "dmp_consumer_batch_size_sum", service=service)
    seconds = metric(m, "dmp_consumer_batch_seconds_sum", service=service)
    return {"batches": batches, "mean_size": round(events / batches, 1) if batches else 0.0,
            "mean_ms": round(1000 * seconds / batches, 1) if batches else 0.0}


async def until_visible(agg: Pool, ids: list[str], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    pending = set(ids)
    while pending:
        if time.perf_counter() > deadline:
            raise BenchError(f"{len(pending)} warm-up submissions never became visible")
        for i in list(pending):
            response = await agg.request("GET", f"/v1/submissions/{i}")
            if response.status not in (200, 404):
                raise BenchError(f"GET /v1/submissions/{i} answered {response.status}: {response.body[:300]!r}")
            if response.status == 200 and orjson.loads(response.body)["status"] == "validated":
                pending.discard(i)
        await asyncio.sleep(0.1)


async def open_loop(ingest: Pool, agg: Pool, envs: list[dict[str, Any]], rate: float, every: int,
                    drain: float) -> dict[str, Any]:
    """POST at a fixed rate whatever the answers (open loop); follow every `every`-th submission from its 202
    until GET /v1/submissions/{id} says validated. Latencies in ms; ack latency counts from the scheduled send.
    Followed submissions still not visible `drain` seconds after the last POST are `censored` (lower bounds).
    `decided`: per visible submission, ms from its 202 to validate's decision (`decided_at`, wall clock), which
    splits its wait into the part before validate decided and the part after (commit, aggregate, the poll)."""
    loop = asyncio.get_running_loop()
    ack: list[float] = []
    visible: list[tuple[float, float]] = []
    """(when its 202 came, ms until visible) per followed submission."""
    decided: list[float | None] = []
    """Per entry of `visible`, ms from the 202 to validate's decision (None if the record has no decision time)."""
    pending: dict[str, tuple[float, float]] = {}
    """Followed submission id → (when its 202 came, when to poll it next)."""
    acked_wall: dict[str, float] = {}
    failed = 0
    sending = True

    async def post(body: bytes, scheduled: float, follow: bool, sid: str) -> None:
        nonlocal failed
        try:
            response = await ingest.request("POST", "/v1/submissions", body)
        except (OSError, HTTPError, asyncio.IncompleteReadError):
            failed += 1
            return
        now = loop.time()
        if response.status != 202:
            failed += 1
            return
        ack.append(1000 * (now - scheduled))
        if follow:
            pending[sid] = (now, now + 0.025)
            acked_wall[sid] = time.time()

    async def check(sid: str) -> None:
        acked, _ = pending[sid]
        try:
            response = await agg.request("GET", f"/v1/submissions/{sid}")
        except (OSError, HTTPError, asyncio.IncompleteReadError):
            response = Response(0, b"")
        now = loop.time()
        record = orjson.loads(response.body) if response.status == 200 else {}
        if record.get("status") in ("validated", "rejected"):
            visible.append((acked, 1000 * (now - acked)))
            del pending[sid]
            at = record["history"][-1].get("decided_at")
            decided.append(1000 * (datetime.fromisoformat(at).timestamp() - acked_wall.pop(sid)) if at else None)
        else:  # poll again after 25 ms + a tenth of the age: ≤ ~10 % error, bounded load on a backlog
            pending[sid] = (acked, now + min(0.5, 0.025 + 0.1 * (now - acked)))

    async def poller() -> None:
        while sending or pending:
            now = loop.time()
            due = [sid for sid, (_, at) in pending.items() if at <= now]
            if due:
                await asyncio.gather(*(check(sid) for sid in due))
            await asyncio.sleep(0.01)

    poll_task = asyncio.create_task(poller())
    posts = []
    start = loop.time()
    for index, e in enumerate(envs):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        posts.append(asyncio.create_task(post(orjson.dumps(e), scheduled, index % every == 0, e["id"])))
    await asyncio.gather(*posts)
    achieved = len(envs) / (loop.time() - start)
    sending = False
    try:
        await asyncio.wait_for(asyncio.shield(poll_task), timeout=drain)
    except TimeoutError:
        poll_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poll_task
    now = loop.time()
    censored = [1000 * (now - acked) for acked, _ in pending.values()]
    return {"ack": ack, "visible": visible, "decided": decided, "censored": censored, "failed": failed,
            "achieved": achieved}


STAGES: dict[str, Callable[[Bench], Awaitable[None]]] = {
    "http_single": http_single, "ingest_batch": ingest_batch, "validate": validate, "aggregate": aggregate,
    "e2e": e2e}


async def run_stages(b: Bench) -> None:
    for name in [s.strip() for s in b.opts.stages.split(",") if s.strip()]:
        if name not in STAGES:
            raise BenchError(f"unknown stage {name!r}; stages: {', '.join(STAGES)}")
        log(f"[bold]{name}[/]")
        started = time.perf_counter()
        try:
            await STAGES[name](b)
        except Exception as exc:  # noqa: BLE001 - report it and go on with the other stages
            b.errors[name] = repr(exc)
            console.print(f"[red]{name} failed:[/] {exc!r}")
            traceback.print_exc()
        finally:
            b.stop_all()
            b.warm = True
        log(f"{name} took {time.perf_counter() - started:.0f}s")


# --- the whole run --------------------------------------------------------------------------------------------


def machine(b: Bench | None, engine: str) -> dict[str, Any]:
    memory = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cores": os.cpu_count(), "memory_gb": memory, "cpu": cpu, "python": platform.python_version(),
            "kafka_version": kafka.VERSION,
            "store_engine": f"ferretdb {store.FERRETDB_VERSION} (sqlite)" if engine == "ferretdb" else engine,
            "timestamp": datetime.now(UTC).isoformat(timespec="seconds"), "run_id": b.run_id if b else None}


def terminate(signum: int, _: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    opts = parse(argv)
    if opts.scale:
        from bench import scale

        return scale.main(opts)
    run_id = uuid.uuid4().hex[:8]
    base = BENCH / f"run-{run_id}"
    ok = False
    started = time.perf_counter()
    try:
        log(f"run {run_id}: starting a broker and a store under {base.relative_to(ROOT)}")
        with bench_stack(opts, base, run_id) as b:
            log(f"broker {b.broker.bootstrap} (Kafka {kafka.VERSION}), store {b.store.url} ({b.store.engine})")
            run_loop(run_stages(b))
            ok = not b.errors
    except KeyboardInterrupt:
        console.print(f"[red]interrupted; everything it started is stopped; data kept in {base}[/]")
        return 130
    doc = report.build(b.stages, b.latency, b.rss, machine(b, b.store.engine),
                       extra_absolute={**b.extra, "duration_s": round(time.perf_counter() - started, 1)},
                       breakdown=b.breakdown, settings=vars(opts))
    if b.errors:
        doc["errors"] = b.errors
    BENCH.mkdir(parents=True, exist_ok=True)
    (BENCH / "latest.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    console.print(report.table(doc))
    notes = report.breakdown_table(doc)
    if notes is not None:
        console.print(notes)
    console.print(f"wrote {(BENCH / 'latest.json').relative_to(ROOT)} in {doc['absolute']['duration_s']:.0f}s")
    if ok and not opts.keep and not opts.profile:
        shutil.rmtree(base, ignore_errors=True)
    else:
        console.print(f"logs and data kept in {base.relative_to(ROOT)}")
    return 0 if ok else 1


@contextlib.contextmanager
def bench_stack(opts: Options, base: Path, run_id: str) -> Iterator[Bench]:
    """A store, a broker and the Bench that starts services against them, under `base`; all stopped on the way
    out, interrupted or not (SIGTERM is turned into an exit, so that this cleanup runs)."""
    logging.getLogger("aiokafka").setLevel(logging.ERROR)  # retries on fresh topics' leader moves are expected
    signal.signal(signal.SIGTERM, terminate)
    local_store: store.Store | None = None
    broker: kafka.Broker | None = None
    b: Bench | None = None
    try:
        local_store = store.start(base / "store")
        broker = kafka.start(base / "kafka")
        b = Bench(opts, broker, local_store, base, run_id)
        yield b
    finally:
        if b is not None:
            b.stop_all()
        if broker is not None:
            broker.stop()
        if local_store is not None:
            local_store.stop()


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` on the services' kind of event loop."""
    runner = asyncio.Runner(loop_factory=loop_factory())
    try:
        return runner.run(main)
    finally:
        runner.close()


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop, as uvicorn uses it in the services (loop="auto"), so both sides of a ratio run on the same loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
