"""Kafka transactions back to back, without waiting for the broker to finish writing the last one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaProducer

from shared.kafka import close_producer, partition_for

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 512 * 1024
"""Largest record batch built per partition. An idempotent producer has one batch in flight per partition, and
a send that finds its partition's batch full waits until that batch has gone. aiokafka's default, 16 KiB,
holds a handful of decisions, so a 500-event transaction became dozens of broker round trips one after
another. Half the broker's default `message.max.bytes`,
so a full batch is always accepted."""

TRANSACTIONAL_PRODUCER: dict[str, Any] = {"enable_idempotence": True, "acks": "all", "linger_ms": 2,
                                          "max_batch_size": MAX_BATCH_BYTES, "partitioner": partition_for}
"""How validate's transactional producers are configured (the benchmark's passthrough uses the same)."""


class Transactions:
    """Two transactional producers used in turn, one transaction at a time.

    On Kafka 3.9 a producer that begins a transaction right after committing one meets
    CONCURRENT_TRANSACTIONS while the broker still writes the last one's markers, and the client
    waits before adding its partitions again (KAFKA-5477), however small the transaction. The
    other producer's last transaction ended a whole batch ago, so its next begins at once.
    Transactions still run strictly one after another, so batches commit in
    order; both transactional ids are fixed, so a restarted worker fences both and the broker
    aborts whatever either left open.
    """

    def __init__(self, bootstrap: str, transactional_id: str, *, start_timeout_s: float = 15.0,
                 close_timeout_s: float = 5.0) -> None:
        self.bootstrap = bootstrap
        self.ids = (transactional_id, f"{transactional_id}-alt")
        self.start_timeout_s = start_timeout_s
        self.close_timeout_s = close_timeout_s
        self._producers: list[AIOKafkaProducer] = []
        self._turn = 0

    @property
    def started(self) -> bool:
        return len(self._producers) == len(self.ids)

    async def start(self) -> None:
        """Start both producers (registering their ids fences any earlier holder); all or none."""
        try:
            for transactional_id in self.ids:
                producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, transactional_id=transactional_id,
                                            **TRANSACTIONAL_PRODUCER)
                self._producers.append(producer)
                async with asyncio.timeout(self.start_timeout_s):
                    await producer.start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        producers, self._producers = self._producers, []
        await asyncio.gather(*(close_producer(p, self.close_timeout_s) for p in producers))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AIOKafkaProducer]:
        """A transaction on the producer whose turn it is: committed on exit, aborted on an error."""
        producer = self._producers[self._turn]
        self._turn = (self._turn + 1) % len(self._producers)
        await producer.begin_transaction()
        try:
            yield producer
        except BaseException:
            await self._abort(producer)
            raise
        await producer.commit_transaction()

    async def _abort(self, producer: AIOKafkaProducer) -> None:
        """Abort the transaction, waiting no longer than `close_timeout_s`.

        An abort first waits until the broker has every record the transaction sent, which is never
        while the link is cut; and when the error is the batch's deadline cancelling the work, nothing
        would cancel the abort. Given up, the error still reaches the worker, which retries the batch
        with new producers: registering the same ids fences this one, and the broker aborts what it
        left open.
        """
        if producer._txn_manager.is_fatal_error():  # the sender has stopped; nothing to abort with
            return
        try:
            async with asyncio.timeout(self.close_timeout_s):
                await producer.abort_transaction()
        except Exception as exc:  # noqa: BLE001 - the error that made the abort is the one to raise
            log.warning("transaction not aborted in time; its producer will be replaced",
                        extra={"timeout_s": self.close_timeout_s, "error": repr(exc)})
