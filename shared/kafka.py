"""Broker adapters: the `Publisher` port, its Kafka and in-memory implementations, topic setup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from prometheus_client import Counter

from shared.errors import InfrastructureUnavailable

log = logging.getLogger(__name__)

EVENTS_PRODUCED = Counter("dmp_events_produced_total", "Events produced", ["service", "topic"])

Headers = Sequence[tuple[str, bytes]]

TOPIC_CONFIG = {
    # Views are rebuilt by replaying these topics from the start: keep every event.
    "retention.ms": "-1",
    "retention.bytes": "-1",
}


@dataclass(frozen=True)
class Outbound:
    """One event to publish."""

    topic: str
    key: str
    value: bytes
    headers: Headers = ()


class Publisher(Protocol):
    """Puts events on topics and returns only once the broker has acknowledged them."""

    async def publish(self, topic: str, key: str, value: bytes, headers: Headers = ()) -> None: ...

    async def publish_many(self, events: Sequence[Outbound]) -> list[InfrastructureUnavailable | None]:
        """Publish in order (events with one key keep their order); one outcome per event, None = stored."""
        ...

    async def ready(self) -> bool: ...


@dataclass
class PublishedRecord:
    topic: str
    key: str
    value: bytes
    headers: list[tuple[str, bytes]]


@dataclass
class InMemoryPublisher:
    """Keeps published events in a list; `fail` makes it behave like an unreachable broker."""

    records: list[PublishedRecord] = field(default_factory=list)
    fail: bool = False

    async def publish(self, topic: str, key: str, value: bytes, headers: Headers = ()) -> None:
        if self.fail:
            raise InfrastructureUnavailable("broker unavailable")
        self.records.append(PublishedRecord(topic, key, value, list(headers)))

    async def publish_many(self, events: Sequence[Outbound]) -> list[InfrastructureUnavailable | None]:
        outcomes: list[InfrastructureUnavailable | None] = []
        for event in events:
            try:
                await self.publish(event.topic, event.key, event.value, event.headers)
                outcomes.append(None)
            except InfrastructureUnavailable as exc:
                outcomes.append(exc)
        return outcomes

    async def ready(self) -> bool:
        return not self.fail


class KafkaPublisher:
    """An idempotent `acks=all` producer; `publish` waits for the broker's acknowledgement."""

    def __init__(self, bootstrap_servers: str, timeout: float = 10.0, linger_ms: int = 2) -> None:
        self.timeout = timeout
        self.producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            linger_ms=linger_ms,
            request_timeout_ms=int(timeout * 1000),
            max_request_size=1_048_576,
        )

    async def start(self) -> None:
        try:
            await self.producer.start()
        except (KafkaError, OSError) as exc:
            await self.producer.stop()
            raise InfrastructureUnavailable(f"cannot connect to the broker: {exc!r}") from exc

    async def stop(self) -> None:
        await self.producer.stop()

    async def publish(self, topic: str, key: str, value: bytes, headers: Headers = ()) -> None:
        [outcome] = await self.publish_many([Outbound(topic, key, value, headers)])
        if outcome is not None:
            raise outcome

    async def publish_many(self, events: Sequence[Outbound]) -> list[InfrastructureUnavailable | None]:
        """Enqueue every event in order, then wait for the acknowledgements together, within the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        futures: list[asyncio.Future[Any]] = []
        problem: BaseException | None = None
        try:
            async with asyncio.timeout(self.timeout):
                for event in events:
                    futures.append(await self.producer.send(
                        event.topic, value=event.value, key=event.key.encode(), headers=list(event.headers)))
        except (KafkaError, TimeoutError) as exc:
            problem = exc
        if futures:
            await asyncio.wait(futures, timeout=max(0.0, deadline - loop.time()))
        outcomes: list[InfrastructureUnavailable | None] = []
        for index in range(len(events)):
            future = futures[index] if index < len(futures) else None
            if future is not None and future.done() and not future.cancelled() and future.exception() is None:
                outcomes.append(None)
                continue
            cause = (future.exception() if future is not None and future.done() and not future.cancelled()
                     else problem) or TimeoutError()
            outcomes.append(InfrastructureUnavailable(
                f"broker did not acknowledge within {self.timeout:g}s: {cause!r}"))
        return outcomes

    async def ready(self) -> bool:
        return await broker_reachable(self.producer.client)


async def broker_reachable(client: object, timeout: float = 3.0) -> bool:
    """True when a metadata request through an aiokafka client succeeds in time."""
    try:
        async with asyncio.timeout(timeout):
            return bool(await client.fetch_all_metadata())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


async def ensure_topics(bootstrap_servers: str, topics: Sequence[str], partitions: int,
                        attempts: int = 30) -> None:
    """Create the topics if missing (one replica, unlimited retention); retry while the broker starts."""
    for attempt in range(1, attempts + 1):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics([NewTopic(t, partitions, 1, topic_configs=TOPIC_CONFIG) for t in missing])
            await wait_for_leaders(admin, topics)
            return
        except (KafkaError, OSError) as exc:
            if attempt == attempts:
                raise InfrastructureUnavailable(f"could not create topics on {bootstrap_servers}: {exc!r}") from exc
            log.warning("broker not ready for topic setup, retrying", extra={"attempt": attempt, "error": repr(exc)})
            await asyncio.sleep(min(0.2 * attempt, 2.0))
        finally:
            await admin.close()


async def wait_for_leaders(admin: AIOKafkaAdminClient, topics: Sequence[str], timeout: float = 30.0) -> None:
    """Return once every partition of `topics` has a leader (new topics take a moment)."""
    async with asyncio.timeout(timeout):
        while True:
            described = await admin.describe_topics(list(topics))
            if all(t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"])
                   for t in described):
                return
            await asyncio.sleep(0.1)


def build_consumer(bootstrap_servers: str, topics: Sequence[str], group_id: str,
                   max_poll_records: int = 500) -> AIOKafkaConsumer:
    """A consumer that commits by hand and only sees committed transactional data."""
    return AIOKafkaConsumer(
        *topics,
        bootstrap_servers=bootstrap_servers,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_poll_records,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
    )
