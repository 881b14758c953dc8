"""A cut or slow link between ingest and the broker, and SIGTERM at the worst moments: bounded, drained, exact."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pymongo import MongoClient

from infra import services
from infra.proc import free_port
from tests.conftest import eventually
from tests.faults.conftest import (
    ANSWER_BOUND_S,
    FIGURES,
    SHUTDOWN_TIMEOUT_S,
    STOP_BOUND_S,
    FaultInfra,
    FaultStack,
    Timeline,
    assert_exactly_once,
    verify_exactly_once,
    wait_not_ready,
    wait_ready,
)
from tests.faults.load import Load, seizure
from tests.keys import bearer, insert_key

pytestmark = pytest.mark.faults


def test_a_cut_link_to_the_broker_answers_503_quickly_and_loses_nothing(
        fault_infra: FaultInfra, fault_stack: FaultStack) -> None:
    stack, proxy = fault_stack, fault_infra.proxy
    timeline = Timeline("network faults")
    load = Load(url=lambda: stack.url("ingest"), headers=stack.officer, seed=11, year=2019).start()
    try:
        load.wait_for_acks(30, 90, "warm-up")
        timeline.mark("warm-up")

        cut = time.monotonic()
        proxy.blackhole()  # a partition: connections stay up, nothing gets through, no error comes back
        wait_not_ready(stack, "ingest", "broker", 20, "ingest reporting the broker unreachable")
        eventually(lambda: sum(a.status == 503 for a in load.answers_since(cut)) >= 10, timeout=30,
                   what="503 answers while the link is cut")
        assert stack.metric("ingest", "dmp_dependency_up", dependency="broker") == 0
        time.sleep(max(0.0, 10 - (time.monotonic() - cut)))
        timeline.mark("link black-holed: not ready, 503s")
        restored = time.monotonic()
        proxy.restore()
        load.wait_for_acks(30, 60, "after the link came back")
        wait_ready(stack, "ingest", 30, "ingest ready again")
        timeline.mark("link restored: acks again")
        during = [a for a in load.answers_since(cut) if a.started < restored - ANSWER_BOUND_S]
        assert during and all(a.status == 503 and a.retry_after for a in during), {a.status for a in during}
        assert max(a.seconds for a in during) <= ANSWER_BOUND_S, max(a.seconds for a in during)

        reset = time.monotonic()
        proxy.reset()  # connections torn down, new ones refused
        eventually(lambda: sum(a.status == 503 for a in load.answers_since(reset)) >= 5, timeout=30,
                   what="503 answers while connections are refused")
        proxy.restore()
        load.wait_for_acks(30, 60, "after connections are accepted again")
        timeline.mark("link reset and restored")

        proxy.delay(0.2)  # slow, not broken: still acknowledged
        load.wait_for_acks(20, 60, "through a slow link")
        proxy.restore()
        timeline.mark("slow link")
        assert all(stack.alive().values()), stack.alive()
    finally:
        proxy.restore()
        load.stop()

    assert_exactly_once(stack, load, "ingest-broker link cut, reset, slowed", timeline)
    timeline.report()


def test_sigterm_answers_the_requests_in_flight_and_exits_in_time(
        fault_infra: FaultInfra, fault_stack: FaultStack) -> None:
    stack, proxy = fault_stack, fault_infra.proxy
    rng = random.Random(5)
    bodies = [seizure(rng, 2018) for _ in range(6)]
    answers: dict[str, Any] = {}

    def send(body: dict[str, Any]) -> None:
        try:
            answers[body["id"]] = httpx.post(f"{stack.url('ingest')}/v1/submissions", json=body,
                                             headers=stack.officer, timeout=30).status_code
        except httpx.HTTPError as exc:
            answers[body["id"]] = repr(exc)

    proxy.delay(0.6)  # every broker round trip now takes over a second: the submissions are caught in flight
    try:
        senders = [threading.Thread(target=send, args=(body,)) for body in bodies]
        for sender in senders:
            sender.start()
        eventually(lambda: stack.metric("ingest", "dmp_http_requests_in_flight") >= len(bodies) + 1, timeout=15,
                   interval=0.05, what="the submissions in flight")  # + 1: the /metrics request itself
        code, seconds = stack.terminate("ingest")
        for sender in senders:
            sender.join(timeout=40)
    finally:
        proxy.restore()
    tally = Counter(answers.values())
    FIGURES.append(f"SIGTERM to ingest with {len(bodies)} submissions in flight: answers {dict(tally)}, "
                   f"exit {code} in {seconds:.1f}s")
    assert code == 0, stack.log_tail("ingest")
    assert seconds <= STOP_BOUND_S, seconds
    assert set(answers.values()) <= {202, 503}, answers  # every one answered; none cut off

    stack.start("ingest")
    with httpx.Client(headers=stack.officer, timeout=15) as client:
        for body in bodies:  # what got 503 is resent, as a client would
            if answers[body["id"]] != 202:
                def resent(b: dict[str, Any] = body) -> bool:
                    return client.post(f"{stack.url('ingest')}/v1/submissions", json=b).status_code == 202

                eventually(resent, timeout=60, interval=0.5, what="a resent submission acknowledged")
        for body in bodies:
            def in_views(b: dict[str, Any] = body) -> bool:
                return client.get(f"{stack.url('aggregate')}/v1/submissions/{b['id']}",
                                  headers=stack.analyst).status_code == 200

            eventually(in_views, timeout=60, interval=0.5, what="each submission in the views")


def test_sigterm_drains_the_consumers_under_load_and_loses_nothing(fault_stack: FaultStack) -> None:
    stack = fault_stack
    timeline = Timeline("graceful restarts")
    load = Load(url=lambda: stack.url("ingest"), headers=stack.officer, seed=13, year=2017).start()
    stops: dict[str, tuple[int, float]] = {}
    try:
        load.wait_for_acks(30, 90, "warm-up")
        for name in ("validate", "aggregate", "ingest"):
            stops[name] = stack.terminate(name)
            timeline.mark(f"SIGTERM {name}: exit {stops[name][0]} in {stops[name][1]:.1f}s")
            stack.start(name)
            load.wait_for_acks(20, 90, f"after {name} restarted")
    finally:
        load.stop()
    for name, (code, seconds) in stops.items():
        assert code == 0, (name, stack.log_tail(name))
        assert seconds <= STOP_BOUND_S, (name, seconds)
    figures = verify_exactly_once(stack, load, "SIGTERM validate, aggregate, ingest under load")
    assert figures.unacknowledged == 0
    assert figures.duplicates == 0 and figures.missing == 0
    timeline.report()


@pytest.mark.parametrize("name", services.SERVICES)
def test_sigterm_while_waiting_for_the_broker_at_start_up_exits_at_once(fault_stack: FaultStack, name: str) -> None:
    env = {**fault_stack.env(name), "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}  # nothing listens
    log = fault_stack.base / f"{name}-start-up.log"
    svc = services.start(name, free_port(), log, env)
    assert svc.proc is not None
    try:
        eventually(lambda: log.exists() and "broker not ready for topic setup" in log.read_text(), timeout=60,
                   interval=0.2, what=f"{name} waiting for the broker")
        started = time.monotonic()
        svc.proc.terminate()
        code = svc.proc.wait(timeout=30)
        seconds = time.monotonic() - started
    finally:
        if svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait(timeout=10)
    assert code == 0, log.read_text()[-2000:]
    assert seconds <= 5, seconds


def test_sigterm_during_a_generation_switch_exits_0(fault_infra: FaultInfra, fault_stack: FaultStack) -> None:
    """An aggregate of its own, reaching the broker through the proxy: the link is cut and a new generation
    named live, so the process leaves the old generation and waits for the broker to join the new one.
    SIGTERM arrives then, while a read holds the HTTP side open (the store is paused), so the stop
    request reaches the switch before the shutdown does."""
    namespace = f"g{uuid.uuid4().hex[:10]}"
    database = f"dmp_{namespace}"
    env = {**fault_stack.env("aggregate"), "KAFKA_BOOTSTRAP_SERVERS": fault_infra.bootstrap_for("ingest"),
           "DMP_TOPIC_NAMESPACE": namespace, "MONGODB_DATABASE": database,
           "AGGREGATE_GROUP_ID": f"{namespace}-aggregate", "AGGREGATE_GENERATION_POLL_S": "0.5"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = fault_stack.base / f"aggregate-{namespace}.log"
    svc = services.start("aggregate", port, log, env)
    assert svc.proc is not None
    analyst = bearer(insert_key(fault_infra.store.url, database, "analyst"))
    client: MongoClient[dict[str, Any]] = MongoClient(fault_infra.store.url)
    reader = threading.Thread(target=lambda: httpx.get(f"{url}/v1/views/seizures", headers=analyst, timeout=30))
    try:
        services.wait_ready(svc, timeout=90)
        fault_infra.proxy.blackhole()
        client[database]["aggregate_meta"].replace_one({"_id": "live"}, {"_id": "live", "generation": 1},
                                                       upsert=True)
        eventually(lambda: "broker not ready for topic setup" in log.read_text().partition("leaving generation")[2],
                   timeout=90, interval=0.5, what="aggregate waiting for the broker to join generation 1")
        fault_infra.pause_store()
        reader.start()
        eventually(lambda: in_flight(url) >= 2, timeout=15, interval=0.05, what="the read in flight")
        started = time.monotonic()
        svc.proc.terminate()
        code = svc.proc.wait(timeout=SHUTDOWN_TIMEOUT_S + 10)
        seconds = time.monotonic() - started
    finally:
        fault_infra.resume_store()
        fault_infra.proxy.restore()
        client.close()
        if svc.proc.poll() is None:
            svc.proc.kill()
            svc.proc.wait(timeout=10)
        if reader.is_alive():
            reader.join(timeout=30)
    FIGURES.append(f"SIGTERM to aggregate while it switches generation without a broker: exit {code} in {seconds:.1f}s")
    assert code == 0, log.read_text()[-3000:]
    assert seconds <= STOP_BOUND_S, seconds


def in_flight(url: str) -> float:
    """The service's `dmp_http_requests_in_flight` (the /metrics request itself included)."""
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name == "dmp_http_requests_in_flight":
                return sample.value
    return 0.0
