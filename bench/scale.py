"""`make bench-scale` (`python -m bench --scale 10000,100000`): what stored volume costs the pipeline.

One stack (broker, store, the three services) is loaded through ingest's batch endpoint with submissions
of all five types (bench/scale_load.py), up to cumulative checkpoints. At each one, once aggregate has
applied everything (its group's committed offsets reach the last record of every partition), it measures:

- aggregate's drain rate: aggregate is stopped, the checkpoint's last `probe` submissions are loaded and
  validated, then aggregate is started and timed from its first commit until it has applied them all;
- every view, export and the listing, with and without filters, as an analyst reads them (p50 / p99);
- the store's bytes (its database files) and Kafka's (the topics' log segments) per stored submission;
- `dmp admin views rebuild` against a raw replay (the same topics consumed from the start, one document
  per event bulk-written to a fresh database of the same store), each time-boxed;
- the resident memory of every process, sampled each second (now, and the peak since the last checkpoint).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bench import scale_report
from bench.console_load import PAGES, ConsolePages
from bench.http import Pool
from bench.kafkatools import BenchError
from bench.options import Options
from bench.runner import (
    BENCH,
    PARTITIONS,
    Bench,
    Proc,
    bench_stack,
    console,
    hostport,
    log,
    machine,
    run_loop,
)
from bench.scale_load import Corpus, post_all
from infra.proc import ROOT
from shared.kafka import ensure_topics
from shared.topics import Topics

READ_SAMPLES = 20
READ_BUDGET_S = 10.0
"""Per read: stop sampling after this many seconds (at least 3 samples)."""


@dataclass
class ScaleOptions:
    checkpoints: list[int]
    probe: int = 5000
    """Submissions loaded while aggregate is stopped, at the end of each checkpoint, to time its drain."""
    rebuild_budget: float = 300.0
    """Seconds the rebuild, and apart from it the raw replay, may take at each checkpoint before being stopped."""
    seed: int = 7


# --- memory --------------------------------------------------------------------------------------------------


def vm_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


@dataclass
class Memory:
    """Samples the resident memory of named processes each second: the latest and the peak since `reset`."""

    pids: dict[str, int]
    now: dict[str, float] = field(default_factory=dict)
    peak: dict[str, float] = field(default_factory=dict)

    def sample(self) -> None:
        for name, pid in list(self.pids.items()):
            rss = vm_rss_mb(pid)
            if rss is None:
                continue
            self.now[name] = rss
            self.peak[name] = max(self.peak.get(name, 0.0), rss)

    async def run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(1.0)

    def figures(self) -> dict[str, dict[str, float]]:
        self.sample()
        return {name: {"now": round(self.now[name], 1), "peak": round(self.peak.get(name, self.now[name]), 1)}
                for name in sorted(self.now) if name in self.pids}

    def reset(self) -> None:
        self.peak = dict(self.now)


# --- the broker: where every partition's records end, and whether a group has committed them -----------------


async def data_ends(bootstrap: str, topics: list[str]) -> dict[TopicPartition, int]:
    """Per partition, one past its last committed record (transaction markers after it are not records, and a
    consumer never commits past them)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await partitions(consumer, topics)
        consumer.assign(tps)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        out = {}
        for tp, end in ends.items():
            back, last = 8, -1
            while end > 0:
                start = max(0, end - back)
                consumer.seek(tp, start)
                while await consumer.position(tp) < end:
                    batch = await consumer.getmany(tp, timeout_ms=1000)
                    for record in batch.get(tp, []):
                        if record.offset < end:
                            last = max(last, record.offset)
                if last >= 0 or start == 0:
                    break
                back *= 8
            out[tp] = last + 1
        return out
    finally:
        await consumer.stop()


async def partitions(consumer: AIOKafkaConsumer, topics: list[str]) -> list[TopicPartition]:
    cluster = await consumer._client.fetch_all_metadata()
    return [TopicPartition(t, p) for t in topics for p in sorted(cluster.partitions_for_topic(t) or ())]


async def committed(admin: AIOKafkaAdminClient, group: str) -> dict[TopicPartition, int]:
    offsets = await admin.list_consumer_group_offsets(group)
    return {tp: max(0, om.offset) for tp, om in offsets.items()}


async def caught_up(bootstrap: str, group: str, topics: list[str], timeout: float,
                    proc: Proc | None = None) -> None:
    """Poll `group`'s committed offsets until they reach the last record of every partition of `topics`."""
    targets = await data_ends(bootstrap, topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    deadline = time.monotonic() + timeout
    behind = sum(targets.values())
    try:
        while True:
            if proc is not None and proc.proc.poll() is not None:
                raise BenchError(f"{proc.name} exited with code {proc.proc.returncode} (log {proc.log})")
            with contextlib.suppress(KafkaError):
                done = await committed(admin, group)
                behind = sum(max(0, end - done.get(tp, 0)) for tp, end in targets.items())
                if not behind:
                    return
            if time.monotonic() > deadline:
                raise BenchError(f"group {group} is still {behind:,} records behind after {timeout:.0f}s")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()


# --- loading and aggregate's drain rate -------------------------------------------------------------------------


@dataclass
class Stack:
    b: Bench
    ns: str
    topics: Topics
    auth: dict[str, dict[str, str]]
    procs: dict[str, Proc]
    memory: Memory

    @property
    def all_topics(self) -> list[str]:
        return list(self.topics.all())

    async def load(self, corpus: Corpus, count: int) -> dict[str, Any]:
        """`count` new submissions (and their amendments) through ingest; waits until validate has decided them."""
        bodies = corpus.next(count)
        started = time.perf_counter()
        result = await post_all(*hostport(self.procs["ingest"].url), bodies, self.auth["officer"])
        if result.items != len(bodies):
            raise BenchError(f"ingest received {result.items} of {len(bodies)} items: {result.statuses}")
        await caught_up(self.b.bootstrap, f"{self.ns}-validate", [self.topics.received], timeout=3600,
                        proc=self.procs["validate"])
        return {"items": len(bodies), "seconds": round(time.perf_counter() - started, 1),
                "ingest_per_s": round(result.rate, 1)}

    async def change_views(self, corpus: Corpus) -> None:
        """One more submission that validate accepts (with any amendment the corpus draws), sent through ingest;
        returns once aggregate's status of it says validated, which it says only after the views were written."""
        bodies: list[dict[str, Any]] = []
        while True:
            broken = corpus.broken
            bodies += corpus.next(1)
            if corpus.broken == broken:
                break
        new = corpus.sent[-1][0]
        result = await post_all(*hostport(self.procs["ingest"].url), bodies, self.auth["officer"])
        if result.items != len(bodies):
            raise BenchError(f"ingest received {result.items} of {len(bodies)} items: {result.statuses}")
        pool = Pool(*hostport(self.procs["aggregate"].url), self.auth["analyst"])
        deadline = time.monotonic() + 60
        try:
            while True:
                response = await pool.request("GET", f"/v1/submissions/{new}")
                if response.status == 200 and orjson.loads(response.body)["status"] == "validated":
                    return
                if time.monotonic() > deadline:
                    raise BenchError(f"submission {new} not validated within 60 s")
                await asyncio.sleep(0.02)
        finally:
            pool.close()

    async def applied(self) -> None:
        await caught_up(self.b.bootstrap, f"{self.ns}-aggregate", self.all_topics, timeout=7200,
                        proc=self.procs["aggregate"])

    async def start_aggregate(self, wait: bool = True) -> Proc:
        proc = await self.b.start("aggregate", self.ns, wait=wait)
        self.procs["aggregate"] = proc
        self.memory.pids["aggregate"] = proc.proc.pid
        return proc

    async def drain_rate(self, corpus: Corpus, count: int) -> dict[str, Any]:
        """aggregate stopped, `count` submissions loaded and decided, aggregate started: events per second from
        its first commit until it has applied them all (start-up and its first batch off the clock, as in the
        aggregate stage of `make bench`)."""
        self.b.stop(self.procs.pop("aggregate"))
        loaded = await self.load(corpus, count)
        group = f"{self.ns}-aggregate"
        targets = await data_ends(self.b.bootstrap, self.all_topics)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.b.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            before = await committed(admin, group)
            events = await count_records(self.b.bootstrap, before, targets)
            total = sum(max(0, end - before.get(tp, 0)) for tp, end in targets.items())
            proc = await self.start_aggregate(wait=False)
            first: tuple[float, int] | None = None
            deadline = time.monotonic() + 3600
            while True:
                if proc.proc.poll() is not None:
                    raise BenchError(f"aggregate exited with code {proc.proc.returncode} (log {proc.log})")
                if time.monotonic() > deadline:
                    raise BenchError("aggregate did not apply the probe within an hour")
                try:
                    done = await committed(admin, group)
                except KafkaError:
                    await asyncio.sleep(0.2)
                    continue
                now = time.perf_counter()
                moved = sum(max(0, min(done.get(tp, 0), end) - before.get(tp, 0)) for tp, end in targets.items())
                if first is None and moved:
                    first = (now, moved)
                if first is not None and moved >= total:
                    # The offsets the first commit covered include a few transaction markers, as the rest do.
                    timed = events * (1 - first[1] / total) if total else 0.0
                    seconds = now - first[0]
                    return {"submissions": count, "items": loaded["items"], "events": events,
                            "events_timed": round(timed), "seconds": round(seconds, 2),
                            "per_s": round(timed / seconds, 1) if seconds > 0 else None}
                await asyncio.sleep(0.05)
        finally:
            await admin.close()


async def count_records(bootstrap: str, starts: Mapping[TopicPartition, int],
                        ends: Mapping[TopicPartition, int]) -> int:
    """Committed records between `starts` (0 where absent) and `ends` on each partition (markers not counted)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed",
                                enable_auto_commit=False)
    await consumer.start()
    count = 0
    try:
        wanted = [tp for tp, end in ends.items() if end > starts.get(tp, 0)]
        consumer.assign(wanted)
        for tp in wanted:
            consumer.seek(tp, starts.get(tp, 0))
        while pending := [tp for tp in wanted if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(*pending, timeout_ms=1000)
            count += sum(1 for tp, records in batch.items() for r in records if r.offset < ends[tp])
        return count
    finally:
        await consumer.stop()


# --- reads --------------------------------------------------------------------------------------------------------


def reads(since: str, some_id: str) -> dict[str, tuple[str, str]]:
    """Name → (role, path): every view, export and the listing, unfiltered and filtered as analysts filter them."""
    analyst = {
        "seizures": "/v1/views/seizures", "seizures country": "/v1/views/seizures?country=AFG",
        "seizures country+year": "/v1/views/seizures?country=AFG&year=2020",
        "seizures drug": "/v1/views/seizures?drug=heroin", "seizures csv": "/v1/views/seizures?format=csv",
        "routes": "/v1/views/routes", "routes route+drug": "/v1/views/routes?route=balkan&drug=heroin",
        "routes from+to": "/v1/views/routes?from=2020-01&to=2020-12",
        "prices": "/v1/views/prices", "prices country+year": "/v1/views/prices?country=AFG&year=2020",
        "prices drug+market": "/v1/views/prices?drug=heroin&market=retail",
        "financial": "/v1/views/financial", "financial country+year": "/v1/views/financial?country=AFG&year=2020",
        "trainings": "/v1/views/trainings", "trainings country+year": "/v1/views/trainings?country=AFG&year=2020",
        "map": "/v1/views/map", "map drug+from+to": "/v1/views/map?drug=heroin&from=2020-01-01&to=2020-12-31",
        "fact-sheet": "/v1/views/fact-sheet?country=AFG&year=2020",
        "export arq": "/v1/exports/arq?country=AFG&year=2020",
        "export arq csv": "/v1/exports/arq?country=AFG&year=2020&format=csv",
        "listing": "/v1/submissions", "listing type": "/v1/submissions?type=price",
        "listing status rejected": "/v1/submissions?status=rejected", "listing country": "/v1/submissions?country=TJK",
        "listing from": f"/v1/submissions?from={since}",
        "listing updated_since": f"/v1/submissions?updated_since={since}",
        "listing limit 1000": "/v1/submissions?limit=1000", "listing csv": "/v1/submissions?format=csv",
        "submission status": f"/v1/submissions/{some_id}",
    }
    out = {name: ("analyst", path) for name, path in analyst.items()}
    out["listing officer's own"] = ("officer", "/v1/submissions?submitted_by=me")
    return out


KEPT = ("seizures", "seizures country", "seizures country+year", "seizures drug", "routes", "routes route+drug",
        "routes from+to", "prices", "prices country+year", "prices drug+market", "financial",
        "financial country+year", "trainings", "trainings country+year", "fact-sheet", "map", "map drug+from+to")
"""The reads whose answers aggregate keeps until a view changes (services/aggregate/answers.py): timed again as
`<name> cold`, each sample right after one more submission was applied."""


async def time_reads(url: str, auth: Mapping[str, dict[str, str]], queries: Mapping[str, tuple[str, str]],
                     samples: int = READ_SAMPLES, budget: float = READ_BUDGET_S,
                     before: Callable[[], Awaitable[None]] | None = None) -> dict[str, dict[str, Any]]:
    """Each read `samples` times in turn (one at a time, after one untimed), or as many as fit in `budget` s;
    `before` runs ahead of each timed one, off the clock (and off the budget)."""
    pools = {role: Pool(*hostport(url), headers) for role, headers in auth.items()}
    out: dict[str, dict[str, Any]] = {}
    try:
        for name, (role, path) in queries.items():
            timings: list[float] = []
            errors: dict[int, int] = {}
            await pools[role].request("GET", path)
            spent = 0.0
            while len(timings) < samples and (len(timings) < 3 or spent < budget):
                if before is not None:
                    await before()
                began = time.perf_counter()
                response = await pools[role].request("GET", path)
                timings.append(1000 * (time.perf_counter() - began))
                spent += timings[-1] / 1000
                if response.status != 200:
                    errors[response.status] = errors.get(response.status, 0) + 1
            out[name] = scale_report.read_figures(timings)
            if errors:
                out[name]["errors"] = sum(errors.values())
                out[name]["statuses"] = {str(k): v for k, v in errors.items()}
            log(f"  {name}: p50 {out[name]['p50']} ms, p99 {out[name]['p99']} ms ({len(timings)} reads)"
                + (f" [red]{errors}[/]" if errors else ""))
    finally:
        for pool in pools.values():
            pool.close()
    return out


# --- bytes ---------------------------------------------------------------------------------------------------------


def store_bytes(b: Bench, database: str) -> int | None:
    """The database's files on disk (FerretDB's SQLite file and its write-ahead log); mongod: dbStats."""
    if b.store.engine == "ferretdb" and b.store.data_dir is not None:
        return sum(f.stat().st_size for f in (b.store.data_dir / "ferretdb").glob(f"{database}.sqlite*"))
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(b.store.url)
    try:
        stats = client[database].command("dbStats")
        return int(stats.get("storageSize", 0)) + int(stats.get("indexSize", 0))
    finally:
        client.close()


def kafka_bytes(b: Bench, topics: list[str]) -> int:
    """The topics' log segments (records and batch headers; not the index files, which are preallocated)."""
    data = b.broker.data_dir / "data"
    return sum(f.stat().st_size for t in topics for f in data.glob(f"{t}-*/*.log"))


# --- rebuild and its ceiling -----------------------------------------------------------------------------------


REPLAYING = re.compile(r"into generation (\d+)")
PROGRESS = re.compile(r"replayed \(offsets\): ([\d,]+)")
REPLAYED = re.compile(r"replayed ([\d,]+) events in")


async def rebuild(stack: Stack, budget: float) -> dict[str, Any]:
    """`dmp admin views rebuild` as an operator runs it, time-boxed: the replay's events per second (from its
    first line to its "replayed N events" line), and whether it got through the comparison in `budget` s."""
    dmp = shutil.which("dmp", path=str(Path(sys.executable).parent))
    if dmp is None:
        raise BenchError("the dmp command is not installed in this virtualenv")
    # A group of its own each time: `dmp admin views drop` leaves the dropped generation's consumer group, and the
    # next rebuild, given the same generation number, would resume from that group's offsets, not the earliest.
    env = {**os.environ, **stack.b.env(stack.ns), "AGGREGATE_GROUP_ID": f"{stack.ns}-rebuild-{int(time.time())}",
           "COLUMNS": "10000"}  # one line per message
    logfile = stack.b.base / "logs" / f"rebuild-{int(time.time())}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(dmp, "admin", "views", "rebuild", "--force", "--rounds", "1",
                                                   "--wait", "0", env=env, stdout=asyncio.subprocess.DEVNULL,
                                                   stderr=asyncio.subprocess.PIPE, start_new_session=True)
    stack.memory.pids["rebuild"] = process.pid
    out: dict[str, Any] = {"budget_s": budget, "replayed_all": False, "compared": False}
    replay_began: float | None = None
    assert process.stderr is not None
    with logfile.open("w") as text:
        try:
            async with asyncio.timeout(budget):
                async for raw in process.stderr:
                    line = raw.decode(errors="replace").strip()
                    text.write(line + "\n")
                    now = time.perf_counter()
                    if (m := REPLAYING.search(line)) and replay_began is None:
                        replay_began, out["generation"] = now, int(m.group(1))
                    elif (m := PROGRESS.search(line)) and replay_began is not None:
                        out["offsets"], out["replay_seconds"] = int(m.group(1).replace(",", "")), now - replay_began
                    elif (m := REPLAYED.search(line)) and replay_began is not None:
                        out["events"], out["replay_seconds"] = int(m.group(1).replace(",", "")), now - replay_began
                        out["replayed_all"] = True
                out["exit_code"] = await process.wait()
                out["compared"] = out["exit_code"] in (0, 1)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            await process.wait()
            out["stopped_after_s"] = budget
    stack.memory.pids.pop("rebuild", None)
    out["seconds"] = round(time.perf_counter() - started, 1)
    done = out.get("events") or out.get("offsets")
    if done and out.get("replay_seconds"):
        out["per_s"] = round(done / out["replay_seconds"], 1)
        out["replay_seconds"] = round(out["replay_seconds"], 1)
    if "generation" in out:
        await drop_generation(stack, out["generation"])
    return out


async def drop_generation(stack: Stack, generation: int) -> None:
    """The rebuilt generation goes, so the next checkpoint's store holds only what the live one needs."""
    from services.aggregate.rebuild import drop_generation as drop
    from shared.store import connect

    client = connect(stack.b.store.url, "bench-scale")
    try:
        await drop(client, f"dmp_{stack.ns}", generation)
    finally:
        await client.close()


async def raw_replay(stack: Stack, budget: float) -> dict[str, Any]:
    """The ceiling for the rebuild: consume the same three topics from the earliest offset with aiokafka
    (read_committed, batches as large as aggregate's) and upsert one document per event by `_id` into a fresh
    database of the same store, one bulk write per batch; events per second, stopped after `budget` s."""
    from pymongo import ReplaceOne

    from services.aggregate.settings import AggregateSettings
    from shared.store import connect

    max_batch = AggregateSettings().max_batch
    database = f"dmp_{stack.ns}_ceiling"
    client = connect(stack.b.store.url, "bench-scale-ceiling")
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.b.bootstrap, isolation_level="read_committed",
                                enable_auto_commit=False, max_partition_fetch_bytes=4 * 1_048_576)
    started = time.perf_counter()
    events = 0
    finished = False
    await consumer.start()
    try:
        tps = await partitions(consumer, stack.all_topics)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        collection = client[database]["events"]
        async with asyncio.timeout(budget):
            while any([await consumer.position(tp) < end for tp, end in ends.items()]):
                batch = await consumer.getmany(timeout_ms=500, max_records=max_batch)
                docs = [ReplaceOne({"_id": f"{r.topic.rsplit('.', 2)[-2]}:{r.partition}:{r.offset}"},
                                   {"key": (r.key or b"").decode(), **orjson.loads(r.value or b"{}")}, upsert=True)
                        for records in batch.values() for r in records]
                if docs:
                    await collection.bulk_write(docs, ordered=False)
                    events += len(docs)
            finished = True
    except TimeoutError:
        pass
    finally:
        seconds = time.perf_counter() - started
        await consumer.stop()
        with contextlib.suppress(Exception):
            await client.drop_database(database)
        await client.close()
    return {"events": events, "seconds": round(seconds, 1), "per_s": round(events / seconds, 1) if seconds else None,
            "replayed_all": finished, "budget_s": budget}


CONSOLE_SAMPLES = 5
"""Timings of each console page with the data unchanged, and as many right after one more submission was applied."""


async def time_console(stack: Stack, corpus: Corpus) -> dict[str, dict[str, Any]]:
    """Each console page (bench/console_load.py) opened CONSOLE_SAMPLES times after one untimed opening, then as
    many times each right after one more submission was applied (`<name> cold`); nothing if no browser runs here."""
    keys = {role: headers["Authorization"].removeprefix("Bearer ") for role, headers in stack.auth.items()}
    pages = ConsolePages(stack.procs["aggregate"].url, keys)
    out: dict[str, dict[str, Any]] = {}
    try:
        await pages.open()
        for name in PAGES:
            await pages.load_ms(name)
            warm = [await pages.load_ms(name) for _ in range(CONSOLE_SAMPLES)]
            cold = []
            for _ in range(CONSOLE_SAMPLES):
                await stack.change_views(corpus)
                cold.append(await pages.load_ms(name))
            out[name], out[f"{name} cold"] = scale_report.read_figures(warm), scale_report.read_figures(cold)
            log(f"  {name}: loaded in {out[name]['p50']} ms p50, {out[name]['p99']} ms max; "
                f"cold {out[f'{name} cold']['p50']} / {out[f'{name} cold']['p99']} ms")
    except Exception as exc:  # noqa: BLE001 - a browser that cannot start costs these figures, not the run
        log(f"  [red]console pages not timed[/]: {exc!r}")
    finally:
        await pages.close()
    return out


# --- the run ----------------------------------------------------------------------------------------------------


async def measure(stack: Stack, corpus: Corpus, size: int, since: str, opts: ScaleOptions,
                  segment_started: float) -> dict[str, Any]:
    b = stack.b
    log(f"[bold]{size:,} stored submissions[/]: timing the reads")
    point: dict[str, Any] = {"submissions": size, "amendments_so_far": corpus.amendments,
                             "rejected_so_far": corpus.broken}
    queries = reads(since, corpus.sent[len(corpus.sent) // 2][0])
    point["reads_ms"] = await time_reads(stack.procs["aggregate"].url, stack.auth, queries)
    point["reads_ms"].update({f"{name} cold": figures for name, figures in (await time_reads(
        stack.procs["aggregate"].url, stack.auth, {name: queries[name] for name in KEPT},
        before=lambda: stack.change_views(corpus))).items()})
    point["console_ms"] = await time_console(stack, corpus)
    stored = store_bytes(b, f"dmp_{stack.ns}")
    kafka = kafka_bytes(b, stack.all_topics)
    point.update({"store_bytes": stored, "kafka_bytes": kafka,
                  "store_bytes_per_submission": round(stored / size) if stored else None,
                  "kafka_bytes_per_submission": round(kafka / size)})
    point["rss_mb"] = stack.memory.figures()
    log(f"  store {stored or 0:,} bytes ({point['store_bytes_per_submission']}/submission), Kafka {kafka:,} bytes "
        f"({point['kafka_bytes_per_submission']}/submission); RSS " + ", ".join(
            f"{n} {v['now']:,.0f} MB" for n, v in point["rss_mb"].items()))
    log(f"  raw replay of the topics (at most {opts.rebuild_budget:.0f}s)")
    point["ceiling"] = await raw_replay(stack, opts.rebuild_budget)
    log(f"  raw replay: {point['ceiling']['events']:,} events in {point['ceiling']['seconds']}s, "
        f"{point['ceiling']['per_s']}/s")
    log(f"  dmp admin views rebuild (at most {opts.rebuild_budget:.0f}s)")
    point["rebuild"] = await rebuild(stack, opts.rebuild_budget)
    log(f"  rebuild: {point['rebuild']}")
    if point["rebuild"].get("per_s") and point["ceiling"].get("per_s"):
        point["rebuild_ratio"] = round(point["rebuild"]["per_s"] / point["ceiling"]["per_s"], 3)
    peak = stack.memory.figures()
    point["rss_mb"] = {name: {"now": point["rss_mb"].get(name, value)["now"], "peak": value["peak"]}
                       for name, value in peak.items()}
    point["segment_seconds"] = round(time.perf_counter() - segment_started, 1)
    return point


async def run(b: Bench, opts: ScaleOptions) -> dict[str, Any]:
    ns = b.namespace("scale")
    topics = Topics.under(ns)
    await ensure_topics(b.bootstrap, topics.all(), PARTITIONS)
    auth = await asyncio.to_thread(b.keys, ns)
    procs = {name: await b.start(name, ns) for name in scale_report.SERVICES}
    pids = {name: p.proc.pid for name, p in procs.items()}
    if b.broker.pid is not None:
        pids["broker"] = b.broker.pid
    if b.store.pid is not None:
        pids["store"] = b.store.pid
    memory = Memory(pids)
    sampler = asyncio.create_task(memory.run())
    stack = Stack(b, ns, topics, auth, procs, memory)
    corpus = Corpus(opts.seed)
    points: list[dict[str, Any]] = []
    since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    try:
        for size in opts.checkpoints:
            segment_started = time.perf_counter()
            memory.reset()
            probe_at = size - min(opts.probe, size // 2)
            half = size // 2
            loads = []
            for upto in ((half, probe_at) if corpus.submissions < half < probe_at else (probe_at,)):
                if upto <= corpus.submissions:
                    continue
                log(f"[bold]loading {upto - corpus.submissions:,} submissions[/] (to {upto:,})")
                loaded = await stack.load(corpus, upto - corpus.submissions)
                log(f"  {loaded['items']:,} items posted and decided in {loaded['seconds']}s")
                loads.append(loaded)
                if upto == half:  # the listing's `from` then selects the newer half
                    since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            log("  waiting for aggregate to apply everything")
            await stack.applied()
            log(f"  aggregate applied everything {time.perf_counter() - segment_started:.0f}s into the segment")
            probe = size - corpus.submissions
            log(f"[bold]aggregate's drain rate[/]: {probe:,} submissions loaded with aggregate stopped")
            drain = await stack.drain_rate(corpus, probe)
            log(f"  aggregate applied {drain['events']:,} events in {drain['seconds']}s: {drain['per_s']}/s")
            first_rate = points[0]["aggregate"]["per_s"] if points else drain["per_s"]
            drain["ratio_to_first"] = round(drain["per_s"] / first_rate, 3) if drain["per_s"] and first_rate else None
            point = await measure(stack, corpus, size, since, opts, segment_started)
            point["aggregate"] = drain
            point["load"] = loads
            points.append(point)
            log(f"{size:,} done in {point['segment_seconds']:.0f}s")
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        for proc in list(stack.procs.values()):
            b.stop(proc)
    return {"checkpoints": points, "goals": scale_report.goals(points),
            "settings": {"checkpoints": opts.checkpoints, "probe": opts.probe, "rebuild_budget_s": opts.rebuild_budget,
                         "seed": opts.seed, "read_samples": READ_SAMPLES, "read_budget_s": READ_BUDGET_S}}


def main(opts: Options) -> int:
    """Start a broker and a store of its own, run the checkpoints, write var/bench/scale.json, print the table."""
    scale = ScaleOptions(scale_report.checkpoints(opts.scale), probe=opts.scale_probe,
                         rebuild_budget=opts.rebuild_budget)
    run_id = uuid.uuid4().hex[:8]
    base = BENCH / f"scale-{run_id}"
    started = time.perf_counter()
    try:
        log(f"scale run {run_id}: checkpoints {', '.join(f'{n:,}' for n in scale.checkpoints)}; "
            f"a broker and a store under {base.relative_to(ROOT)}")
        with bench_stack(opts, base, run_id) as b:
            doc = run_loop(run(b, scale))
    except KeyboardInterrupt:
        console.print(f"[red]interrupted; everything it started is stopped; data kept in {base}[/]")
        return 130
    doc["machine"] = machine(b, b.store.engine)
    doc["duration_s"] = round(time.perf_counter() - started, 1)
    BENCH.mkdir(parents=True, exist_ok=True)
    (BENCH / "scale.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    console.print(scale_report.table(doc))
    console.print(f"wrote {(BENCH / 'scale.json').relative_to(ROOT)} in {doc['duration_s']:.0f}s")
    if not opts.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0
