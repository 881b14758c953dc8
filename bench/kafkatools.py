"""Broker-side helpers for the benchmark: pre-loading topics, watching a group's commits, the ceilings."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from bench.payloads import Record
from shared.kafka import build_consumer
from shared.topics import Topics
from shared.worker import last_offsets


class BenchError(RuntimeError):
    pass


def producer(bootstrap: str, **overrides: object) -> AIOKafkaProducer:
    """A producer configured like ingest's `KafkaPublisher` (idempotent, acks=all, linger 2 ms)."""
    options: dict[str, object] = {"enable_idempotence": True, "acks": "all", "linger_ms": 2,
                                  "request_timeout_ms": 10_000, "max_request_size": 1_048_576}
    options.update(overrides)
    return AIOKafkaProducer(bootstrap_servers=bootstrap, **options)


async def preload(bootstrap: str, topic: str, records: Sequence[Record], transactional_id: str | None = None) -> None:
    """Put `records` on `topic`; untimed. With a `transactional_id`, in one transaction: a read-committed
    consumer then sees them all at once, when it commits (its marker follows the records' offsets, so the
    offsets that consumer commits still count records exactly)."""
    prod = producer(bootstrap, linger_ms=20, max_batch_size=262_144,
                    **({"transactional_id": transactional_id} if transactional_id else {}))
    await prod.start()
    try:
        async with prod.transaction() if transactional_id else contextlib.nullcontext():
            futures = [await prod.send(topic, value=r.value, key=r.key, headers=r.headers) for r in records]
            await asyncio.gather(*futures)
    finally:
        await prod.stop()


async def produce_all(bootstrap: str, topic: str, records: Sequence[Record]) -> float:
    """The raw producer ceiling: send every record, wait for every ack; seconds from first send to last ack."""
    prod = producer(bootstrap)
    await prod.start()
    try:
        await prod.send_and_wait(topic, value=b"{}", key=b"warm-up")  # metadata and connection, off the clock
        start = time.perf_counter()
        futures = [await prod.send(topic, value=r.value, key=r.key, headers=r.headers) for r in records]
        await asyncio.gather(*futures)
        return time.perf_counter() - start
    finally:
        await prod.stop()


async def send_and_wait_concurrently(bootstrap: str, topic: str, records: Sequence[Record],
                                     concurrency: int) -> float:
    """`concurrency` tasks each sending one record at a time and waiting for its ack (what single POSTs do)."""
    prod = producer(bootstrap)
    await prod.start()
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(records):
            r = records[position]
            position += 1
            await prod.send_and_wait(topic, value=r.value, key=r.key, headers=r.headers)

    try:
        await prod.send_and_wait(topic, value=b"{}", key=b"warm-up")
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start
    finally:
        await prod.stop()


class CpuProbe:
    """CPU seconds used so far by named processes (utime + stime from /proc/<pid>/stat)."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids

    def snapshot(self) -> dict[str, float]:
        out = {}
        for name, pid in self.pids.items():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            out[name] = (int(fields[11]) + int(fields[12])) / self.TICK
        return out

    @staticmethod
    def share(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
        """Each process's CPU use between two snapshots, as a fraction of one core."""
        return {name: round((after[name] - before[name]) / seconds, 3) for name in after
                if name in before and seconds > 0}


@dataclass
class Progress:
    """When a group's committed offsets first moved and when they reached the target."""

    target: int
    first_count: int
    first_at: float
    done_at: float
    cpu: dict[str, float] = field(default_factory=dict)
    """Each probed process's CPU use between the two, as a fraction of one core."""

    @property
    def rate(self) -> float:
        """Records per second after the first commit (start-up and the first batch are off the clock)."""
        seconds = self.done_at - self.first_at
        return (self.target - self.first_count) / seconds if seconds > 0 else float("nan")


async def watch_group(bootstrap: str, group: str, topic: str, target: int, timeout: float,
                      proc: subprocess.Popen[bytes] | None = None, interval: float = 0.02,
                      probe: CpuProbe | None = None,
                      since: tuple[int, float, dict[str, float]] | None = None) -> Progress:
    """Poll `group`'s committed offsets on `topic` until they add up to `target`.

    The clock starts at the first commit seen (start-up and the first batch off the clock), or at `since`:
    (records committed then, perf_counter time, CPU snapshot)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
    await admin.start()
    coordinator: int | None = None
    first: tuple[int, float] | None = (since[0], since[1]) if since else None
    cpu_first: dict[str, float] = since[2] if since else {}
    deadline = time.perf_counter() + timeout
    total = 0
    try:
        while True:
            now = time.perf_counter()
            if now > deadline:
                raise BenchError(f"group {group} committed {total} of {target} records in {timeout:.0f}s")
            if proc is not None and proc.poll() is not None:
                raise BenchError(f"the process consuming as {group} exited with code {proc.returncode}")
            try:
                if coordinator is None:
                    coordinator = await admin.find_coordinator(group)
                offsets = await admin.list_consumer_group_offsets(group, group_coordinator_id=coordinator)
            except KafkaError:
                coordinator = None
                await asyncio.sleep(0.2)
                continue
            now = time.perf_counter()
            total = sum(max(0, om.offset) for tp, om in offsets.items() if tp.topic == topic)
            if total > 0 and first is None:
                first = (total, now)
                cpu_first = probe.snapshot() if probe else {}
            if total >= target:
                assert first is not None
                if first[0] >= target:
                    raise BenchError(f"{group} committed all {target} records at once; use more records than "
                                     "one batch holds")
                cpu = CpuProbe.share(cpu_first, probe.snapshot(), now - first[1]) if probe else {}
                return Progress(target, first[0], first[1], now, cpu)
            await asyncio.sleep(interval)
    finally:
        await admin.close()


async def passthrough(bootstrap: str, topics: Topics, group: str, transactional_id: str, max_batch: int,
                      target: int, timing: list[float] | None = None) -> None:
    """validate's loop without validation: consume received, copy each record to validated, offsets in the
    same transaction. Same consumer (shared.kafka.build_consumer), transactions (two producers in turn),
    batch size and gathering.
    Appends each batch's seconds (transaction begin to commit) to `timing`."""
    from services.validate.settings import ValidateSettings
    from services.validate.transactions import Transactions

    settings = ValidateSettings()
    consumer = build_consumer(bootstrap, [topics.received], group, max_poll_records=max_batch,
                              gather_ms=settings.gather_ms, gather_bytes=settings.gather_bytes)
    transactions = Transactions(bootstrap, transactional_id)
    await transactions.start()
    await consumer.start()
    done = 0
    try:
        while done < target:
            batch = await consumer.getmany(timeout_ms=500, max_records=max_batch)
            if not batch:
                continue
            began = time.perf_counter()
            async with transactions.transaction() as prod:
                sent = [await prod.send(topics.validated, value=r.value, key=r.key, headers=list(r.headers))
                        for records in batch.values() for r in records]
                await asyncio.gather(*sent)
                await prod.send_offsets_to_transaction(last_offsets(batch), group)
            if timing is not None:
                timing.append(time.perf_counter() - began)
            done += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()
        await transactions.close()
