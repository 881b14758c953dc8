"""validate on the real broker: one decision per received event, exactly once across restarts."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from prometheus_client import REGISTRY

from services.validate.settings import ValidateSettings
from services.validate.worker import ValidateWorker
from shared.envelope import SubmissionReceived, dumps
from tests.conftest import Infra
from tests.factories import seizure_data


async def committed(infra: Infra, topics: list[str], expected: int,
                    settle_ms: int = 1500) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record on `topics`, read until `expected` arrived and nothing more comes."""
    consumer = AIOKafkaConsumer(*topics, bootstrap_servers=infra.bootstrap, auto_offset_reset="earliest",
                                group_id=f"g-{uuid.uuid4().hex}", isolation_level="read_committed")
    await consumer.start()
    got: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(60):
            while True:
                batch = await consumer.getmany(timeout_ms=settle_ms if len(got) >= expected else 5000)
                if not batch and len(got) >= expected:
                    return got
                got += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()


async def decisions(infra: Infra, topics: list[str], expected: int) -> list[dict[str, Any]]:
    """Every committed event on `topics`, decoded, with the topic it is on as `_topic`."""
    return [orjson.loads(r.value or b"") | {"_topic": r.topic} for r in await committed(infra, topics, expected)]


async def test_each_received_event_gets_exactly_one_decision_across_a_restart(infra: Infra) -> None:
    namespace = f"v{uuid.uuid4().hex[:8]}"
    settings = ValidateSettings(kafka_bootstrap_servers=infra.bootstrap, topic_namespace=namespace,
                                group_id=f"{namespace}-validate", transactional_id=f"{namespace}-tx")
    topics = settings.topics
    ids = [str(uuid.uuid4()) for _ in range(40)]
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap, enable_idempotence=True)
    worker = ValidateWorker(settings)
    await worker.start()
    await producer.start()
    try:
        for index, sid in enumerate(ids):
            data = seizure_data(quantity=-1 if index % 4 == 0 else 10)
            event = SubmissionReceived(id=sid, type="seizure", schema_version=1, data=data, submitted_by="t",
                                       received_at=datetime.now(UTC), trace_id="1" * 32)
            await producer.send_and_wait(topics.received, dumps(event), key=sid.encode())
            if index == 19:  # restart halfway: committed work must not be redone
                await worker.stop()
                worker = ValidateWorker(settings)
                await worker.start()
        got = await decisions(infra, [topics.validated, topics.rejected], expected=len(ids))
    finally:
        await producer.stop()
        await worker.stop()

    assert sorted(e["id"] for e in got) == sorted(ids)
    rejected = {e["id"] for e in got if e["_topic"] == topics.rejected}
    assert rejected == {sid for index, sid in enumerate(ids) if index % 4 == 0}
    for decision in got:
        if decision["_topic"] == topics.rejected:
            assert decision["original"]["data"]["quantity"] == -1
            assert [e["loc"] for e in decision["errors"]] == [["data", "quantity"]]
        else:
            assert decision["data"]["normalised"] == {"quantity": 0.01, "unit": "kg", "rules": "units.v1",
                                                  "submitted_schema_version": 1}


async def test_unreadable_event_is_rejected_not_dropped(infra: Infra) -> None:
    namespace = f"v{uuid.uuid4().hex[:8]}"
    settings = ValidateSettings(kafka_bootstrap_servers=infra.bootstrap, topic_namespace=namespace,
                                group_id=f"{namespace}-validate", transactional_id=f"{namespace}-tx")
    worker = ValidateWorker(settings)
    await worker.start()
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topics.received, b"{not json", key=b"k1")
        [event] = await decisions(infra, [settings.topics.rejected], expected=1)
    finally:
        await producer.stop()
        await worker.stop()
    assert event["id"] == "k1"
    assert event["original"] == {"raw": "{not json"}
    assert event["errors"][0]["type"] == "malformed_event"


async def test_each_committed_batch_reports_where_its_time_went(infra: Infra) -> None:
    namespace = f"v{uuid.uuid4().hex[:8]}"
    settings = ValidateSettings(kafka_bootstrap_servers=infra.bootstrap, topic_namespace=namespace,
                                group_id=f"{namespace}-validate", transactional_id=f"{namespace}-tx")
    phases = ("decide", "send", "offsets", "commit")

    def sample(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    def phase_totals() -> dict[str, tuple[float, float]]:
        return {p: (sample("dmp_validate_batch_phase_seconds_count", phase=p),
                    sample("dmp_validate_batch_phase_seconds_sum", phase=p)) for p in phases}

    before = phase_totals()
    batch_before = sample("dmp_consumer_batch_seconds_sum", service="validate")
    worker = ValidateWorker(settings)
    await worker.start()
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap)
    await producer.start()
    try:
        for _ in range(5):
            sid = str(uuid.uuid4())
            event = SubmissionReceived(id=sid, type="seizure", schema_version=1, data=seizure_data(), submitted_by="t",
                                       received_at=datetime.now(UTC), trace_id="1" * 32)
            await producer.send_and_wait(settings.topics.received, dumps(event), key=sid.encode())
        await decisions(infra, [settings.topics.validated], expected=5)
    finally:
        await producer.stop()
        await worker.stop()
    after = phase_totals()
    batches = {after[p][0] - before[p][0] for p in phases}
    assert len(batches) == 1 and batches.pop() >= 1  # every phase once per committed batch
    spent = sum(after[p][1] - before[p][1] for p in phases)
    assert 0 < spent <= sample("dmp_consumer_batch_seconds_sum", service="validate") - batch_before
