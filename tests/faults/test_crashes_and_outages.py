"""Under steady load: kill -9 each service and the broker, pause the store. Nothing acknowledged is lost or doubled."""

from __future__ import annotations

import time

import httpx
import pytest

from infra import services
from tests.conftest import eventually
from tests.faults.conftest import (
    ANSWER_BOUND_S,
    STOP_WITHOUT_BROKER_BOUND_S,
    STORE_TIMEOUT_S,
    FaultInfra,
    FaultStack,
    Timeline,
    assert_exactly_once,
    wait_not_ready,
    wait_ready,
)
from tests.faults.load import Load

pytestmark = pytest.mark.faults


def test_acknowledged_submissions_are_in_the_views_exactly_once_after_crashes_and_outages(
        fault_infra: FaultInfra, fault_stack: FaultStack) -> None:
    stack = fault_stack
    timeline = Timeline("crashes and outages")
    load = Load(url=lambda: stack.url("ingest"), headers=stack.officer).start()
    try:
        load.wait_for_acks(40, 90, "warm-up")
        timeline.mark("warm-up")

        for victim in services.SERVICES:
            stack.kill(victim)
            stack.start(victim)
            timeline.mark(f"kill -9 and restart {victim}")
            load.wait_for_acks(30, 90, f"after kill -9 of {victim}")
            timeline.mark("acks again")

        ingest_pid, validate_pid = stack.proc("ingest").pid, stack.proc("validate").pid
        outage = time.monotonic()
        fault_infra.kill_broker()
        wait_not_ready(stack, "ingest", "broker", 20, "ingest reporting the broker gone")
        eventually(lambda: sum(a.status == 503 for a in load.answers_since(outage)) >= 10, timeout=30,
                   what="503 answers while the broker is down")
        timeline.mark("broker killed, 503s seen")
        code, seconds = stack.terminate("aggregate")  # a stop must not wait for a broker that is gone
        timeline.mark(f"SIGTERM aggregate without a broker: exit {code} in {seconds:.1f}s")
        assert code == 0, stack.log_tail("aggregate")
        assert seconds <= STOP_WITHOUT_BROKER_BOUND_S, seconds
        fault_infra.restart_broker()
        timeline.mark("broker restarted")
        stack.start("aggregate")
        load.wait_for_acks(30, 120, "after the broker came back")
        timeline.mark("acks again")
        for name in services.SERVICES:
            wait_ready(stack, name, 60, f"{name} ready again after the broker came back")
        timeline.mark("all ready")
        assert all(stack.alive().values()), f"a service exited instead of recovering: {stack.alive()}"
        assert stack.proc("ingest").pid == ingest_pid and stack.proc("validate").pid == validate_pid
        during = [a for a in load.answers_since(outage) if a.status == 503]
        assert during and all(a.retry_after for a in during)
        assert max(a.seconds for a in during) <= ANSWER_BOUND_S, max(a.seconds for a in during)

        aggregate_pid = stack.proc("aggregate").pid
        analyst = stack.analyst  # its key is made in the store, so before the pause
        paused = time.monotonic()
        fault_infra.pause_store()
        try:
            wait_not_ready(stack, "aggregate", "store", 30, "aggregate reporting the store gone")
            eventually(lambda: stack.metric("aggregate", "dmp_consumer_lag") > 0, timeout=30,
                       what="aggregate's lag showing while the store is paused")
            assert stack.metric("aggregate", "dmp_dependency_up", dependency="store") == 0
            timeline.mark("store paused, aggregate not ready and lagging")
            asked = time.monotonic()
            read = httpx.get(f"{stack.url('aggregate')}/v1/views/seizures", params={"year": load.year},
                             headers=analyst, timeout=30)
            took = time.monotonic() - asked
            assert (read.status_code, bool(read.headers.get("retry-after"))) == (503, True), read.text
            assert took <= STORE_TIMEOUT_S + 2.0, f"a read on the paused store took {took:.1f}s"
            timeline.mark(f"a read on the paused store: 503 in {took:.1f}s")
            time.sleep(max(0.0, 20 - (time.monotonic() - paused)))  # the outage itself: 20 s of a paused store
        finally:
            fault_infra.resume_store()
        timeline.mark("store resumed")
        wait_ready(stack, "aggregate", 60, "aggregate ready again after the store came back")
        timeline.mark("aggregate ready")
        assert stack.alive()["aggregate"] and stack.proc("aggregate").pid == aggregate_pid, "aggregate restarted"
        load.wait_for_acks(30, 90, "after the store came back")
        timeline.mark("acks again")
    finally:
        load.stop()
        timeline.mark("load stopped")

    assert_exactly_once(stack, load, "kill -9 ingest/validate/aggregate/broker, pause store", timeline)
    eventually(lambda: stack.metric("aggregate", "dmp_consumer_lag") == 0, timeout=60,
               what="aggregate's lag back to zero")
    timeline.report()
