"""Liveness: /health/live answers 503 naming a consumer loop that stopped making progress, 200 while it moves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
from fastapi import FastAPI

from shared.health import health_router
from shared.lifecycle import LifecycleSettings
from shared.liveness import Heartbeat
from shared.worker import Batch
from tests.unit.test_worker_resilience import TP, Worker, batch

DEADLINE = LifecycleSettings(retry_budget_s=10, retry_max_delay_s=0.01, batch_timeout_s=0.1, stall_grace_s=0.1,
                             probe_interval_s=60)
"""A step may take 0.1 s, plus 0.1 s of grace: past 0.2 s the loop counts as stuck."""


@dataclass
class StuckWorker(Worker):
    """Its second batch never finishes, whatever its deadline says: it swallows the cancellation."""

    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def process(self, batch: Batch) -> None:
        self.attempts += 1
        self.progress.set()
        if batch[TP][0].offset == 0:
            self.done.append(0)
            return
        while not self.released.is_set():
            try:
                await self.released.wait()
            except asyncio.CancelledError:  # what a call that ignores its timeout does
                continue


@asynccontextmanager
async def live_client(worker: Worker) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(health_router(dict, service="test", probe_interval=60, loops=lambda: [worker.heartbeat]))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def answers_until(client: httpx.AsyncClient, condition: Callable[[], bool], timeout: float = 5.0) -> list[int]:
    """The status of /health/live asked every 20 ms until `condition` holds (fails after `timeout`)."""
    statuses: list[int] = []
    async with asyncio.timeout(timeout):
        while not condition():
            statuses.append((await client.get("/health/live")).status_code)
            await asyncio.sleep(0.02)
    return statuses


def test_a_heartbeat_is_overdue_only_past_its_step_deadline_and_grace() -> None:
    now = [100.0]
    heartbeat = Heartbeat("loop", grace_s=2, clock=lambda: now[0])
    assert heartbeat.overdue() == 0  # not started: resting
    heartbeat.step(within=3)
    now[0] = 105.0
    assert heartbeat.overdue() == 0
    now[0] = 105.5
    assert heartbeat.overdue() == 0.5
    heartbeat.step(within=3)  # the next step starts: on time again
    assert heartbeat.overdue() == 0
    now[0] = 200.0
    heartbeat.rest()
    assert heartbeat.overdue() == 0


async def test_a_consumer_loop_stuck_in_a_batch_past_its_deadline_is_not_live() -> None:
    worker = StuckWorker(consumer_batches=[batch(0), batch(3)], settings=DEADLINE, name="test-stuck")
    await worker.start()
    try:
        async with live_client(worker) as client:
            assert (await client.get("/health/live")).status_code == 200
            await worker.until(lambda: worker.attempts == 2)
            loop = asyncio.get_running_loop()
            stuck_since = loop.time()
            answers = await answers_until(
                client, lambda: worker.heartbeat.overdue() > 0 and loop.time() - stuck_since > 0.5)
            response = await client.get("/health/live")
            assert response.status_code == 503
            assert response.json() == {"status": "stuck", "stuck": [worker.heartbeat.name]}
            assert worker.heartbeat.name.endswith("consumer loop")
            assert 200 in answers  # live while the batch was within its deadline
            assert worker.done == [0] and worker.attempts == 2  # the timeout did not get it to try again
            worker.released.set()
            await answers_until(client, lambda: worker.heartbeat.overdue() == 0)
            assert (await client.get("/health/live")).status_code == 200
    finally:
        worker.released.set()
        await worker.stop()


async def test_a_loop_that_keeps_polling_retrying_and_finishing_batches_stays_live() -> None:
    # Slow batches within their deadline, batches retried after store errors, idle polls: each
    # step is shorter than the deadline, the whole run several times longer.
    worker = Worker(consumer_batches=[batch(offset) for offset in range(0, 60, 3)], failures=5, hang_s=0.08,
                    settings=DEADLINE, name="test-progressing")
    await worker.start()
    try:
        async with live_client(worker) as client:
            loop = asyncio.get_running_loop()
            started = loop.time()
            answers = await answers_until(client, lambda: len(worker.done) == 20 and loop.time() - started > 1.0)
    finally:
        await worker.stop()
    assert len(answers) > 20
    assert set(answers) == {200}
    assert worker.attempts == 25


async def test_a_stopped_loop_is_not_stuck() -> None:
    worker = Worker(consumer_batches=[batch(0)], settings=DEADLINE, name="test-stopped")
    await worker.start()
    await worker.until(lambda: worker.done == [0])
    await worker.stop()
    async with live_client(worker) as client:
        await answers_until(client, lambda: True)
        assert (await client.get("/health/live")).status_code == 200
        assert worker.heartbeat.overdue() == 0
