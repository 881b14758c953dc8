"""Rebuilding the views from the log gives the live views, withdrawals included; swapping the rebuilt generation in
loses and doubles nothing, while the live workers keep processing; on the real broker and store."""

from __future__ import annotations

import random

import pytest
from pymongo import AsyncMongoClient

from services.aggregate.generation import GenerationMeta, LiveAggregate, RebuildRunning
from services.aggregate.mongo_repository import MongoRepository
from services.aggregate.rebuild import drop_generation, rebuild
from shared.store import Document
from tests.conftest import Infra
from tests.integration.test_aggregate_scale_out import (
    Feeder,
    expected_status,
    make_settings,
    processed_everything,
    store,  # noqa: F401 - the fixture
    until,
    visible_views,
    workload,
)
from tests.unit.test_oracle import oracle


async def test_rebuild_equals_live_and_a_swap_keeps_the_views_exact_while_events_arrive(
        infra: Infra, store: tuple[AsyncMongoClient[Document], str]) -> None:  # noqa: F811
    client, database = store
    settings = make_settings(infra, database, generation_poll_s=0.5, max_batch=200, rebuild_batch=37, rebuild_cache=10)
    rng = random.Random(5)
    live = LiveAggregate(settings, client)
    await live.start()
    try:
        async with Feeder(infra.bootstrap, settings) as feeder:
            await feeder.feed(workload(rng, "a", 50))
            await feeder.feed(workload(rng, "b", 25, earlier=[(s.sid, s.type) for s in feeder.sends[::4]]))
            await feeder.withdraw([(s.sid, s.type) for s in feeder.sends[::5]])  # some twice (sent twice)
            assert oracle(feeder.sends) != oracle([s for s in feeder.sends if not s.withdrawn])  # views move
            gen0 = live.repository
            assert gen0 is not None and gen0.generation == 0
            await until(lambda: processed_everything(gen0, feeder), what="the live generation to catch up")

            checked = await rebuild(settings, client, rounds=1, wait=10)
            assert (checked.live, checked.rebuilt, checked.swapped) == (0, 1, False)
            assert checked.differences == []
            submissions = len({s.sid for s in feeder.sends})
            assert checked.events == 2 * len(feeder.sends) and checked.compared > submissions  # records and rows
            rebuilt = MongoRepository(client, database, 1)
            assert await visible_views(rebuilt) == await visible_views(gen0) == dict(oracle(feeder.sends))
            assert await GenerationMeta(client, database).live() == 0

            # a live figure that went wrong (say, by hand) is reported, then repaired by the swap
            [shard] = [d async for d in gen0.view("seizures").find({"submissions": {"$gt": 0}}).limit(1)]
            await gen0.view("seizures").update_one({"_id": shard["_id"]}, {"$inc": {"cases": 7}})
            swapped = await rebuild(settings, client, swap=True, rounds=2, wait=10)
            assert (swapped.live, swapped.rebuilt, swapped.swapped) == (0, 2, True)
            assert [(d.view, d.key, d.kind, d.fields["cases"][0] - d.fields["cases"][1])
                    for d in swapped.differences] == [("seizures", shard["bucket"], "differs", 7)]

            # events keep arriving while the live workers notice the swap and move over
            await feeder.feed(workload(rng, "c", 25, earlier=[(s.sid, s.type) for s in feeder.sends[1::3]]))

            async def moved() -> bool:
                return live.generation == 2 and live.assigned()
            await until(moved, what="the live workers to follow the swap")
            await feeder.feed(workload(rng, "d", 15, earlier=[(s.sid, s.type) for s in feeder.sends[2::5]]))
            gen2 = live.repository
            assert gen2 is not None and gen2.generation == 2
            await until(lambda: processed_everything(gen2, feeder), what="the new generation to catch up")
            sends = feeder.sends

        assert await visible_views(gen2) == dict(oracle(sends))
        statuses = {sid: (await gen2.get_submission(sid) or {}).get("status") for sid in expected_status(sends)}
        assert statuses == expected_status(sends)
        assert live.worker is not None and live.worker.group_id == f"{settings.group_id}-g2"
    finally:
        await live.stop()

    meta = GenerationMeta(client, database)
    assert await meta.generations() == [0, 1, 2]
    assert "g1_submissions" in await drop_generation(client, database, 1)
    with pytest.raises(ValueError, match="live"):
        await drop_generation(client, database, 2)
    assert await meta.generations() == [0, 2]

    await meta.claim_rebuild(3)  # a rebuild is running (or died): a second one is refused, and changes nothing
    with pytest.raises(RebuildRunning, match="generation 3"):
        await rebuild(settings, client)
    assert await meta.generations() == [0, 2] and await meta.live() == 2

    # a generation dropped and rebuilt under the same number replays everything again, not from where its
    # consumer group stood last time
    await meta.release_rebuild()
    first = await rebuild(settings, client, rounds=1, wait=5)
    await drop_generation(client, database, first.rebuilt)
    again = await rebuild(settings, client, rounds=1, wait=5)
    assert again.rebuilt == first.rebuilt and again.differences == []
    assert again.events == first.events > 0
