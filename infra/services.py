"""Starting the three services as processes, for `make up`, the tests and the benchmark."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx

from infra.proc import ROOT, spawn, wait_until

SERVICES = ("ingest", "validate", "aggregate")
DEFAULT_PORTS = {"ingest": 8000, "validate": 8001, "aggregate": 8002}


@dataclass
class Service:
    name: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start(name: str, port: int, log: Path, env: dict[str, str]) -> Service:
    """Start `services.<name>.app` on `port`; returns at once (see `wait_ready`)."""
    prefix = name.upper()
    service = Service(name, port, log)
    service.proc = spawn([sys.executable, "-m", f"services.{name}.app"], log,
                         env={**env, f"{prefix}_PORT": str(port), f"{prefix}_HOST": "127.0.0.1"}, cwd=ROOT)
    return service


def is_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def is_live(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/live", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


def wait_ready(service: Service, timeout: float = 90.0) -> None:
    wait_until(lambda: is_ready(service.url), timeout, f"{service.name} on {service.url}", interval=0.25,
               proc=service.proc, log=service.log)
