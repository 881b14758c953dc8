"""validate's transactions on the real broker: two producers in turn, both fenced by a restart."""

from __future__ import annotations

import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from services.validate.transactions import Transactions
from tests.conftest import Infra
from tests.integration.test_validate_worker import committed


async def topic(infra: Infra) -> str:
    name = f"t{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1)])
    finally:
        await admin.close()
    return name


async def test_consecutive_transactions_take_turns_and_commit_in_order(infra: Infra) -> None:
    name = await topic(infra)
    transactions = Transactions(infra.bootstrap, f"{name}-tx")
    await transactions.start()
    used = []
    try:
        for index in range(4):
            async with transactions.transaction() as producer:
                used.append(producer)
                await producer.send_and_wait(name, str(index).encode(), key=b"k")
    finally:
        await transactions.close()
    assert used[0] is not used[1]
    assert used[0] is used[2] and used[1] is used[3]
    got = await committed(infra, [name], expected=4)
    assert [r.value for r in got] == [b"0", b"1", b"2", b"3"]


async def test_a_restart_fences_both_producers_and_aborts_what_they_left_open(infra: Infra) -> None:
    name = await topic(infra)
    zombie = Transactions(infra.bootstrap, f"{name}-tx")
    await zombie.start()
    try:
        with pytest.raises(KafkaError):
            async with zombie.transaction() as first, zombie.transaction() as second:
                assert first is not second
                await first.send_and_wait(name, b"left open by the first", key=b"k")
                await second.send_and_wait(name, b"left open by the second", key=b"k")
                successor = Transactions(infra.bootstrap, f"{name}-tx")
                await successor.start()  # same ids: the broker aborts both open transactions
                async with successor.transaction() as producer:
                    await producer.send_and_wait(name, b"committed", key=b"k")
                await successor.close()
    finally:
        await zombie.close()
    assert [r.value for r in await committed(infra, [name], expected=1)] == [b"committed"]
