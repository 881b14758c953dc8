"""A service process's lifecycle: the bounds on retries and shutdown, and the stop request SIGTERM makes.

A stop request is process-wide because a signal is: `shared.service.run` records SIGTERM/SIGINT
here, and code that waits during start-up or between retries (topic set-up, the first broker
connection, a batch that keeps failing) sees it at once instead of finishing its retries first.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import DmpError

T = TypeVar("T")

_POLL_S = 0.1
_stop = threading.Event()


class LifecycleSettings(BaseSettings):
    """How long a service keeps trying before it gives up, and how long it may take to stop (`DMP_` prefix)."""

    model_config = SettingsConfigDict(env_prefix="DMP_", env_file=".env", extra="ignore")

    retry_budget_s: float = Field(120.0, gt=0, description="How long a consumer retries one batch that fails on the "
                                                           "broker or store before it exits non-zero.")
    batch_timeout_s: float = Field(60.0, gt=0, description="Longest one attempt at a batch may take (a paused store "
                                                           "holds requests without failing them).")
    retry_max_delay_s: float = Field(8.0, gt=0, description="Longest pause between two attempts at a batch.")
    drain_timeout_s: float = Field(15.0, gt=0, description="On SIGTERM: time for in-flight HTTP requests, and then "
                                                           "for the batch in hand, to finish.")
    leave_timeout_s: float = Field(5.0, gt=0, description="On SIGTERM: longest wait for the broker to let a "
                                                          "consumer leave its group (a broker that is gone never "
                                                          "answers; the group then notices by the session timeout).")
    shutdown_timeout_s: float = Field(50.0, gt=0, description="On SIGTERM: the process exits (non-zero) after this "
                                                              "long even if something hangs.")
    stall_grace_s: float = Field(10.0, gt=0, description="How long past its deadline a step of a consumer loop (a "
                                                         "poll or an attempt at a batch: `batch_timeout_s`; a pause "
                                                         "between attempts) may run before /health/live answers 503.")
    probe_interval_s: float = Field(2.0, gt=0, description="How often connection state and consumer lag are "
                                                           "refreshed for /metrics.")


class StopRequested(DmpError):
    """The process was asked to stop while it was still starting or retrying."""


def request_stop() -> None:
    """Record a stop request (safe to call from a signal handler)."""
    _stop.set()


def stop_requested() -> bool:
    return _stop.is_set()


def clear_stop_request() -> None:
    """Forget a stop request; for tests that run several lifecycles in one process."""
    _stop.clear()


async def sleep_unless_stopped(delay: float) -> bool:
    """Sleep up to `delay` seconds; return True (early) if a stop was requested."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + delay
    while not _stop.is_set():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        await asyncio.sleep(min(_POLL_S, remaining))
    return True


async def unless_stopped(awaitable: Awaitable[T], what: str) -> T:
    """Await `awaitable`, cancelling it and raising StopRequested as soon as a stop is requested."""
    if _stop.is_set():
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        raise StopRequested(f"stop requested before {what}")
    task = asyncio.ensure_future(awaitable)
    try:
        while not task.done():
            await asyncio.wait([task], timeout=_POLL_S)
            if _stop.is_set() and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                raise StopRequested(f"stop requested during {what}")
        return task.result()
    finally:
        if not task.done():  # we were cancelled ourselves
            task.cancel()
