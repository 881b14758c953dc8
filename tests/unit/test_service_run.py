"""Running a service process (shared/service.py): what happens between building the app and serving it."""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from infra.proc import free_port
from shared import service
from shared.settings import ServiceSettings
from tests.conftest import eventually

ROOT = Path(__file__).resolve().parents[2]


def test_what_start_up_built_is_kept_out_of_the_collectors_full_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frozen, the start-up heap is not walked by every full collection."""
    built: list[FastAPI] = []

    def build(_: service.FatalHandler) -> FastAPI:
        built.append(FastAPI())
        return built[-1]

    def serve(self: service._Server) -> None:  # instead of uvicorn serving: up and stopped at once
        self.started = True

    monkeypatch.setattr(service._Server, "run", serve)
    monkeypatch.setattr(service, "configure_logging", lambda *_: None)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    gc.unfreeze()
    try:
        service.run("test", ServiceSettings(), build)
        assert gc.get_freeze_count() > 0
        assert not any(o is built[0] for o in gc.get_objects())  # frozen: in no generation the collector walks
    finally:
        gc.unfreeze()
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


HANGS_ON_STOP = """
import asyncio, contextlib, sys
from fastapi import FastAPI
from shared import service
from shared.settings import ServiceSettings

@contextlib.asynccontextmanager
async def lifespan(app):
    yield
    print("stopping", flush=True)
    await asyncio.Event().wait()  # a stop that never finishes

service.run("hung", ServiceSettings(port=int(sys.argv[1])), lambda _: FastAPI(lifespan=lifespan))
"""


def test_a_stop_that_overruns_the_shutdown_deadline_exits_with_70(tmp_path: Path) -> None:
    """The documented code for "the deadline cut a hung stop short" (docs/operations.md), after the deadline."""
    port = free_port()
    env = {**os.environ, "DMP_SHUTDOWN_TIMEOUT_S": "1", "DMP_DRAIN_TIMEOUT_S": "1"}
    with subprocess.Popen([sys.executable, "-c", HANGS_ON_STOP, str(port)], env=env, cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            eventually(lambda: _answers(port), timeout=30, what="the service to serve")
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
            took = time.monotonic() - signalled
        finally:
            proc.kill()
    assert proc.returncode == 70, output
    assert took >= 1.0


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
