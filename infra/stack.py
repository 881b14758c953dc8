"""`make up` / `make down` / `make status`: the local stack in the background, healed on every `up`.

Broker and store: if the configured ones already answer, they are used as they are; otherwise
the local ones are started under var/. Services: each one that is not answering is (re)started.
Then a supervisor (`python -m infra.supervise`) keeps restarting whatever of that dies, until
`make down`. State lives in var/run/*.pid, logs in var/log/.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from infra import kafka, services, store
from infra.proc import ROOT, VAR, InfraError, pid_alive, read_pid, spawn, stop_pid, wait_until

STATE = Path(os.environ.get("DMP_STACK_DIR", VAR))
"""Where the pid files (run/) and the services' logs (log/) are kept: var/ unless DMP_STACK_DIR names another."""
RUN = STATE / "run"
LOGS = STATE / "log"
SUPERVISOR = "supervise"


def _env() -> dict[str, str]:
    local = {name: f"http://127.0.0.1:{service_port(name)}" for name in services.SERVICES}
    return {
        "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        "MONGODB_URL": os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/?directConnection=true"),
        "MONGODB_DATABASE": os.environ.get("MONGODB_DATABASE", "dmp"),
        # The console (on aggregate) calls ingest and validate from the browser: they must know its origin.
        "DMP_CONSOLE_ORIGINS": os.environ.get("DMP_CONSOLE_ORIGINS", json.dumps(
            [local["aggregate"], local["aggregate"].replace("127.0.0.1", "localhost")])),
        "AGGREGATE_CONSOLE_INGEST_URL": os.environ.get("AGGREGATE_CONSOLE_INGEST_URL", local["ingest"]),
        "AGGREGATE_CONSOLE_VALIDATE_URL": os.environ.get("AGGREGATE_CONSOLE_VALIDATE_URL", local["validate"]),
    }


def pidfile(name: str) -> Path:
    return RUN / f"{name}.pid"


@contextlib.contextmanager
def stack_lock(wait: bool = True) -> Iterator[bool]:
    """Hold var/run/stack.lock (yields False at once if `wait` is False and someone else holds it).

    `make up`, `make down` and the supervisor's restarts take it, so they never start one service twice.
    """
    RUN.mkdir(parents=True, exist_ok=True)
    with (RUN / "stack.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def service_port(name: str) -> int:
    return int(os.environ.get(f"{name.upper()}_PORT", services.DEFAULT_PORTS[name]))


def start_service(name: str, env: dict[str, str]) -> services.Service:
    """Start one service in the background and record its pid; returns at once."""
    svc = services.start(name, service_port(name), LOGS / f"{name}.log", env)
    assert svc.proc is not None
    pidfile(name).write_text(str(svc.proc.pid))
    return svc


def _port_of(address: str, default: int) -> int:
    parsed = urlparse(address if "://" in address else f"tcp://{address.split(',')[0]}")
    return parsed.port or default


def up_broker(bootstrap: str) -> str:
    if kafka.metadata_ok(bootstrap):
        return "running" if read_pid(pidfile("kafka")) else "external"
    port = _port_of(bootstrap, 9092)
    broker = kafka.start(VAR / "kafka", port=port, controller_port=port + 1)
    broker.log.parent.mkdir(parents=True, exist_ok=True)
    assert broker.pid is not None
    pidfile("kafka").write_text(str(broker.pid))
    return f"started (pid {broker.pid}, log {broker.log})"


def up_store(url: str) -> str:
    if store.ping(url):
        return "running" if read_pid(pidfile("store")) else "external"
    local = store.start(VAR / "store", port=_port_of(url, 27017))
    assert local.pid is not None
    pidfile("store").write_text(str(local.pid))
    return f"started {local.engine} (pid {local.pid}, log {local.log})"


def up_supervisor() -> str:
    """Start the supervisor unless it runs already."""
    pid = read_pid(pidfile(SUPERVISOR))
    if pid:
        return f"running (pid {pid})"
    proc = spawn([sys.executable, "-m", "infra.supervise"], LOGS / "supervise.log", cwd=ROOT)
    pidfile(SUPERVISOR).write_text(str(proc.pid))
    return f"started (pid {proc.pid}, log {LOGS / 'supervise.log'})"


def up() -> int:
    RUN.mkdir(parents=True, exist_ok=True)
    env = _env()
    started = time.monotonic()
    try:
        with stack_lock():
            _up_locked(env)
    except InfraError as exc:
        print(f"\nmake up failed: {exc}", file=sys.stderr)
        return 1
    print(f"""
All services ready in {time.monotonic() - started:.1f}s.
  console: http://127.0.0.1:{service_port('aggregate')}/console/   (sign in with a key made below)
  submit:  POST http://127.0.0.1:{service_port('ingest')}/v1/submissions   (docs: /docs)
  views:   GET  http://127.0.0.1:{service_port("aggregate")}/v1/views/{{seizures,routes,prices,financial,trainings,map,fact-sheet}}
  status:  GET  http://127.0.0.1:{service_port('aggregate')}/v1/submissions/{{id}}
  health:  /health/ready and /metrics on ports {', '.join(str(service_port(n)) for n in services.SERVICES)}
  logs:    {LOGS}/ (services), {VAR}/kafka/kafka.log, {VAR}/store/
  stop:    make down    (data stays in var/ until make clean); a supervisor restarts what dies

Every API call needs a key. Make the first ones with:
  .venv/bin/dmp admin keys create --role admin --name "you"
  .venv/bin/dmp admin keys create --role officer --countries AFG --name "field office"
  .venv/bin/dmp admin keys create --role analyst --name "research"
""")
    return 0


def _up_locked(env: dict[str, str]) -> None:
    print(f"broker  {env['KAFKA_BOOTSTRAP_SERVERS']:<48} {up_broker(env['KAFKA_BOOTSTRAP_SERVERS'])}", flush=True)
    print(f"store   {env['MONGODB_URL']:<48} {up_store(env['MONGODB_URL'])}", flush=True)
    launched = []
    for name in services.SERVICES:
        url = f"http://127.0.0.1:{service_port(name)}"
        pid = read_pid(pidfile(name))
        if pid and services.is_live(url):
            print(f"{name:<9} {url:<46} running (pid {pid})")
            continue
        if pid and _becomes_live(pid, url):  # it was still starting (perhaps restarted by the supervisor)
            print(f"{name:<9} {url:<46} running (pid {pid})")
            continue
        if pid:
            stop_pid(pid)
        svc = start_service(name, env)
        assert svc.proc is not None
        launched.append(svc)
        print(f"{name:<9} {url:<46} starting (pid {svc.proc.pid})", flush=True)
    for svc in launched:
        services.wait_ready(svc)
    print(f"{'supervisor':<9} {'restarts what dies':<46} {up_supervisor()}", flush=True)


def _becomes_live(pid: int, url: str, timeout: float = 60.0) -> bool:
    try:
        wait_until(lambda: services.is_live(url) or not pid_alive(pid), timeout, url)
    except InfraError:
        return False
    return services.is_live(url)


def down() -> int:
    pid = read_pid(pidfile(SUPERVISOR))
    if pid:  # first, so that it does not restart what is being stopped (it may be midway through a restart)
        print(f"stopping supervisor (pid {pid})", flush=True)
        stop_pid(pid, timeout=150)
    pidfile(SUPERVISOR).unlink(missing_ok=True)
    with stack_lock():
        return _down_locked()


def _down_locked() -> int:
    for name in (*services.SERVICES, "kafka", "store"):
        pid = read_pid(pidfile(name))
        if pid:
            print(f"stopping {name} (pid {pid})", flush=True)
            stop_pid(pid, timeout=30)
        pidfile(name).unlink(missing_ok=True)
    print("stopped; data is kept in var/ (make clean removes it)")
    return 0


def status() -> int:
    for name in (*services.SERVICES, "kafka", "store", SUPERVISOR):
        pid = read_pid(pidfile(name))
        print(f"{name:<10} {'running, pid ' + str(pid) if pid else 'not running'}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.stack")
    parser.add_argument("command", choices=["up", "down", "status"])
    command = parser.parse_args().command
    sys.exit({"up": up, "down": down, "status": status}[command]())


if __name__ == "__main__":
    main()
