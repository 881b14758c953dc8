"""Broker adapters: the `Publisher` port, its Kafka and in-memory implementations, topic setup."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from prometheus_client import Counter

from shared.errors import InfrastructureUnavailable
from shared.lifecycle import StopRequested, sleep_unless_stopped
from shared.topics import TopicLayout

log = logging.getLogger(__name__)

EVENTS_PRODUCED = Counter("dmp_events_produced_total", "Events produced", ["service", "topic"])
EVENTS_REJECTED = Counter("dmp_events_rejected_total", "Events consumed from `topic` and rejected",
                          ["service", "topic"])
PRODUCERS_REPLACED = Counter("dmp_kafka_producers_replaced_total",
                             "Producers replaced because they could not deliver although the broker answered")

Headers = Sequence[tuple[str, bytes]]

TOPIC_CONFIG = {
    # Views are rebuilt by replaying these topics from the start: keep every event.
    "retention.ms": "-1",
    "retention.bytes": "-1",
}


_M = 0x5BD1E995
_WORDS = [struct.Struct(f"<{n}I") for n in range(33)]
"""Little-endian 32-bit words of a key of up to 131 bytes (ids are 36)."""


def murmur2(key: bytes) -> int:
    """Kafka's murmur2 hash of `key`, as the Java client and aiokafka compute it (`aiokafka.partitioner.murmur2`),
    a word at a time instead of a byte at a time, since it runs once per event produced."""
    length = len(key)
    n = length >> 2
    h = 0x9747B28C ^ length
    for k in (_WORDS[n] if n < len(_WORDS) else struct.Struct(f"<{n}I")).unpack_from(key):
        k = (k * _M) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * _M) & 0xFFFFFFFF
        h = ((h * _M) & 0xFFFFFFFF) ^ k
    tail = length & 3
    if tail:
        if tail == 3:
            h ^= key[n * 4 + 2] << 16
        if tail >= 2:
            h ^= key[n * 4 + 1] << 8
        h = ((h ^ key[n * 4]) * _M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * _M) & 0xFFFFFFFF
    return h ^ (h >> 15)


def partition_for(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's (and Kafka's) default partitioner with the faster `murmur2`: a key goes to the same
    partition as with any other Kafka client; events without a key to any available partition."""
    if key is None:
        return random.choice(available or all_partitions)  # noqa: S311 - load spreading, not a secret
    return all_partitions[(murmur2(key) & 0x7FFFFFFF) % len(all_partitions)]


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
    """An idempotent `acks=all` producer; `publish` waits for the broker's acknowledgement, never beyond `timeout`.

    A watchdog checks the broker every `probe_interval` seconds. While the broker does not answer and
    publishing fails, `publish` fails at once (the caller answers 503) instead of holding every request
    for `timeout`. aiokafka's idempotent producer retries its batches forever and can stay wedged after
    a long outage, so a producer that keeps failing for `recreate_after` seconds although the broker
    answers again, or whose sender task died, is replaced by a new one: no restart needed.
    """

    def __init__(self, bootstrap_servers: str, timeout: float = 10.0, linger_ms: int = 2, *,
                 recreate_after: float | None = None, probe_interval: float = 1.0) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.timeout = timeout
        self.linger_ms = linger_ms
        self.recreate_after = recreate_after if recreate_after is not None else max(2 * timeout, 5.0)
        self.probe_interval = probe_interval
        self.producer = self._new_producer()
        self.replacements = 0
        self._reachable = True
        self._reachable_since = time.monotonic()
        self._failing_since: float | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._retired: set[asyncio.Task[None]] = set()

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            linger_ms=self.linger_ms,
            partitioner=partition_for,
            request_timeout_ms=int(self.timeout * 1000),
            max_request_size=1_048_576,
        )

    async def start(self) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await self.producer.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await close_producer(self.producer, self.timeout)
            raise InfrastructureUnavailable(f"cannot connect to the broker: {exc!r}") from exc
        self._watchdog = asyncio.create_task(self._watch(), name="kafka-publisher-watchdog")

    async def stop(self) -> None:
        """Deliver what is pending (within `timeout`), then close."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
        await close_producer(self.producer, self.timeout)
        if self._retired:
            await asyncio.gather(*self._retired, return_exceptions=True)

    async def publish(self, topic: str, key: str, value: bytes, headers: Headers = ()) -> None:
        [outcome] = await self.publish_many([Outbound(topic, key, value, headers)])
        if outcome is not None:
            raise outcome

    async def publish_many(self, events: Sequence[Outbound]) -> list[InfrastructureUnavailable | None]:
        """Enqueue every event in order, then wait for the acknowledgements together, within the timeout."""
        if self.circuit_open:
            unavailable = InfrastructureUnavailable("the broker did not answer its last check; not waiting for it")
            return [unavailable for _ in events]
        producer = self.producer
        futures: list[asyncio.Future[Any]] = []
        problem: BaseException | None = None
        try:
            # One deadline for enqueueing and acknowledgement alike; a future still waiting at the
            # deadline is cancelled (aiokafka skips cancelled futures) and its event reported unavailable.
            async with asyncio.timeout(self.timeout):
                for event in events:
                    futures.append(await producer.send(
                        event.topic, value=event.value, key=event.key.encode(), headers=list(event.headers)))
                for pending in futures:
                    with contextlib.suppress(Exception):  # its failure is read off the future below
                        await pending
        except (KafkaError, TimeoutError) as exc:
            problem = exc
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
        if any(outcome is None for outcome in outcomes):
            self._failing_since = None
        elif outcomes and self._failing_since is None:
            self._failing_since = time.monotonic()
        return outcomes

    @property
    def circuit_open(self) -> bool:
        """True while the broker fails its checks and publishing fails: answer at once, do not wait."""
        return not self._reachable and self._failing_since is not None

    async def ready(self) -> bool:
        return await broker_reachable(self.producer.client)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                reachable = await broker_reachable(self.producer.client, timeout=min(self.timeout, 3.0))
                if reachable and not self._reachable:
                    self._reachable_since = time.monotonic()
                    log.info("broker reachable again")
                elif not reachable and self._reachable:
                    log.warning("broker unreachable", extra={"bootstrap": self.bootstrap_servers})
                self._reachable = reachable
                if self._producer_stuck():
                    await self._replace_producer()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the watchdog must keep watching
                log.warning("broker watchdog failed", extra={"error": repr(exc)})

    def _producer_stuck(self) -> bool:
        sender = getattr(getattr(self.producer, "_sender", None), "sender_task", None)
        if sender is not None and sender.done():
            return True
        if not self._reachable or self._failing_since is None:
            return False
        return time.monotonic() - max(self._failing_since, self._reachable_since) > self.recreate_after

    async def _replace_producer(self) -> None:
        fresh = self._new_producer()
        try:
            async with asyncio.timeout(self.timeout):
                await fresh.start()
        except (KafkaError, OSError, TimeoutError) as exc:
            await close_producer(fresh, self.timeout)
            log.warning("could not start a new producer yet", extra={"error": repr(exc)})
            return
        old, self.producer = self.producer, fresh
        self._failing_since = None
        self.replacements += 1
        PRODUCERS_REPLACED.inc()
        log.warning("replaced a producer that could not deliver", extra={"replacements": self.replacements})
        retired = asyncio.create_task(close_producer(old, self.timeout), name="kafka-producer-retired")
        self._retired.add(retired)
        retired.add_done_callback(self._retired.discard)


async def close_producer(producer: AIOKafkaProducer, timeout: float) -> None:
    """Stop `producer`, delivering what it holds if the broker takes it within `timeout`; then close regardless.

    aiokafka's `stop()` waits until every pending batch is delivered, which is forever while the
    broker is away.
    """
    try:
        async with asyncio.timeout(timeout):
            await producer.stop()
        return
    except Exception as exc:  # noqa: BLE001 - closing regardless
        log.warning("producer did not stop cleanly; closing it", extra={"error": repr(exc)})
    sender = getattr(getattr(producer, "_sender", None), "sender_task", None)
    if sender is not None and not sender.done():
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    with contextlib.suppress(Exception):
        async with asyncio.timeout(timeout):
            await producer.client.close()


async def broker_reachable(client: object, timeout: float = 3.0) -> bool:
    """True when a metadata request through an aiokafka client succeeds in time."""
    try:
        async with asyncio.timeout(timeout):
            return bool(await client.fetch_all_metadata())  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def topic_config(layout: TopicLayout) -> dict[str, str]:
    """The per-topic settings the topics are created with."""
    return {**TOPIC_CONFIG, "min.insync.replicas": str(layout.min_insync_replicas)}


async def ensure_topics(bootstrap_servers: str, topics: Sequence[str], layout: TopicLayout | int,
                        attempts: int = 30) -> None:
    """Create the topics if missing (unlimited retention, `layout`'s copies); retry while the broker starts.

    A bare `int` is a partition count with one copy, as for a one-broker test.

    Gives up early with StopRequested when the process is asked to stop.
    """
    if isinstance(layout, int):
        layout = TopicLayout(partitions=layout)
    for attempt in range(1, attempts + 1):
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=10_000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    response = await admin.create_topics([
                        NewTopic(t, layout.partitions, layout.replication_factor, topic_configs=topic_config(layout))
                        for t in missing])
                    refused(response)
            await wait_for_leaders(admin, topics)
            return
        except (KafkaError, OSError) as exc:
            if attempt == attempts:
                raise InfrastructureUnavailable(f"could not create topics on {bootstrap_servers}: {exc!r}") from exc
            log.warning("broker not ready for topic setup, retrying", extra={"attempt": attempt, "error": repr(exc)})
            if await sleep_unless_stopped(min(0.2 * attempt, 2.0)):
                raise StopRequested("stop requested while waiting for the broker to set up topics") from exc
        finally:
            await admin.close()


def refused(response: Any) -> None:
    """Raise the broker's error when it refused to create a topic for a reason other than its existing.

    The admin client hands back per-topic error codes instead of raising them: a cluster with fewer
    brokers up than the replication factor would otherwise pass unnoticed until the leaders never came.
    Raised, it is retried like any broker error while the cluster starts.
    """
    for topic, code, *rest in response.topic_errors:
        if code not in (0, TopicAlreadyExistsError.errno):
            raise for_code(code)(f"the broker refused to create {topic}: {rest[0] if rest else ''}")


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
                   max_poll_records: int = 500, gather_ms: int = 0, gather_bytes: int = 1) -> AIOKafkaConsumer:
    """A consumer that commits by hand and only sees committed transactional data.

    With `gather_ms`, the broker holds each fetch until `gather_bytes` have arrived or that long has
    passed, so a slow trickle comes in batches instead of one record each (Kafka's fetch.max.wait.ms
    and fetch.min.bytes).
    """
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
        **({"fetch_max_wait_ms": gather_ms, "fetch_min_bytes": gather_bytes} if gather_ms else {}),
    )
