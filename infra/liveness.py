"""Asking a service's `/health/live`, and counting failures in a row: for the supervisor and for containers.

`python -m infra.liveness --port 8001` is the compose files' healthcheck. Docker only marks a
container unhealthy, it does not restart it; so this check keeps its count of failures in a row
in a file, and at `--failures` it sends SIGTERM (and SIGCONT) to the service, PID 1 of its
container: the service stops within its shutdown deadline and the restart policy starts it again.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx


def probe_live(url: str, timeout: float) -> bool | None:
    """True when `url`/health/live answers 200; False when it answers otherwise or not within `timeout`;
    None when the connection is refused (nothing serves the port: starting or stopping)."""
    try:
        return httpx.get(f"{url}/health/live", timeout=timeout).status_code == 200
    except httpx.ConnectError:
        return None
    except httpx.HTTPError:  # a timeout above all: a stopped process's port accepts and never answers
        return False


@dataclass
class Liveness:
    """Failed liveness probes in a row of one running service."""

    threshold: int
    failures: int = 0

    def record(self, outcome: bool | None) -> bool:
        """Count one probe's outcome; True when the service has now failed `threshold` probes in a row."""
        if outcome is None:  # refused: neither a failure nor a success
            return False
        self.failures = 0 if outcome else self.failures + 1
        return self.failures >= self.threshold


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the process group `pid` leads (each service `make up` starts runs in a session of its own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def stop_hung(pid: int, send: Callable[[int, signal.Signals], None] = signal_group) -> None:
    """SIGTERM, then SIGCONT so that a stopped process handles it."""
    send(pid, signal.SIGTERM)
    send(pid, signal.SIGCONT)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.liveness", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds to wait for the answer")
    parser.add_argument("--failures", type=int, default=3, help="failures in a row before the service is stopped")
    parser.add_argument("--pid", type=int, default=1, help="the service's process (PID 1 in its container)")
    parser.add_argument("--count-file", type=Path, default=Path("/tmp/dmp-liveness-failures"))  # noqa: S108
    args = parser.parse_args()
    try:
        failures = int(args.count_file.read_text())
    except (OSError, ValueError):  # the first check, or a file cut short
        failures = 0
    liveness = Liveness(args.failures, failures)
    outcome = probe_live(f"http://127.0.0.1:{args.port}", args.timeout)
    if liveness.record(outcome):
        print(f"/health/live failed {liveness.failures} times in a row: stopping pid {args.pid} to be restarted")
        with contextlib.suppress(ProcessLookupError):
            stop_hung(args.pid, os.kill)
        liveness.failures = 0
    args.count_file.write_text(str(liveness.failures))
    sys.exit(0 if outcome else 1)


if __name__ == "__main__":
    main()
