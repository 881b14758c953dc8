"""Whether a loop still makes progress: each step it starts has a deadline, and a step past it means stuck.

A consumer loop that waits forever (a call that ignores its timeout, a lock never released) keeps
its process alive and its port open, so only the loop itself can tell. `GET /health/live` answers
503 while a loop is overdue, and a supervisor (infra/supervise.py, Kubernetes' liveness probe)
restarts the process. An event loop that is blocked does not answer at all: the probe's own
timeout covers that.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Heartbeat:
    """When the current step of a loop must be over; `rest()` while the loop is not running."""

    def __init__(self, name: str, grace_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.grace_s = grace_s
        self._clock = clock
        self._due: float | None = None

    def step(self, within: float) -> None:
        """A step starts that must be over within `within` seconds (plus the grace)."""
        self._due = self._clock() + within + self.grace_s

    def rest(self) -> None:
        """The loop is not running (not started yet, or stopped): it cannot be stuck."""
        self._due = None

    def overdue(self) -> float:
        """Seconds past the current step's deadline; 0 when on time or resting."""
        return 0.0 if self._due is None else max(0.0, self._clock() - self._due)
