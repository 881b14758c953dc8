"""Topic set-up on the real broker: the layout asked for, retention that keeps every event, clear refusals."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.errors import InfrastructureUnavailable
from shared.kafka import ensure_topics
from shared.topics import TopicLayout
from tests.conftest import Infra


async def described(bootstrap: str, topic: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The topic's partitions (leader, replicas) and its effective configuration, as the broker reports them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        [description] = await admin.describe_topics([topic])
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        [(_, _, _, _, entries)] = response.resources
        return description["partitions"], {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()


async def test_topics_are_created_with_the_layout_asked_for_and_keep_every_event(infra: Infra) -> None:
    topic = f"layout-{uuid.uuid4().hex[:8]}"
    layout = TopicLayout(partitions=4, replication_factor=1, min_insync_replicas=1)
    await ensure_topics(infra.bootstrap, [topic], layout)
    partitions, config = await described(infra.bootstrap, topic)
    assert len(partitions) == 4
    assert all(len(p["replicas"]) == 1 and p["leader"] >= 0 for p in partitions)
    assert config["min.insync.replicas"] == "1"
    assert config["retention.ms"] == "-1"
    assert config["retention.bytes"] == "-1"


async def test_topics_that_exist_already_are_left_as_they_are(infra: Infra) -> None:
    topic = f"layout-{uuid.uuid4().hex[:8]}"
    await ensure_topics(infra.bootstrap, [topic], TopicLayout(partitions=2))
    await ensure_topics(infra.bootstrap, [topic], TopicLayout(partitions=5))
    partitions, _ = await described(infra.bootstrap, topic)
    assert len(partitions) == 2


async def test_more_copies_than_brokers_is_refused_with_the_brokers_reason(infra: Infra) -> None:
    topic = f"layout-{uuid.uuid4().hex[:8]}"
    with pytest.raises(InfrastructureUnavailable, match=rf"{topic}.*replication factor"):
        await ensure_topics(infra.bootstrap, [topic], TopicLayout(3, replication_factor=3, min_insync_replicas=2),
                            attempts=1)
