"""`python -m infra.supervise`: restarts what `make up` started when it dies, until `make down`.

`make up` starts it in the background (pid in var/run/supervise.pid, log in var/log/supervise.log).
Every second it looks at each pid file in var/run/: a service, or the local broker or store that
`make up` started, whose process is gone is started again after a backoff that doubles with each
crash in a row (1 s, 2 s, 4 s … 60 s) and starts over once the process has run for a minute.
A service that exits non-zero because its broker or store stayed away is restarted this way too.
Docker users get the same from the compose file's restart policies.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType

from infra import services, stack
from infra.proc import InfraError, read_pid

WATCHED = (*services.SERVICES, "kafka", "store")


@dataclass
class Backoff:
    """When a process that died may be started again."""

    initial: float = 1.0
    cap: float = 60.0
    stable_after: float = 60.0
    crashes: int = 0
    started_at: float | None = None
    due: float | None = None

    def died(self, now: float) -> float:
        """Record a death noticed at `now`; returns the delay before the next start."""
        if self.started_at is not None and now - self.started_at >= self.stable_after:
            self.crashes = 0
        self.crashes += 1
        self.started_at = None
        delay = min(self.cap, self.initial * 2.0 ** (self.crashes - 1))
        self.due = now + delay
        return delay

    def restarted(self, now: float) -> None:
        self.started_at = now
        self.due = None


@dataclass
class Supervisor:
    env: dict[str, str]
    backoff: dict[str, Backoff] = field(default_factory=lambda: {name: Backoff() for name in WATCHED})
    stopping: bool = False

    def alive(self, name: str) -> bool:
        return read_pid(stack.pidfile(name)) is not None

    def sweep(self, now: float) -> None:
        """Restart whatever died and is due; skip the round while `make up`/`make down` hold the lock."""
        reap()
        with stack.stack_lock(wait=False) as locked:
            if not locked:
                return
            for name in WATCHED:
                if self.stopping:
                    return
                if not stack.pidfile(name).exists():  # not ours to run (external) or stopped on purpose
                    continue
                backoff = self.backoff[name]
                if self.alive(name):
                    if backoff.started_at is None:
                        backoff.restarted(now)
                    continue
                if backoff.due is None:
                    delay = backoff.died(now)
                    say(f"{name} is not running; starting it in {delay:.0f}s (crash {backoff.crashes} in a row)")
                if now >= (backoff.due or now):
                    self.restart(name, backoff, now)

    def restart(self, name: str, backoff: Backoff, now: float) -> None:
        try:
            if name == "kafka":
                outcome = stack.up_broker(self.env["KAFKA_BOOTSTRAP_SERVERS"])
            elif name == "store":
                outcome = stack.up_store(self.env["MONGODB_URL"])
            else:
                svc = stack.start_service(name, self.env)
                assert svc.proc is not None
                outcome = f"started (pid {svc.proc.pid})"
        except InfraError as exc:
            backoff.due = None  # counts as another crash on the next round
            say(f"could not start {name}: {exc}")
            return
        backoff.restarted(now)
        say(f"{name}: {outcome}")

    def handle_stop(self, sig: int, frame: FrameType | None) -> None:
        self.stopping = True


def reap() -> None:
    """Collect the exit status of every child that ended, so that a dead process does not look alive."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def say(message: str) -> None:
    print(f"{datetime.now(UTC).isoformat(timespec='seconds')} {message}", flush=True)


def main() -> None:
    supervisor = Supervisor(stack._env())
    signal.signal(signal.SIGTERM, supervisor.handle_stop)
    signal.signal(signal.SIGINT, supervisor.handle_stop)
    say(f"supervising {', '.join(WATCHED)}")
    while not supervisor.stopping:
        supervisor.sweep(time.monotonic())
        deadline = time.monotonic() + 1.0
        while not supervisor.stopping and time.monotonic() < deadline:
            time.sleep(0.1)
    say("stopped; the processes keep running until `make down`")
    sys.exit(0)


if __name__ == "__main__":
    main()
