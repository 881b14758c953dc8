"""Fault-suite fixtures: each module gets a broker, a store and a stack of its own, so it may break them.

The session's `infra` broker and store (tests/conftest.py) are never touched here. Ingest reaches
the broker through a TCP proxy the tests control (the broker advertises the proxy's port on a
listener of its own); validate, aggregate and the test itself connect directly. A test may route
another service's broker link, or aggregate's store link, through a proxy instead (`FaultInfra.via`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from infra import kafka, services, store
from infra.proc import VAR, free_port, stop_pid
from shared.roles import Role
from tests.conftest import all_services, eventually
from tests.faults.load import Load, Row, oracle, view_rows
from tests.faults.proxy import TcpProxy
from tests.keys import KeyedStack, insert_key

PUBLISH_TIMEOUT_S = 3.0
DRAIN_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 30.0
LEAVE_TIMEOUT_S = 3.0
STORE_TIMEOUT_S = 2.0
ANSWER_BOUND_S = PUBLISH_TIMEOUT_S + 2.0
"""No submission waits longer than the publish timeout (plus scheduling slack) for its 503."""
STOP_BOUND_S = 2 * DRAIN_TIMEOUT_S + 5.0
"""SIGTERM: in-flight requests, then the batch in hand, each within the drain timeout, then exit."""
STOP_WITHOUT_BROKER_BOUND_S = DRAIN_TIMEOUT_S + LEAVE_TIMEOUT_S + 5.0
"""SIGTERM to a consumer whose broker is gone: its stalled batch gets the drain timeout, leaving the group the
leave timeout (no broker answers it), and no HTTP request is in flight."""


@dataclass
class FaultInfra:
    """A broker (with a proxied listener for ingest) and a store that this module alone uses."""

    base: Path
    broker: kafka.Broker
    store: store.Store
    proxy: TcpProxy
    store_proxy: TcpProxy
    broker_via_proxy: str = "ingest"
    """The service whose link to the broker goes through `proxy` (the broker advertises one proxied listener)."""
    store_via_proxy: str | None = None
    """The service, if any, whose link to the store goes through `store_proxy`."""

    @property
    def store_pid(self) -> int:
        assert self.store.pid is not None
        return self.store.pid

    def kill_broker(self) -> None:
        self.broker.kill()

    def restart_broker(self) -> None:
        self.broker = kafka.restart(self.broker, timeout=180)

    def pause_store(self) -> None:
        os.kill(self.store_pid, signal.SIGSTOP)

    def resume_store(self) -> None:
        os.kill(self.store_pid, signal.SIGCONT)

    def kill_store(self) -> None:
        """SIGKILL: the store gets no chance to flush or close its files."""
        os.kill(self.store_pid, signal.SIGKILL)
        if self.store.proc is not None:
            self.store.proc.wait(timeout=10)

    def restart_store(self) -> None:
        """A new store process on the same data folder and port."""
        assert self.store.data_dir is not None
        self.store = store.start(self.store.data_dir, port=urlsplit(self.store.url).port)

    def bootstrap_for(self, name: str) -> str:
        """`broker_via_proxy` (ingest unless a test moves it) goes through the proxy; the others connect directly."""
        bootstrap = self.broker.proxied_bootstrap if name == self.broker_via_proxy else self.broker.bootstrap
        assert bootstrap is not None
        return bootstrap

    def store_url_for(self, name: str) -> str:
        return store.url_for(self.store_proxy.listen_port) if name == self.store_via_proxy else self.store.url

    @property
    def topic_env(self) -> dict[str, str]:
        """One broker: the services' default topic settings (one copy)."""
        return {}


LOGS = VAR / "test" / "faults-logs"
"""The last run's logs per module (broker, store, services), kept for reading after a failure."""


def keep_logs(base: Path, module: str) -> None:
    target = LOGS / module
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True)
    for log in [*base.glob("*/*.log"), *base.glob("*.log")]:
        with contextlib.suppress(OSError):
            shutil.copy(log, target / f"{log.parent.name}-{log.name}")


@pytest.fixture(scope="module")
def fault_infra(request: pytest.FixtureRequest) -> Iterator[FaultInfra]:
    base = VAR / "test" / f"faults-{uuid.uuid4().hex[:10]}"
    local_store = store.start(base / "store")
    proxy = TcpProxy(target_port=free_port(), listen_port=free_port())
    proxy.start()
    store_proxy = TcpProxy(target_port=urlsplit(local_store.url).port or 0, listen_port=free_port()).start()
    try:
        broker = kafka.start(base / "kafka", proxied=(proxy.target_port, proxy.listen_port), timeout=180)
    except BaseException:
        proxy.stop()
        store_proxy.stop()
        local_store.stop()
        raise
    faults = FaultInfra(base, broker, local_store, proxy, store_proxy)
    try:
        yield faults
    finally:
        proxy.stop()
        store_proxy.stop()
        with contextlib.suppress(ProcessLookupError):
            faults.resume_store()
        faults.broker.stop()
        faults.store.stop()  # the one running now: a test may have restarted it
        keep_logs(base, request.module.__name__.rsplit(".", 1)[-1])
        shutil.rmtree(base, ignore_errors=True)


@dataclass
class FaultStack(KeyedStack):
    """The three services as processes on fixed ports (a restart comes back on the same one)."""

    infra: Any
    """A FaultInfra, or anything with `store`, `bootstrap_for(service)`, `store_url_for(service)` and `topic_env`
    (the cluster's)."""
    namespace: str
    base: Path
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in services.SERVICES})
    procs: dict[str, services.Service] = field(default_factory=dict)

    @property
    def database(self) -> str:
        return f"dmp_{self.namespace}"

    def env(self, name: str) -> dict[str, str]:
        return {**self.infra.topic_env, "KAFKA_BOOTSTRAP_SERVERS": self.infra.bootstrap_for(name),
                "MONGODB_URL": self.infra.store_url_for(name),
                "MONGODB_DATABASE": self.database, "DMP_TOPIC_NAMESPACE": self.namespace,
                "VALIDATE_GROUP_ID": f"{self.namespace}-validate",
                "VALIDATE_TRANSACTIONAL_ID": f"{self.namespace}-validate-0",
                "AGGREGATE_GROUP_ID": f"{self.namespace}-aggregate",
                "INGEST_PUBLISH_TIMEOUT_S": str(PUBLISH_TIMEOUT_S), "INGEST_RETRY_AFTER_S": "1",
                "INGEST_BROKER_PROBE_INTERVAL_S": "0.5", "INGEST_PRODUCER_RECREATE_AFTER_S": "10",
                "DMP_RATE_LIMIT_PER_S": "0", "DMP_PROBE_INTERVAL_S": "1",
                "DMP_DRAIN_TIMEOUT_S": str(DRAIN_TIMEOUT_S), "DMP_SHUTDOWN_TIMEOUT_S": str(SHUTDOWN_TIMEOUT_S),
                "DMP_LEAVE_TIMEOUT_S": str(LEAVE_TIMEOUT_S), "DMP_STORE_TIMEOUT_S": str(STORE_TIMEOUT_S),
                "DMP_RETRY_BUDGET_S": "120"}

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, name: str, timeout: float = 90.0) -> services.Service:
        svc = services.start(name, self.ports[name], self.base / f"{name}.log", self.env(name))
        self.procs[name] = svc
        services.wait_ready(svc, timeout=timeout)
        return svc

    def proc(self, name: str) -> Any:
        proc = self.procs[name].proc
        assert proc is not None
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL: no chance to drain or commit."""
        proc = self.proc(name)
        proc.kill()
        proc.wait(timeout=10)

    def terminate(self, name: str, timeout: float = SHUTDOWN_TIMEOUT_S + 10) -> tuple[int, float]:
        """SIGTERM; returns the exit code and how long the process took to exit."""
        proc = self.proc(name)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def alive(self) -> dict[str, bool]:
        return {name: svc.proc is not None and svc.proc.poll() is None for name, svc in self.procs.items()}

    def ready(self, name: str) -> tuple[int, dict[str, Any]]:
        try:
            response = httpx.get(f"{self.url(name)}/health/ready", timeout=8)
        except httpx.HTTPError as exc:
            return 0, {"error": repr(exc)}
        return response.status_code, response.json()

    def metric(self, name: str, metric: str, **labels: str) -> float:
        """Sum of the samples of `metric` on `name`'s /metrics whose labels include `labels`."""
        text = httpx.get(f"{self.url(name)}/metrics", timeout=8).text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == metric and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total

    def key(self, role: Role, countries: list[str] | None = None, name: str = "faults") -> str:
        return insert_key(self.infra.store.url, self.database, role, countries, name)

    def stop_all(self) -> None:
        for svc in self.procs.values():
            if svc.proc is not None:
                if svc.proc.poll() is None:
                    stop_pid(svc.proc.pid, timeout=SHUTDOWN_TIMEOUT_S)
                svc.proc.wait(timeout=5)

    def log_tail(self, name: str, lines: int = 40) -> str:
        log = self.base / f"{name}.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@pytest.fixture(scope="module")
def fault_stack(fault_infra: FaultInfra) -> Iterator[FaultStack]:
    namespace = f"f{uuid.uuid4().hex[:10]}"
    with all_services(FaultStack(fault_infra, namespace, fault_infra.base / "stack")) as stack:
        yield stack


def wait_ready(stack: FaultStack, name: str, timeout: float, what: str) -> dict[str, Any]:
    return eventually(lambda: r[1] if (r := stack.ready(name))[0] == 200 else None,
                      timeout=timeout, interval=0.5, what=what)


def wait_not_ready(stack: FaultStack, name: str, failing: str, timeout: float, what: str) -> dict[str, Any]:
    return eventually(lambda: r[1] if (r := stack.ready(name))[0] == 503 and failing in r[1].get("failing", [])
                      else None,
                      timeout=timeout, interval=0.5, what=what)


@dataclass
class Figures:
    label: str
    sent: int
    acknowledged: int
    unacknowledged: int
    resends: int
    in_views: int
    expected_in_views: int
    duplicates: int
    missing: int
    statuses: dict[int, int]

    def line(self) -> str:
        return (f"{self.label}: sent {self.sent} (+{self.resends} resends of acknowledged ones), "
                f"acknowledged {self.acknowledged}, unacknowledged {self.unacknowledged}, "
                f"in views {self.in_views} (expected {self.expected_in_views}), duplicates {self.duplicates}, "
                f"missing {self.missing}; answers {dict(sorted(self.statuses.items()))} (0 = no answer)")


FIGURES: list[str] = []


@dataclass
class Timeline:
    """How long each phase of a fault test took; reported with the figures."""

    label: str
    started: float = field(default_factory=time.monotonic)
    last: float = field(default_factory=time.monotonic)
    marks: list[str] = field(default_factory=list)

    def mark(self, what: str) -> None:
        now = time.monotonic()
        self.marks.append(f"{what} {now - self.last:.1f}s")
        self.last = now
        print(f"[{now - self.started:6.1f}s] {what}", flush=True)

    def report(self) -> None:
        FIGURES.append(f"{self.label} phases: {', '.join(self.marks)}; total {time.monotonic() - self.started:.0f}s")


def verify_exactly_once(stack: FaultStack, load: Load, label: str, timeout: float = 180.0) -> Figures:
    """Wait until the seizures view equals the oracle of every acknowledged submission; report the figures."""
    present = {sid for sid in load.unacked
               if httpx.get(f"{stack.url('aggregate')}/v1/submissions/{sid}", headers=stack.analyst,
                            timeout=10).status_code == 200}
    expected = oracle([load.latest.get(sid, load.sent[sid]) for sid in load.acked | present])
    last: dict[str, Row] = {}

    def matches() -> bool:
        nonlocal last
        try:
            last = view_rows(stack.url("aggregate"), stack.analyst, load.year)
        except httpx.HTTPError:
            return False
        return last == expected

    try:
        eventually(matches, timeout=timeout, interval=1.0, what=f"{label}: views equal to the oracle")
    finally:
        countries = set(expected) | set(last)
        got = {c: last.get(c, (0, 0, 0))[2] for c in countries}
        want = {c: expected.get(c, (0, 0, 0))[2] for c in countries}
        figures = Figures(label, len(load.sent), len(load.acked), len(load.unacked), load.resends,
                          sum(got.values()), sum(want.values()),
                          sum(max(0, got[c] - want[c]) for c in countries),
                          sum(max(0, want[c] - got[c]) for c in countries), dict(load.statuses))
        FIGURES.append(figures.line())
        print(figures.line())
    return figures


def assert_exactly_once(stack: FaultStack, load: Load, label: str, timeline: Timeline) -> Figures:
    """The load met no unexpected answer, and every submission it sent is in the views once, all acknowledged."""
    assert not load.unexpected, load.unexpected[:5]
    figures = verify_exactly_once(stack, load, label)
    timeline.mark("views exact")
    assert figures.unacknowledged == 0
    assert figures.duplicates == 0 and figures.missing == 0
    return figures


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("fault suite figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
