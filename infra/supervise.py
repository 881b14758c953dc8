"""`python -m infra.supervise`: restarts what `make up` started when it dies or hangs, until `make down`.

`make up` starts it in the background (pid in var/run/supervise.pid, log in var/log/supervise.log).
Every second it looks at each pid file in var/run/: a service, or the local broker or store that
`make up` started, whose process is gone is started again after a backoff that doubles with each
crash in a row (1 s, 2 s, 4 s … 60 s) and starts over once the process has run for a minute.
A service that exits non-zero because its broker or store stayed away is restarted this way too.

A service can also hang without dying: a consumer loop stuck past its deadline (its
`/health/live` answers 503), or a process that does not answer at all (a blocked event loop, a
SIGSTOP). Every `DMP_SUPERVISE_PROBE_INTERVAL_S` each service's `/health/live` is asked, with a
timeout; after `DMP_SUPERVISE_PROBE_FAILURES` failures in a row the service gets SIGTERM (and
SIGCONT, so a stopped one sees it), SIGKILL if it is still there `DMP_SUPERVISE_KILL_AFTER_S`
later, and is then started again as a dead one would be. A refused connection is not a failure:
the service is starting (it opens its port once its consumer has started) or stopping.
Docker users get the same from the compose file's restart policies and healthchecks.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra import services, stack
from infra.liveness import Liveness, probe_live, signal_group, stop_hung
from infra.proc import InfraError, pid_alive, read_pid

WATCHED = (*services.SERVICES, "kafka", "store")


class SuperviseSettings(BaseSettings):
    """When a service that is running counts as hung (`DMP_SUPERVISE_` prefix)."""

    model_config = SettingsConfigDict(env_prefix="DMP_SUPERVISE_", extra="ignore")

    probe_interval_s: float = Field(5.0, gt=0, description="How often each service's /health/live is asked.")
    probe_timeout_s: float = Field(3.0, gt=0, description="Longest wait for its answer; no answer is a failure.")
    probe_failures: int = Field(3, ge=1, description="Failed probes in a row after which the service is restarted.")
    kill_after_s: float = Field(10.0, gt=0, description="Time a hung service gets to stop after SIGTERM "
                                                        "before SIGKILL.")


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
class Probed:
    """The liveness probes of one running service: its count, the probe in flight, the stop under way."""

    liveness: Liveness
    pid: int
    pending: Future[bool | None] | None = None
    due: float = 0.0
    kill_at: float | None = None


@dataclass
class Supervisor:
    env: dict[str, str]
    settings: SuperviseSettings = field(default_factory=SuperviseSettings)
    backoff: dict[str, Backoff] = field(default_factory=lambda: {name: Backoff() for name in WATCHED})
    probed: dict[str, Probed] = field(default_factory=dict)
    probes: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(len(services.SERVICES),
                                                                                  thread_name_prefix="probe"))
    stopping: bool = False

    def sweep(self, now: float) -> None:
        """Restart whatever died or hung and is due; skip the round while `make up`/`make down` hold the lock."""
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
                pid = read_pid(stack.pidfile(name))
                if pid is not None:
                    if backoff.started_at is None:
                        backoff.restarted(now)
                    if name in services.SERVICES:
                        self.watch(name, pid, now)
                    continue
                self.probed.pop(name, None)
                if backoff.due is None:
                    delay = backoff.died(now)
                    say(f"{name} is not running; starting it in {delay:.0f}s (crash {backoff.crashes} in a row)")
                if now >= (backoff.due or now):
                    self.restart(name, backoff, now)

    def watch(self, name: str, pid: int, now: float) -> None:
        """Probe a running service's liveness; stop it once it has failed enough probes in a row."""
        state = self.probed.get(name)
        if state is None or state.pid != pid:  # a new process: its own count
            state = self.probed[name] = Probed(Liveness(self.settings.probe_failures), pid, due=now)
        if state.kill_at is not None:
            if now >= state.kill_at and pid_alive(pid):
                say(f"{name} (pid {pid}) is still there {self.settings.kill_after_s:.0f}s after SIGTERM; SIGKILL")
                signal_group(pid, signal.SIGKILL)
                state.kill_at = now + self.settings.kill_after_s
            return
        if state.pending is not None and state.pending.done():
            outcome, state.pending = state.pending.result(), None
            if state.liveness.record(outcome):
                say(f"{name} (pid {pid}) failed its liveness probe {state.liveness.failures} times in a row: "
                    "hung; stopping it to start it again")
                stop_hung(pid)
                state.kill_at = now + self.settings.kill_after_s
                return
        if state.pending is None and now >= state.due:
            url = f"http://127.0.0.1:{stack.service_port(name)}"
            state.pending = self.probes.submit(probe_live, url, self.settings.probe_timeout_s)
            state.due = now + self.settings.probe_interval_s

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
    supervisor.probes.shutdown(wait=False, cancel_futures=True)
    say("stopped; the processes keep running until `make down`")
    sys.exit(0)


if __name__ == "__main__":
    main()
