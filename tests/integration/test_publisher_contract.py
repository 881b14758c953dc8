"""KafkaPublisher and InMemoryPublisher honour one contract, so the fake cannot drift from the broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer

from shared.errors import InfrastructureUnavailable
from shared.kafka import InMemoryPublisher, KafkaPublisher, Publisher, ensure_topics
from tests.conftest import Infra


async def read_back(infra: Infra, topic: str, count: int) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=infra.bootstrap, auto_offset_reset="earliest",
                                group_id=f"g-{uuid.uuid4().hex}", enable_auto_commit=False)
    await consumer.start()
    try:
        got: list[tuple[str, bytes, list[tuple[str, bytes]]]] = []
        while len(got) < count:
            batch = await consumer.getmany(timeout_ms=10_000)
            assert batch, "nothing arrived within 10s"
            got += [(r.key.decode(), r.value, list(r.headers)) for rs in batch.values() for r in rs]
        return got
    finally:
        await consumer.stop()


@pytest.fixture(params=["kafka", "memory"])
async def publisher(request: pytest.FixtureRequest, infra: Infra) -> AsyncIterator[tuple[Publisher, str]]:
    topic = f"contract-{uuid.uuid4().hex[:8]}"
    if request.param == "memory":
        yield InMemoryPublisher(), topic
        return
    await ensure_topics(infra.bootstrap, [topic], 3)
    kafka = KafkaPublisher(infra.bootstrap, timeout=10)
    await kafka.start()
    try:
        yield kafka, topic
    finally:
        await kafka.stop()


async def published(publisher: Publisher, infra: Infra, topic: str,
                    count: int) -> list[tuple[str, bytes, list[tuple[str, bytes]]]]:
    if isinstance(publisher, InMemoryPublisher):
        return [(r.key, r.value, r.headers) for r in publisher.records if r.topic == topic]
    return await read_back(infra, topic, count)


async def test_publish_returns_once_the_event_is_stored_with_key_and_headers(
        publisher: tuple[Publisher, str], infra: Infra) -> None:
    pub, topic = publisher
    await pub.publish(topic, "id-1", b'{"n": 1}', [("ce_type", b"t")])
    await pub.publish(topic, "id-1", b'{"n": 2}', [("ce_type", b"t")])
    got = await published(pub, infra, topic, 2)
    assert [(k, v) for k, v, _ in got] == [("id-1", b'{"n": 1}'), ("id-1", b'{"n": 2}')]
    assert all(("ce_type", b"t") in h for _, _, h in got)
    assert await pub.ready()


async def test_publish_to_an_unreachable_broker_raises_within_the_timeout(infra: Infra) -> None:
    from infra.proc import free_port

    kafka = KafkaPublisher(f"127.0.0.1:{free_port()}", timeout=1)
    with pytest.raises(InfrastructureUnavailable):
        await kafka.start()
    dead = InMemoryPublisher(fail=True)
    with pytest.raises(InfrastructureUnavailable):
        await dead.publish("t", "k", b"v")
    assert not await dead.ready()
