"""Fixtures: a real broker and store per test session (free ports), the services as processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from infra import kafka, services, store
from infra.proc import VAR, stop_pid
from shared.roles import Role
from tests.keys import KeyedStack, insert_key

T = TypeVar("T")
TIERS = ("unit", "integration", "e2e", "browser")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier, from the folder it lives in."""
    for item in items:
        for tier in TIERS:
            if f"{os.sep}{tier}{os.sep}" in str(item.path):
                item.add_marker(getattr(pytest.mark, tier))


@dataclass(frozen=True)
class Infra:
    bootstrap: str
    mongodb_url: str
    engine: str
    store_dir: Path | None = None
    """The local store's data folder (None for a store given by DMP_TEST_MONGODB_URL)."""


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    """A Kafka broker and a store started for this session, on free ports, under var/test/."""
    base = VAR / "test" / uuid.uuid4().hex[:12]
    external_store = os.environ.get("DMP_TEST_MONGODB_URL")
    local_store = None if external_store else store.start(base / "store")
    broker = kafka.start(base / "kafka")
    try:
        yield Infra(broker.bootstrap, external_store or local_store.url,  # type: ignore[union-attr]
                    "external" if external_store else local_store.engine,  # type: ignore[union-attr]
                    None if local_store is None else local_store.data_dir)
    finally:
        broker.stop()
        if local_store is not None:
            local_store.stop()
        shutil.rmtree(base, ignore_errors=True)


def eventually(check: Callable[[], T | None], timeout: float = 30.0, interval: float = 0.1,
               what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@dataclass
class Stack(KeyedStack):
    """The three services as processes on free ports, on a fresh topic namespace and database."""

    infra: Infra
    namespace: str
    database: str
    base: Path
    procs: dict[str, services.Service]

    @property
    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.infra.bootstrap, "MONGODB_URL": self.infra.mongodb_url,
                "MONGODB_DATABASE": self.database, "DMP_TOPIC_NAMESPACE": self.namespace,
                "VALIDATE_GROUP_ID": f"{self.namespace}-validate",
                "VALIDATE_TRANSACTIONAL_ID": f"{self.namespace}-validate-0",
                "AGGREGATE_GROUP_ID": f"{self.namespace}-aggregate",
                "INGEST_PUBLISH_TIMEOUT_S": "5", "DMP_RATE_LIMIT_PER_S": "0"}

    def url(self, name: str) -> str:
        return self.procs[name].url

    def key(self, role: Role, countries: list[str] | None = None, name: str = "e2e") -> str:
        """A new API key in this stack's key store, as `dmp admin keys create` makes it."""
        return insert_key(self.infra.mongodb_url, self.database, role, countries, name)

    def start(self, name: str, port: int | None = None) -> services.Service:
        from infra.proc import free_port

        svc = services.start(name, port or free_port(), self.base / f"{name}.log", self.env)
        self.procs[name] = svc
        services.wait_ready(svc, timeout=60)
        return svc

    def kill(self, name: str) -> None:
        """SIGKILL, no chance to drain or commit."""
        proc = self.procs[name].proc
        assert proc is not None
        proc.kill()
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for svc in self.procs.values():
            if svc.proc is not None:
                if svc.proc.poll() is None:
                    stop_pid(svc.proc.pid, timeout=20)
                svc.proc.wait(timeout=5)


class Startable(Protocol):
    def start(self, name: str) -> Any: ...

    def stop_all(self) -> None: ...


S = TypeVar("S", bound=Startable)


@contextlib.contextmanager
def all_services(stack: S) -> Iterator[S]:
    """`stack` with its three services started, and stopped however the block ends."""
    try:
        for name in services.SERVICES:
            stack.start(name)
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture(scope="module")
def stack(infra: Infra) -> Iterator[Stack]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    base = VAR / "test" / "stacks" / namespace
    try:
        with all_services(Stack(infra, namespace, f"dmp_{namespace}", base, {})) as started:
            yield started
    finally:
        shutil.rmtree(base, ignore_errors=True)
