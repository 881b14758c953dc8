"""`make up` / `make down` / `make status`: the local stack in the background, healed on every `up`.

Broker and store: if the configured ones already answer, they are used as they are; otherwise
the local ones are started under var/. Services: each one that is not answering is (re)started.
State lives in var/run/*.pid, logs in var/log/.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

from infra import kafka, services, store
from infra.proc import VAR, InfraError, read_pid, stop_pid

RUN = VAR / "run"
LOGS = VAR / "log"


def _env() -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        "MONGODB_URL": os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:27017/?directConnection=true"),
        "MONGODB_DATABASE": os.environ.get("MONGODB_DATABASE", "dmp"),
    }


def _pidfile(name: str) -> Path:
    return RUN / f"{name}.pid"


def _port_of(address: str, default: int) -> int:
    parsed = urlparse(address if "://" in address else f"tcp://{address.split(',')[0]}")
    return parsed.port or default


def up_broker(bootstrap: str) -> str:
    if kafka.metadata_ok(bootstrap):
        return "running" if read_pid(_pidfile("kafka")) else "external"
    port = _port_of(bootstrap, 9092)
    broker = kafka.start(VAR / "kafka", port=port, controller_port=port + 1)
    broker.log.parent.mkdir(parents=True, exist_ok=True)
    assert broker.pid is not None
    _pidfile("kafka").write_text(str(broker.pid))
    return f"started (pid {broker.pid}, log {broker.log})"


def up_store(url: str) -> str:
    if store.ping(url):
        return "running" if read_pid(_pidfile("store")) else "external"
    local = store.start(VAR / "store", port=_port_of(url, 27017))
    assert local.pid is not None
    _pidfile("store").write_text(str(local.pid))
    return f"started {local.engine} (pid {local.pid}, log {local.log})"


def up() -> int:
    RUN.mkdir(parents=True, exist_ok=True)
    env = _env()
    started = time.monotonic()
    try:
        print(f"broker  {env['KAFKA_BOOTSTRAP_SERVERS']:<48} {up_broker(env['KAFKA_BOOTSTRAP_SERVERS'])}", flush=True)
        print(f"store   {env['MONGODB_URL']:<48} {up_store(env['MONGODB_URL'])}", flush=True)
        launched = []
        for name in services.SERVICES:
            port = int(os.environ.get(f"{name.upper()}_PORT", services.DEFAULT_PORTS[name]))
            url = f"http://127.0.0.1:{port}"
            pid = read_pid(_pidfile(name))
            if pid and services.is_live(url):
                print(f"{name:<9} {url:<46} running (pid {pid})")
                continue
            if pid:
                stop_pid(pid)
            svc = services.start(name, port, LOGS / f"{name}.log", env)
            assert svc.proc is not None
            _pidfile(name).write_text(str(svc.proc.pid))
            launched.append(svc)
            print(f"{name:<9} {url:<46} starting (pid {svc.proc.pid})", flush=True)
        for svc in launched:
            services.wait_ready(svc)
    except InfraError as exc:
        print(f"\nmake up failed: {exc}", file=sys.stderr)
        return 1
    print(f"""
All services ready in {time.monotonic() - started:.1f}s.
  submit:  POST http://127.0.0.1:{services.DEFAULT_PORTS['ingest']}/v1/submissions   (docs: /docs)
  views:   GET  http://127.0.0.1:{services.DEFAULT_PORTS["aggregate"]}/v1/views/{{seizures,routes,prices,financial,trainings,map,fact-sheet}}
  status:  GET  http://127.0.0.1:{services.DEFAULT_PORTS['aggregate']}/v1/submissions/{{id}}
  health:  /health/ready and /metrics on ports 8000, 8001, 8002
  logs:    {LOGS}/ (services), {VAR}/kafka/kafka.log, {VAR}/store/
  stop:    make down    (data stays in var/ until make clean)

Every API call needs a key. Make the first ones with:
  .venv/bin/dmp keys create --role admin --name "you"
  .venv/bin/dmp keys create --role officer --countries AFG --name "field office"
  .venv/bin/dmp keys create --role analyst --name "research"
""")
    return 0


def down() -> int:
    for name in (*services.SERVICES, "kafka", "store"):
        pid = read_pid(_pidfile(name))
        if pid:
            print(f"stopping {name} (pid {pid})", flush=True)
            stop_pid(pid, timeout=30)
        _pidfile(name).unlink(missing_ok=True)
    print("stopped; data is kept in var/ (make clean removes it)")
    return 0


def status() -> int:
    for name in (*services.SERVICES, "kafka", "store"):
        pid = read_pid(_pidfile(name))
        print(f"{name:<10} {'running, pid ' + str(pid) if pid else 'not running'}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m infra.stack")
    parser.add_argument("command", choices=["up", "down", "status"])
    command = parser.parse_args().command
    sys.exit({"up": up, "down": down, "status": status}[command]())


if __name__ == "__main__":
    main()
