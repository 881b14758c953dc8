"""Under steady load: kill -9 the store and restart it on its data; cut and slow validate's and aggregate's
links to the broker and aggregate's link to the store; kill -9 validate mid-transaction and read the topics.
Nothing acknowledged is lost or doubled, and no received event is decided twice.

Each test sends seizures of a year of its own, so each is checked against an oracle of its own.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import orjson
import pytest

from infra import services
from services.validate.transactions import Transactions
from shared.kafka import ensure_topics
from shared.topics import Topics
from tests.conftest import eventually
from tests.faults.conftest import (
    FIGURES,
    FaultInfra,
    FaultStack,
    Timeline,
    assert_exactly_once,
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

    assert_exactly_once(stack, load, "kill -9 the store, restart it on its data", timeline)
    eventually(lambda: stack.metric("aggregate", "dmp_consumer_lag") == 0, timeout=60,
               what="aggregate's lag back to zero")
    timeline.report()


ABORT_BOUND_S = 2.0
"""How long the test's transactions may take to abort (their producers' close timeout)."""


async def test_a_transaction_cut_off_from_the_broker_gives_up_by_its_deadline_and_the_next_one_commits(
        fault_infra: FaultInfra) -> None:
    """An abort waits until the broker has every record the transaction sent: with the link cut, for as long as the
    cut lasts, and nothing cancels it when the error being handled is the batch's own deadline. It gives up after
    the abort bound instead, so the worker gets its error back and retries; new producers then fence the old ones
    and their transaction commits, the cut-off one aborted."""
    bootstrap, proxied = fault_infra.broker.bootstrap, fault_infra.broker.proxied_bootstrap
    assert proxied is not None
    topic = f"t{uuid.uuid4().hex[:10]}"
    await ensure_topics(bootstrap, [topic], 1)
    transactions = Transactions(proxied, f"{topic}-tx", close_timeout_s=ABORT_BOUND_S)
    await transactions.start()
    deadline_s = 1.0

    async def cut_off() -> None:
        async with asyncio.timeout(deadline_s), transactions.transaction() as producer:
            await (await producer.send(topic, b"cut off", key=b"k"))

    fault_infra.proxy.blackhole()
    try:
        attempt = asyncio.create_task(cut_off())
        done, _ = await asyncio.wait([attempt], timeout=deadline_s + ABORT_BOUND_S + 5.0)
    finally:
        fault_infra.proxy.restore()
    assert done, "the transaction was still aborting well after its deadline and the abort bound"
    with pytest.raises(TimeoutError):
        attempt.result()

    await transactions.close()
    await transactions.start()
    async with transactions.transaction() as producer:
        await (await producer.send(topic, b"after the cut", key=b"k"))
    await transactions.close()
    seen = await read_records(bootstrap, [topic], "read_committed")
    assert [value for _, _, value in seen[topic]] == [b"after the cut"]


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

    assert_exactly_once(stack, load, f"{label} cut {CUT_S:.0f}s, then slowed", timeline)
    timeline.report()


Decisions = tuple[dict[tuple[int, int], str], Counter[tuple[int, int]]]
"""The received events' ids by (partition, offset), and how many decisions name each (partition, offset)."""


def decisions(bootstrap: str, topics: Topics, isolation: Isolation) -> Decisions:
    """The received events and their decisions as a consumer with `isolation` reads the topics now."""
    seen = asyncio.run(read_records(bootstrap, list(topics.all()), isolation))
    received = {(p, o): orjson.loads(v)["id"] for p, o, v in seen[topics.received]}
    decided = Counter((d["received"]["partition"], d["received"]["seq"])
                      for topic in (topics.validated, topics.rejected)
                      for d in (orjson.loads(v) for _, _, v in seen[topic]))
    return received, decided


def decided_once(bootstrap: str, topics: Topics) -> Decisions:
    """Wait until every received event has a committed decision; then none may have two, nor any decision name an
    event that was not received."""

    def all_decided() -> Decisions | None:
        found = decisions(bootstrap, topics, "read_committed")
        return found if set(found[0]) <= set(found[1]) else None

    received, decided = eventually(all_decided, timeout=60, interval=2.0,
                                   what="a committed decision for every received event")
    twice = sorted(event for event, n in decided.items() if n > 1)
    line = (f"received events {len(received)}, committed decisions {sum(decided.values())}, decided twice "
            f"{len(twice)}, decisions of unknown events {len(set(decided) - set(received))}")
    FIGURES.append(line)
    print(line)
    assert not twice, f"{line}: {twice[:5]}"
    assert set(decided) == set(received), line
    return received, decided


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

    assert_exactly_once(stack, load, "kill -9 validate mid-transaction", timeline)

    received, decided = decided_once(bootstrap, topics)
    _, uncommitted = decisions(bootstrap, topics, "read_uncommitted")
    aborted = sum(uncommitted.values()) - sum(decided.values())
    line = (f"kill -9 validate mid-transaction x{KILLS}: acknowledged {len(load.acked)}, "
            f"received events {len(received)}, "
            f"committed decisions {sum(decided.values())}, "
            f"acknowledged but not received {len(load.acked - set(received.values()))}, "
            f"aborted decision records {aborted} (open at the kills: {open_at_kill})")
    FIGURES.append(line)
    print(line)
    assert load.acked <= set(received.values()), line
    assert aborted > 0, f"the kills inside transactions left no aborted decision: {line}"
    timeline.report()


def test_a_cut_or_slow_link_of_validate_to_the_broker_heals_without_a_restart_and_decides_each_event_once(
        fault_infra: FaultInfra, fault_stack: FaultStack) -> None:
    """The group forgets validate during the cut while a transaction of its may be open; once back, validate
    rejoins and goes on from the offsets that transaction committed, deciding nothing twice."""
    cut_and_slow(fault_infra, fault_stack, "validate", "broker", 2015)
    decided_once(fault_infra.broker.bootstrap, Topics.under(fault_stack.namespace))
