"""Under steady load: kill -9 the store and restart it on its data; cut and slow validate's and aggregate's
links to the broker and aggregate's link to the store; kill -9 validate mid-transaction and read the topics.
Nothing acknowledged is lost or doubled, and no received event is decided twice.

Each test sends seizures of a year of its own, so each is checked against an oracle of its own.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import orjson
import pytest

from infra import services
from shared.topics import Topics
from tests.conftest import eventually
from tests.faults.conftest import (
    FIGURES,
    FaultInfra,
    FaultStack,
    Timeline,
    verify_exactly_once,
    wait_not_ready,
    wait_ready,
)
from tests.faults.load import Load
from tests.faults.proxy import TcpProxy
from tests.faults.records import Isolation, TransactionWatch, read_records

pytestmark = pytest.mark.faults

CUT_S = 15.0
"""How long a link stays cut: well inside the retry budget, within which the runbook says services carry on."""
DELAY_S = {"broker": 0.2, "store": 0.05}
"""Added to every chunk each way on a slowed link (aggregate makes many more round trips to the store)."""


def reroute(infra: FaultInfra, stack: FaultStack, broker: str = "ingest", store: str | None = None) -> None:
    """Send `broker`'s link to the broker and `store`'s link to the store through the proxies; restart (SIGTERM)
    each service whose links change, so it connects the new way."""
    before = {name: stack.env(name) for name in services.SERVICES}
    infra.broker_via_proxy, infra.store_via_proxy = broker, store
    for name in services.SERVICES:
        if stack.env(name) != before[name]:
            code, _ = stack.terminate(name)
            assert code == 0, stack.log_tail(name)
            stack.start(name)


def validated(stack: FaultStack, ids: set[str]) -> bool:
    """Every one of `ids` is in the views as validated (a received one shows there too, as received)."""
    for sid in ids:
        response = httpx.get(f"{stack.url('aggregate')}/v1/submissions/{sid}", headers=stack.analyst, timeout=15)
        if response.status_code != 200 or response.json()["status"] != "validated":
            return False
    return True


def progress(stack: FaultStack, service: str) -> dict[str, float]:
    """What a consumer has done so far, for a failure message."""
    return {metric: stack.metric(service, metric) for metric in (
        "dmp_events_consumed_total", "dmp_events_produced_total", "dmp_consumer_batch_seconds_count",
        "dmp_consumer_batch_retries_total", "dmp_consumer_lag", "dmp_consumer_stalled")}


def test_a_store_killed_and_restarted_on_its_data_loses_and_doubles_nothing(
        fault_infra: FaultInfra, fault_stack: FaultStack) -> None:
    stack = fault_stack
    reroute(fault_infra, stack)
    timeline = Timeline("store killed")
    analyst = stack.analyst  # its key is made in the store, so before the kill
    load = Load(url=lambda: stack.url("ingest"), headers=stack.officer, seed=17, year=2016).start()
    try:
        load.wait_for_acks(30, 90, "warm-up")
        timeline.mark("warm-up")
        pids = {name: stack.proc(name).pid for name in services.SERVICES}
        fault_infra.kill_store()
        wait_not_ready(stack, "aggregate", "store", 30, "aggregate reporting the store gone")
        eventually(lambda: stack.metric("aggregate", "dmp_consumer_lag") > 0, timeout=30,
                   what="aggregate's lag showing while the store is dead")
        read = httpx.get(f"{stack.url('aggregate')}/v1/views/seizures", params={"year": load.year},
                         headers=analyst, timeout=30)
        assert (read.status_code, bool(read.headers.get("retry-after"))) == (503, True), read.text
        timeline.mark("store killed: aggregate not ready, lagging, reads 503")
        fault_infra.restart_store()
        timeline.mark("store restarted on its data")
        wait_ready(stack, "aggregate", 60, "aggregate ready again after the store came back")
        load.wait_for_acks(30, 90, "after the store came back")
        timeline.mark("aggregate ready, acks again")
        assert all(stack.alive().values()), f"a service exited instead of recovering: {stack.alive()}"
        assert {name: stack.proc(name).pid for name in services.SERVICES} == pids, "a service was restarted"
    finally:
        load.stop()

    assert not load.unexpected, load.unexpected[:5]
    figures = verify_exactly_once(stack, load, "kill -9 the store, restart it on its data")
    timeline.mark("views exact")
    assert figures.unacknowledged == 0
    assert figures.duplicates == 0 and figures.missing == 0
    eventually(lambda: stack.metric("aggregate", "dmp_consumer_lag") == 0, timeout=60,
               what="aggregate's lag back to zero")
    timeline.report()


@pytest.mark.parametrize(("dependency", "year"), [("broker", 2014), ("store", 2013)])
def test_a_cut_or_slow_link_of_aggregate_heals_without_a_restart_and_loses_nothing(
        fault_infra: FaultInfra, fault_stack: FaultStack, dependency: str, year: int) -> None:
    cut_and_slow(fault_infra, fault_stack, "aggregate", dependency, year)


def cut_and_slow(fault_infra: FaultInfra, fault_stack: FaultStack, service: str, dependency: str, year: int) -> None:
    """Under load, slow `service`'s link to `dependency`, then cut it; it carries on by itself, the views exact."""
    stack = fault_stack
    if dependency == "broker":
        reroute(fault_infra, stack, broker=service)
    else:
        reroute(fault_infra, stack, store=service)
    proxy: TcpProxy = fault_infra.proxy if dependency == "broker" else fault_infra.store_proxy
    label = f"{service}-{dependency} link"
    timeline = Timeline(label)
    load = Load(url=lambda: stack.url("ingest"), headers=stack.officer, seed=year, year=year).start()
    try:
        load.wait_for_acks(30, 90, "warm-up")
        timeline.mark("warm-up")
        pids = {name: stack.proc(name).pid for name in services.SERVICES}

        proxy.delay(DELAY_S[dependency])
        before = load.acked_ids()
        load.wait_for_acks(20, 60, f"acknowledgements while {label} is slow")
        acked_while_slow = load.acked_ids() - before  # fixed: the load outpaces a slow link
        try:
            eventually(lambda: validated(stack, acked_while_slow), timeout=90, interval=1.0,
                       what=f"submissions reaching the views through the slow {label}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {service}: {progress(stack, service)}") from None
        timeline.mark(f"link slowed by {DELAY_S[dependency]}s each way: still moving")
        proxy.restore()
        cut = time.monotonic()
        proxy.blackhole()
        wait_not_ready(stack, service, dependency, 30, f"{service} reporting its {dependency} unreachable")
        before_cut = load.acked_ids()
        load.wait_for_acks(20, 30, f"ingest acknowledging while {label} is cut")
        acked_during_cut = load.acked_ids() - before_cut
        assert not any(validated(stack, {sid}) for sid in sorted(acked_during_cut)[:5]), \
            "submissions were decided and reached the views through a cut link"
        time.sleep(max(0.0, CUT_S - (time.monotonic() - cut)))  # the outage itself
        timeline.mark(f"link cut {CUT_S:.0f}s: {service} not ready, ingest still acknowledging")
        proxy.restore()
        wait_ready(stack, service, 60, f"{service} ready again after the link came back")
        eventually(lambda: validated(stack, acked_during_cut), timeout=60, interval=1.0,
                   what="what was acknowledged during the cut in the views")
        timeline.mark("link restored: caught up")

        assert all(stack.alive().values()), f"a service exited instead of recovering: {stack.alive()}"
        assert {name: stack.proc(name).pid for name in services.SERVICES} == pids, "a service was restarted"
    finally:
        proxy.restore()
        load.stop()

    assert not load.unexpected, load.unexpected[:5]
    figures = verify_exactly_once(stack, load, f"{label} cut {CUT_S:.0f}s, then slowed")
    timeline.mark("views exact")
    assert figures.unacknowledged == 0
    assert figures.duplicates == 0 and figures.missing == 0
    timeline.report()


KILLS = 6


def test_validate_killed_mid_transaction_decides_no_received_event_twice(
        fault_infra: FaultInfra, fault_stack: FaultStack) -> None:
    """Validate's link to the broker is slowed so that each transaction spans several round trips, and under load
    it is killed (-9) six times, each the moment the broker holds decisions of a transaction still open, so that
    those are aborted; then every received event has exactly one committed decision."""
    stack = fault_stack
    reroute(fault_infra, stack, broker="validate")
    timeline = Timeline("validate killed mid-transaction")
    topics = Topics.under(stack.namespace)
    bootstrap = fault_infra.broker.bootstrap
    load = Load(url=lambda: stack.url("ingest"), headers=stack.officer, seed=23, year=2012).start()
    fault_infra.proxy.delay(0.3)  # each transaction then stays open for several round trips, where kills land
    open_at_kill: list[int] = []
    try:
        load.wait_for_acks(30, 90, "warm-up")
        timeline.mark("warm-up")
        with asyncio.Runner() as runner:
            watch = TransactionWatch(bootstrap, [topics.validated, topics.rejected])
            runner.run(watch.start())
            try:
                for kill in range(KILLS):
                    open_at_kill.append(eventually(
                        lambda: runner.run(watch.open_records()), timeout=60, interval=0.02,
                        what=f"decisions of a transaction still open on the broker, before kill -9 {kill + 1}"))
                    stack.kill("validate")
                    stack.start("validate")
                    timeline.mark(f"kill -9 inside a transaction ({open_at_kill[-1]} records open) and restart "
                                  f"validate ({kill + 1})")
                    load.wait_for_acks(20, 90, f"after kill -9 {kill + 1} of validate")
            finally:
                runner.run(watch.stop())
    finally:
        fault_infra.proxy.restore()
        load.stop()

    assert not load.unexpected, load.unexpected[:5]
    figures = verify_exactly_once(stack, load, "kill -9 validate mid-transaction")
    timeline.mark("views exact")
    assert figures.unacknowledged == 0
    assert figures.duplicates == 0 and figures.missing == 0

    def decisions_of(isolation: Isolation) -> tuple[dict[tuple[int, int], str], Counter[tuple[int, int]]]:
        seen = asyncio.run(read_records(bootstrap, list(topics.all()), isolation))
        received = {(p, o): orjson.loads(v)["id"] for p, o, v in seen[topics.received]}
        decided = Counter((d["received"]["partition"], d["received"]["seq"])
                          for topic in (topics.validated, topics.rejected)
                          for d in (orjson.loads(v) for _, _, v in seen[topic]))
        return received, decided

    def all_decided() -> tuple[dict[tuple[int, int], str], Counter[tuple[int, int]]] | None:
        found = decisions_of("read_committed")
        return found if set(found[0]) <= set(found[1]) else None

    received, decided = eventually(all_decided, timeout=60, interval=2.0,
                                   what="a committed decision for every received event")
    _, uncommitted = decisions_of("read_uncommitted")
    twice = sorted(event for event, n in decided.items() if n > 1)
    aborted = sum(uncommitted.values()) - sum(decided.values())
    line = (f"kill -9 validate mid-transaction x{KILLS}: acknowledged {len(load.acked)}, "
            f"received events {len(received)}, "
            f"committed decisions {sum(decided.values())}, decided twice {len(twice)}, "
            f"decisions of unknown events {len(set(decided) - set(received))}, "
            f"acknowledged but not received {len(load.acked - set(received.values()))}, "
            f"aborted decision records {aborted} (open at the kills: {open_at_kill})")
    FIGURES.append(line)
    print(line)
    assert not twice, twice[:5]
    assert set(decided) == set(received), line
    assert load.acked <= set(received.values()), line
    assert aborted > 0, f"the kills inside transactions left no aborted decision: {line}"
    timeline.report()


@pytest.mark.xfail(reason="after 15 s with its broker link black-holed, validate rejoins its group but then stops "
                          "deciding, with no retry logged, until it is restarted")
def test_a_cut_or_slow_link_of_validate_to_the_broker_heals_without_a_restart_and_loses_nothing(
        fault_infra: FaultInfra, fault_stack: FaultStack) -> None:
    """Last in the module: while the failure stands, it leaves a backlog that would slow the tests after it."""
    cut_and_slow(fault_infra, fault_stack, "validate", "broker", 2015)
