"""A service that hangs without dying (SIGSTOP under load) is found by its liveness probe and restarted by the
supervisor `make up` starts; every acknowledged submission is then in the views exactly once."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from infra import services
from infra.proc import ROOT, read_pid, spawn, stop_pid
from tests.conftest import eventually
from tests.faults.conftest import SHUTDOWN_TIMEOUT_S, FaultStack, Timeline, verify_exactly_once, wait_ready
from tests.faults.load import Load

pytestmark = pytest.mark.faults

SUPERVISED = ("validate", "aggregate")
"""Ingest reaches the broker through the tests' proxy, so it stays the fixture's own process."""
PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 1.0
PROBE_FAILURES = 3
KILL_AFTER_S = 5.0


@dataclass
class RunningSupervisor:
    """`python -m infra.supervise` watching the stack's validate and aggregate through a stack folder of its own."""

    folder: Path
    pid: int

    def pid_of(self, name: str) -> int | None:
        return read_pid(self.folder / "run" / f"{name}.pid")

    def log(self) -> str:
        log = self.folder / "log" / "supervise.log"
        return log.read_text(errors="replace") if log.exists() else ""


@pytest.fixture
def supervisor(fault_stack: FaultStack) -> Iterator[RunningSupervisor]:
    stack = fault_stack
    folder = stack.base / "supervised"
    (folder / "run").mkdir(parents=True, exist_ok=True)
    own = {name: stack.proc(name).pid for name in SUPERVISED}
    for name, pid in own.items():  # the pid files `make up` would have written
        (folder / "run" / f"{name}.pid").write_text(str(pid))
    env = {**stack.env("validate"), "DMP_STACK_DIR": str(folder),
           **{f"{name.upper()}_PORT": str(port) for name, port in stack.ports.items()},
           "DMP_SUPERVISE_PROBE_INTERVAL_S": str(PROBE_INTERVAL_S),
           "DMP_SUPERVISE_PROBE_TIMEOUT_S": str(PROBE_TIMEOUT_S),
           "DMP_SUPERVISE_PROBE_FAILURES": str(PROBE_FAILURES), "DMP_SUPERVISE_KILL_AFTER_S": str(KILL_AFTER_S)}
    proc = spawn([sys.executable, "-m", "infra.supervise"], folder / "log" / "supervise.log", env=env, cwd=ROOT)
    running = RunningSupervisor(folder, proc.pid)
    try:
        yield running
    finally:
        stop_pid(proc.pid, timeout=30)
        proc.wait(timeout=5)
        for name in SUPERVISED:  # what it started is not the fixture's to stop
            pid = running.pid_of(name)
            if pid is not None and pid != own[name]:
                stop_pid(pid, timeout=SHUTDOWN_TIMEOUT_S)


def test_a_service_stopped_under_load_fails_liveness_is_restarted_by_the_supervisor_and_loses_nothing(
        fault_stack: FaultStack, supervisor: RunningSupervisor) -> None:
    stack = fault_stack
    timeline = Timeline("hung services")
    load = Load(url=lambda: stack.url("ingest"), headers=stack.officer, mix=True, year=2019).start()
    restarts: dict[str, int] = {}
    try:
        load.wait_for_acks(40, 90, "warm-up")
        timeline.mark("warm-up")
        for victim in SUPERVISED:
            hung = stack.proc(victim)
            assert supervisor.pid_of(victim) == hung.pid
            os.kill(hung.pid, signal.SIGSTOP)
            timeline.mark(f"SIGSTOP {victim}")
            # The hung process must go (reaped here: it is this test's child), and a new one take its place.
            eventually(functools.partial(exited, hung), timeout=60, interval=0.5,
                       what=f"the supervisor stopping the hung {victim}")
            timeline.mark(f"hung {victim} stopped (exit {hung.returncode})")
            restarted = eventually(functools.partial(replaced, supervisor, victim, hung.pid), timeout=60,
                                   what=f"the supervisor starting {victim} again")
            stack.procs[victim] = services.Service(victim, stack.ports[victim], stack.base / f"{victim}.log")
            wait_ready(stack, victim, 120, f"the restarted {victim} ready")
            restarts[victim] = restarted
            timeline.mark(f"{victim} restarted (pid {restarted}) and ready")
            log = supervisor.log()
            assert f"{victim} (pid {hung.pid}) failed its liveness probe {PROBE_FAILURES} times in a row" in log, log
            load.wait_for_acks(30, 90, f"after {victim} was restarted")
            timeline.mark("acks again")
    finally:
        load.stop()
    timeline.mark("load stopped")
    figures = verify_exactly_once(stack, load, "hung services")
    timeline.mark("views exact")
    timeline.report()
    assert not load.unexpected, load.unexpected[:5]
    assert {name: supervisor.pid_of(name) for name in SUPERVISED} == restarts, "a live service was restarted"
    assert figures.duplicates == 0 and figures.missing == 0
    assert figures.in_views == figures.expected_in_views > 0


def exited(proc: subprocess.Popen[bytes]) -> bool:
    return proc.poll() is not None


def replaced(supervisor: RunningSupervisor, name: str, old_pid: int) -> int | None:
    """The pid the supervisor runs `name` as, once it is not `old_pid`."""
    pid: int | None = supervisor.pid_of(name)
    return pid if pid is not None and pid != old_pid else None
