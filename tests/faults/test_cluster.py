"""On a three-broker cluster (three copies, two needed), under steady load of all five types with amendments:
kill -9 the leaders' broker, restart all three in turn, stop two. Nothing acknowledged is lost or doubled,
and no received event is decided twice.

Each phase sends its own year of seizures, so each is checked against an oracle of its own.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra import kafka, services, store
from infra.proc import VAR
from shared.topics import Topics
from tests.conftest import all_services, eventually
from tests.faults.conftest import (
    ANSWER_BOUND_S,
    FIGURES,
    PUBLISH_TIMEOUT_S,
    FaultStack,
    Timeline,
    keep_logs,
    verify_exactly_once,
    wait_ready,
)
from tests.faults.load import Load
from tests.faults.records import read_records

pytestmark = [pytest.mark.faults, pytest.mark.cluster]

COPIES = 3


@dataclass
class ClusterInfra:
    """Three brokers and a store that this module alone uses; every service connects to all three brokers."""

    base: Path
    cluster: kafka.Cluster
    store: store.Store

    def bootstrap_for(self, name: str) -> str:
        return self.cluster.bootstrap

    def store_url_for(self, name: str) -> str:
        return self.store.url

    @property
    def topic_env(self) -> dict[str, str]:
        return {"DMP_TOPIC_REPLICATION_FACTOR": str(COPIES), "DMP_TOPIC_MIN_INSYNC_REPLICAS": str(COPIES - 1)}


@pytest.fixture(scope="module")
def cluster_infra(request: pytest.FixtureRequest) -> Iterator[ClusterInfra]:
    base = VAR / "test" / f"cluster-{uuid.uuid4().hex[:10]}"
    local_store = store.start(base / "store")
    try:
        cluster = kafka.start_cluster(base, size=COPIES, timeout=240)
    except BaseException:
        local_store.stop()
        raise
    infra = ClusterInfra(base, cluster, local_store)
    try:
        yield infra
    finally:
        infra.cluster.kill()  # the data is deleted below: no need for a controlled shutdown
        local_store.stop()
        keep_logs(base, "test_cluster")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster_stack(cluster_infra: ClusterInfra) -> Iterator[FaultStack]:
    with all_services(FaultStack(cluster_infra, f"c{uuid.uuid4().hex[:10]}", cluster_infra.base / "stack")) as stack:
        yield stack


def topics_of(stack: FaultStack) -> Topics:
    return Topics.under(stack.namespace)


def describe(bootstrap: str, topics: list[str]) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            return list(await admin.describe_topics(topics))
        finally:
            await admin.close()

    return asyncio.run(run())


def leaders(bootstrap: str, topics: list[str]) -> Counter[int]:
    """How many partitions of `topics` each broker leads."""
    return Counter(p["leader"] for t in describe(bootstrap, topics) for p in t["partitions"])


def fully_replicated(bootstrap: str, topics: list[str]) -> bool:
    """Every partition of `topics` has a leader and all its copies in sync."""
    try:
        described = describe(bootstrap, topics)
    except Exception:  # a broker still starting answers nothing useful yet
        return False
    return all(t["error_code"] == 0 and t["partitions"]
               and all(p["leader"] >= 0 and len(p["isr"]) == COPIES for p in t["partitions"]) for t in described)


def wait_fully_replicated(infra: ClusterInfra, stack: FaultStack, timeout: float = 120.0) -> None:
    watched = [*topics_of(stack).all(), "__consumer_offsets", "__transaction_state"]
    eventually(lambda: fully_replicated(infra.cluster.bootstrap, watched), timeout=timeout, interval=1.0,
               what="every partition with all three copies in sync")


@dataclass
class Decisions:
    received: int
    decided: int
    twice: int
    undecided: int
    acked_not_received: int


def decisions(stack: FaultStack, load: Load) -> Decisions:
    """What a read_committed consumer sees: each received event's decisions, and whether every 202 was received."""
    topics = topics_of(stack)
    seen = asyncio.run(read_records(stack.infra.cluster.bootstrap, list(topics.all())))
    received = {(partition, offset): orjson.loads(value)["id"] for partition, offset, value in seen[topics.received]}
    per_event = Counter((d["received"]["partition"], d["received"]["seq"])
                        for topic in (topics.validated, topics.rejected)
                        for d in (orjson.loads(value) for _, _, value in seen[topic]))
    received_ids = set(received.values())
    return Decisions(len(received), sum(per_event.values()), sum(1 for n in per_event.values() if n > 1),
                     sum(1 for event in received if event not in per_event),
                     sum(1 for sid in load.acked if sid not in received_ids))


def verify_phase(stack: FaultStack, load: Load, label: str) -> None:
    """After a phase: the views equal the oracle, every 202 has its latest version decided, no event decided twice."""
    assert not load.unexpected, load.unexpected[:5]
    figures = verify_exactly_once(stack, load, label)
    assert (figures.duplicates, figures.missing) == (0, 0), figures.line()

    def latest_versions_decided() -> list[str]:
        wrong = []
        for sid in sorted(load.acked):
            response = httpx.get(f"{stack.url('aggregate')}/v1/submissions/{sid}", headers=stack.analyst, timeout=10)
            got = response.json() if response.status_code == 200 else {}
            if (got.get("status"), got.get("version")) != ("validated", load.versions[sid]):
                wrong.append(f"{sid}: {got.get('status')} v{got.get('version')}, want v{load.versions[sid]}")
        return wrong

    wrong: list[str] = []

    def all_decided() -> bool:
        wrong[:] = latest_versions_decided()
        return not wrong

    try:
        eventually(all_decided, timeout=60, interval=2.0,
                   what=f"{label}: every acknowledged submission of every type decided at its latest version")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {len(wrong)} not: {wrong[:5]}") from None
    last = eventually(lambda: d if (d := decisions(stack, load)).undecided == 0 else None, timeout=60, interval=2.0,
                      what=f"{label}: a decision for every received event")
    kinds = Counter(load.latest[sid]["type"] for sid in load.acked)
    amended = sum(1 for n in load.versions.values() if n > 1)
    line = (f"{label}: sent {len(load.sent)} ids ({dict(sorted(kinds.items()))}, {amended} amended), "
            f"acknowledged {len(load.acked)}, seizures in views {figures.in_views} (expected "
            f"{figures.expected_in_views}); received events {last.received}, decisions {last.decided}, "
            f"decided twice {last.twice}, acknowledged but not received {last.acked_not_received}")
    FIGURES.append(line)
    print(line)
    assert (last.twice, last.acked_not_received, last.decided) == (0, 0, last.received), line
    assert all(kinds[t] > 0 for t in ("seizure", "price", "financial_case", "treatment_facility", "training")), kinds
    assert amended > 0, "no amendment was acknowledged"


def test_the_services_create_their_topics_with_three_copies_of_which_two_must_hold_a_write(
        cluster_infra: ClusterInfra, cluster_stack: FaultStack) -> None:
    from tests.integration.test_topic_setup import described

    for topic in topics_of(cluster_stack).all():
        partitions, config = asyncio.run(described(cluster_infra.cluster.bootstrap, topic))
        assert partitions and all(len(p["replicas"]) == COPIES for p in partitions), (topic, partitions)
        assert config["min.insync.replicas"] == str(COPIES - 1), topic


def mixed_load(stack: FaultStack, year: int) -> Load:
    return Load(url=lambda: stack.url("ingest"), headers=stack.officer, year=year, mix=True, give_up_s=240).start()


def test_killing_the_leaders_broker_loses_and_doubles_nothing(cluster_infra: ClusterInfra,
                                                              cluster_stack: FaultStack) -> None:
    stack, cluster = cluster_stack, cluster_infra.cluster
    timeline = Timeline("cluster: kill -9 the leaders' broker")
    load = mixed_load(stack, 2011)
    try:
        load.wait_for_acks(60, 120, "warm-up")
        timeline.mark("warm-up")
        led = leaders(cluster.bootstrap, list(topics_of(stack).all()))
        victim = cluster.node(led.most_common(1)[0][0])
        victim.kill()
        timeline.mark(f"kill -9 broker {victim.node_id} (leader of {led[victim.node_id]} partitions)")
        load.wait_for_acks(40, 120, "with the leaders' broker dead")
        timeline.mark("acks again on two brokers")
        kafka.restart(victim, timeout=180)
        cluster.wait_complete()
        wait_fully_replicated(cluster_infra, stack)
        timeline.mark(f"broker {victim.node_id} back and in sync")
        load.wait_for_acks(40, 120, "after the broker came back")
        timeline.mark("acks again")
    finally:
        load.stop()
    verify_phase(stack, load, "cluster: kill -9 the leaders' broker")
    timeline.mark("views exact")
    timeline.report()


def test_a_rolling_restart_of_all_three_brokers_loses_and_doubles_nothing(cluster_infra: ClusterInfra,
                                                                          cluster_stack: FaultStack) -> None:
    stack, cluster = cluster_stack, cluster_infra.cluster
    timeline = Timeline("cluster: rolling restart")
    load = mixed_load(stack, 2012)
    try:
        load.wait_for_acks(60, 120, "warm-up")
        timeline.mark("warm-up")
        for broker in cluster.brokers:
            broker.stop()
            kafka.restart(broker, timeout=180)
            cluster.wait_complete()
            wait_fully_replicated(cluster_infra, stack)
            timeline.mark(f"broker {broker.node_id} restarted and in sync")
            load.wait_for_acks(20, 120, f"after broker {broker.node_id} restarted")
        timeline.mark("acks again")
    finally:
        load.stop()
    verify_phase(stack, load, "cluster: rolling restart")
    timeline.mark("views exact")
    timeline.report()


def test_with_two_brokers_stopped_ingest_answers_503_and_recovers_by_itself(cluster_infra: ClusterInfra,
                                                                           cluster_stack: FaultStack) -> None:
    stack, cluster = cluster_stack, cluster_infra.cluster
    timeline = Timeline("cluster: two brokers stopped")
    ingest_pid = stack.proc("ingest").pid
    load = mixed_load(stack, 2013)
    try:
        load.wait_for_acks(60, 120, "warm-up")
        timeline.mark("warm-up")
        stopped = cluster.brokers[:2]
        for broker in stopped:
            broker.stop()
        both_down = time.monotonic()
        timeline.mark(f"brokers {[b.node_id for b in stopped]} stopped")
        eventually(lambda: sum(a.status == 503 for a in load.answers_since(both_down)) >= 10, timeout=60,
                   what="503 answers with one broker left")
        timeline.mark("503s seen")
        # Only one copy can be written: a 202 now would be a promise one broker's loss could break.
        settled = both_down + PUBLISH_TIMEOUT_S + 1.0
        outage_answers = load.answers_since(settled)
        assert not [a for a in outage_answers if a.status == 202], "a 202 with only one broker up"
        refused = [a for a in outage_answers if a.status == 503]
        assert refused and all(a.retry_after for a in refused), "every 503 carries Retry-After"
        assert all(a.seconds <= ANSWER_BOUND_S for a in refused), max(a.seconds for a in refused)
        for broker in stopped:
            kafka.launch(broker)
        cluster.wait_complete(timeout=240)
        timeline.mark("brokers back")
        load.wait_for_acks(40, 180, "after the brokers came back")
        timeline.mark("acks again")
        wait_fully_replicated(cluster_infra, stack)
        for name in services.SERVICES:
            wait_ready(stack, name, 90, f"{name} ready again")
        timeline.mark("all ready")
    finally:
        load.stop()
    assert stack.proc("ingest").pid == ingest_pid and stack.alive()["ingest"], "ingest recovered without a restart"
    verify_phase(stack, load, "cluster: two brokers stopped")
    timeline.mark("views exact")
    timeline.report()

