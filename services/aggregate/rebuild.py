"""Rebuilding the views from the log into a new generation, comparing it with the live one, swapping it in.

The three topics keep every event (they are created with `retention.ms=-1` and
`retention.bytes=-1`, shared/kafka.py), so replaying them from the earliest offset gives the
views as a pure function of the current valid version of every submission.

1. A new generation N (one past every generation in the database) gets its collections, and a
   consumer in its own group `<group id>-g<N>` replays the topics from the earliest offset up
   to their end offsets at the start, committing after every batch (worker.apply_records: the
   same code the live workers run).
2. To compare, the replay is brought to exactly where the live generation's progress documents
   say it is (waiting a little for the live workers if the replay is ahead), then every view
   bucket and every submission record is compared. Differences are checked again after
   realigning, up to `rounds` times, so that events arriving during the comparison are not
   reported as differences.
3. With `swap`, the replay consumer commits and leaves its group, and the meta document names
   generation N live; the live processes follow (generation.py).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pymongo import AsyncMongoClient

from services.aggregate.apply import ReceivedOrder, apply_records
from services.aggregate.compare import Difference, Pace, compare
from services.aggregate.events import to_event
from services.aggregate.generation import GenerationMeta, group_for
from services.aggregate.mongo_repository import MongoRepository
from services.aggregate.repository import Repository
from services.aggregate.settings import AggregateSettings
from services.aggregate.worker import make_consumer
from services.aggregate.write_behind import Held, WriteBehind
from shared.errors import InfrastructureUnavailable
from shared.kafka import ensure_topics
from shared.store import Document
from shared.worker import last_offsets

log = logging.getLogger(__name__)

GATHER_MS = 200
"""How long a batch being gathered waits for more records once it has some (the previous batch is being written
meanwhile): the broker answers a fetch of stored records at once, so a longer wait means there are no more."""
LOOKAHEAD = 3
"""At most this many batches' worth of records are fetched to find one batch whose submissions are complete."""
FETCH_BYTES = 4 * 1_048_576
"""What the replay fetches per partition at a time: the log is read from the start, so every fetch is full."""

Say = Callable[[str], None]
Batch = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass
class RebuildReport:
    live: int
    rebuilt: int
    group_id: str
    events: int = 0
    compared: int = 0
    differences: list[Difference] = field(default_factory=list)
    swapped: bool = False
    positions: dict[str, int] = field(default_factory=dict)
    """`<topic>#<partition>` → the offset the rebuilt generation's group continues from."""


class Replayer:
    """Consumes the three topics in a group of its own, from the earliest offset, into one generation."""

    def __init__(self, settings: AggregateSettings, repository: Repository, group_id: str,
                 stall_timeout: float = 120.0) -> None:
        self.settings = settings
        self.topics = settings.topics
        self.repository = repository
        self.documents = WriteBehind(repository, max_submissions=settings.rebuild_cache,
                                     max_views=4 * settings.rebuild_cache)
        """What the replay projects through: it is the generation's one writer until the swap."""
        self.order = ReceivedOrder()
        """Where the listing entries of each received partition go on from (apply.listing_entries)."""
        self.group_id = group_id
        self.stall_timeout = stall_timeout
        self.consumer: AIOKafkaConsumer | None = None
        self.applied_next: dict[TopicPartition, int] = {}
        """Per partition, one past the last record applied (0 before any)."""
        self.events = 0
        self.carry: Batch = {}
        """Received events fetched for a later batch (below their targets; the consumer's position is past them)."""

    async def start(self, timeout: float = 60.0) -> None:
        await ensure_topics(self.settings.kafka_bootstrap_servers, self.topics.all(), self.settings.topic_layout)
        self.consumer = make_consumer(self.settings, self.group_id, fetch_bytes=FETCH_BYTES)
        await self.consumer.start()
        expected = sum(len(self.consumer.partitions_for_topic(t) or ()) for t in self.topics.all())
        deadline = time.monotonic() + timeout
        while len(self.consumer.assignment()) < max(expected, 1):
            if time.monotonic() > deadline:
                raise InfrastructureUnavailable(f"group {self.group_id} got {len(self.consumer.assignment())} of "
                                                f"{expected} partitions; is another consumer in it?")
            await asyncio.sleep(0.1)
            expected = sum(len(self.consumer.partitions_for_topic(t) or ()) for t in self.topics.all())
        # A generation's number is used again once it is dropped, and its group's committed offsets with it:
        # a rebuild always replays from the start.
        await self.consumer.seek_to_beginning(*self.consumer.assignment())
        self.applied_next = {tp: 0 for tp in self.consumer.assignment()}

    async def stop(self) -> None:
        """Commit where every partition stands, then leave the group."""
        if self.consumer is None:
            return
        try:
            await self.consumer.commit({tp: await self.consumer.position(tp) for tp in self.consumer.assignment()})
        finally:
            await self.consumer.stop()
            self.consumer = None

    async def end_offsets(self) -> dict[TopicPartition, int]:
        """Where every partition ends now (for committed transactional data: the last stable offset)."""
        assert self.consumer is not None
        ends: dict[TopicPartition, int] = await self.consumer.end_offsets(list(self.consumer.assignment()))
        return ends

    async def positions(self) -> dict[str, int]:
        assert self.consumer is not None
        return {f"{tp.topic}#{tp.partition}": await self.consumer.position(tp)
                for tp in sorted(self.consumer.assignment())}

    def sources(self) -> list[str]:
        """The validated topic's partitions, which name the shards of every view bucket."""
        assert self.consumer is not None
        return [str(p) for p in sorted(self.consumer.partitions_for_topic(self.topics.validated) or ())]

    async def remaining(self, targets: dict[TopicPartition, int]) -> int:
        """How many records lie between where each partition stands and its target (transaction markers included)."""
        assert self.consumer is not None
        left = 0
        for tp, target in targets.items():
            position: int = await self.consumer.position(tp)
            left += max(target - position, 0)
        return left

    async def replay_to(self, targets: dict[TopicPartition, int], progress: Callable[[int], None] | None = None) -> int:
        """Apply every record below its partition's target (none at or beyond it); returns the events applied.

        `progress` is told how far each batch moved the partitions' positions."""
        consumer = self.consumer
        assert consumer is not None
        applied = 0
        moved_to = {tp: await consumer.position(tp) for tp in targets}
        last_move, last_state = time.monotonic(), None
        writing: asyncio.Task[None] | None = None
        try:
            while True:
                pending = {tp for tp, target in targets.items() if await consumer.position(tp) < target}
                if not pending and not self.carry:
                    break
                state = {tp: await consumer.position(tp) for tp in pending}
                if state != last_state:
                    last_move, last_state = time.monotonic(), state
                elif time.monotonic() - last_move > self.stall_timeout:
                    raise InfrastructureUnavailable(f"replay made no progress for {self.stall_timeout:g}s at {state}")
                mine = await self._gather(targets, pending)
                if mine:
                    # Projected while the previous batch is written; written once that one is committed.
                    await apply_records(self.documents, mine, self.topics, order=self.order)
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(self._write(self.documents.take(), mine))
                    applied += sum(len(r) for r in mine.values())
                if progress is not None:
                    now = {tp: await consumer.position(tp) for tp in targets}
                    progress(sum(min(now[tp], targets[tp]) - min(moved_to[tp], targets[tp]) for tp in targets))
                    moved_to = now
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                await asyncio.gather(writing, return_exceptions=True)
        return applied

    async def _write(self, held: Held, mine: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        """Make the batch just projected durable, then commit its offsets."""
        assert self.consumer is not None
        await self.documents.flush(held)
        await self.consumer.commit(last_offsets(mine))
        for tp, records in mine.items():
            self.applied_next[tp] = records[-1].offset + 1
        self.events += sum(len(r) for r in mine.values())

    async def _gather(self, targets: dict[TopicPartition, int], pending: set[TopicPartition]) -> dict[
            TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """One batch: records below their targets, fetched until `rebuild_batch` of them are in hand or the
        consumer has no more at once; each partition's in offset order. A partition that reaches its target is
        paused, so nothing beyond it is fetched."""
        consumer = self.consumer
        assert consumer is not None
        consumer.pause(*(consumer.assignment() - pending))
        consumer.resume(*pending)
        mine, self.carry = self.carry, {}
        batch = self.settings.rebuild_batch
        limit = batch
        while True:
            room = limit - sum(len(records) for records in mine.values())
            ended = False
            while room > 0 and pending:
                fetched = await consumer.getmany(*pending, timeout_ms=GATHER_MS if mine else 500, max_records=room)
                if not fetched:
                    ended = True
                    break
                for tp, records in fetched.items():
                    keep = [r for r in records if r.offset < targets[tp]]
                    if len(keep) < len(records) or (records and records[-1].offset + 1 >= targets[tp]):
                        consumer.seek(tp, targets[tp])  # fetched beyond the target: read again next time
                        consumer.pause(tp)
                        pending.discard(tp)
                    if keep:
                        mine.setdefault(tp, []).extend(keep)
                        room -= len(keep)
            kept = self._decided(mine, pending)
            complete = sum(len(records) for records in kept.values())
            if complete >= batch // 2 or (complete and (ended or not pending or limit >= LOOKAHEAD * batch)):
                return kept
            if ended or not pending or limit >= LOOKAHEAD * batch:  # nothing complete in hand: apply it all
                self.carry = {}
                return mine
            self.carry = {}  # too little is complete yet: fetch further and cut again
            limit += batch

    def _decided(self, mine: Batch, pending: set[TopicPartition]) -> Batch:
        """`mine` up to where, on each partition, both the received events and their decisions (validated,
        rejected) are in hand; the rest is kept for the next batch (`carry`), so that a submission's record is
        mostly written once, complete.

        A partition's decisions come in the order of the received events they decide (validate reads a
        partition in order), so the received events after the last decision in hand, and the decisions of
        received events not in hand, wait. Only where a batch ends depends on this, never what is applied."""
        def last(tp: TopicPartition) -> int:
            records = mine.get(tp)
            return -1 if not records else records[-1].offset if tp.topic == self.topics.received else self._seq(
                tp, records[-1])

        cuts: dict[int, int] = {}
        for tp in pending:
            cuts[tp.partition] = min(last(tp), cuts.get(tp.partition, last(tp)))
        kept: Batch = {}
        for tp, records in mine.items():
            upto = cuts.get(tp.partition)
            if upto is None:
                split = len(records)
            elif tp.topic == self.topics.received:
                split = bisect.bisect_right(records, upto, key=lambda r: r.offset)
            else:
                split = bisect.bisect_right(records, upto, key=partial(self._seq, tp))
            if split:
                kept[tp] = records[:split]
            if split < len(records):
                self.carry[tp] = records[split:]
        return kept

    def _seq(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> int:
        """The offset of the received event a decision decides (-1 if unreadable: it is applied early)."""
        event = to_event(tp.topic, tp.partition, record.offset, record.value, self.topics)
        return event.seq if event is not None else -1

    async def align(self, live: Repository, wait: float) -> None:
        """Replay exactly to where `live`'s progress documents stand, waiting up to `wait` s for it to catch up."""
        kinds = dict(zip(self.topics.all(), ("received", "validated", "rejected"), strict=True))
        deadline = time.monotonic() + wait
        while True:
            progress = {p["_id"]: int(p["next_offset"]) for p in await live.load_progress()}
            targets = {tp: progress.get(f"{kinds[tp.topic]}#{tp.partition}", 0) for tp in self.applied_next}
            ahead = [tp for tp, target in targets.items() if self.applied_next[tp] > target]
            if not ahead or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await self.replay_to({tp: max(target, self.applied_next[tp]) for tp, target in targets.items()})


async def rebuild(settings: AggregateSettings, client: AsyncMongoClient[Document], *, swap: bool = False,
                  rounds: int = 3, wait: float = 15.0, force: bool = False, say: Say | None = None) -> RebuildReport:
    """Replay the log into a new generation, compare it with the live one, and with `swap` make it live.

    One rebuild at a time: a claim in the meta collection refuses a second (RebuildRunning) unless `force`.
    """
    say = say or (lambda message: log.info(message))
    meta = GenerationMeta(client, settings.mongodb_database)
    live_generation = await meta.live()
    generation = max([live_generation, *await meta.generations()]) + 1
    await meta.claim_rebuild(generation, force)
    try:
        return await _rebuild(settings, client, meta, live_generation, generation, swap, rounds, wait, say)
    finally:
        await meta.release_rebuild()


async def _rebuild(settings: AggregateSettings, client: AsyncMongoClient[Document], meta: GenerationMeta,
                   live_generation: int, generation: int, swap: bool, rounds: int, wait: float,
                   say: Say) -> RebuildReport:
    live = MongoRepository(client, settings.mongodb_database, live_generation)
    rebuilt = MongoRepository(client, settings.mongodb_database, generation)
    await rebuilt.ensure_indexes()
    report = RebuildReport(live_generation, generation, group_for(settings.group_id, generation))
    replayer = Replayer(settings, rebuilt, report.group_id)
    say(f"replaying {', '.join(settings.topics.all())} from the earliest offset into generation {generation} "
        f"(collections {rebuilt.prefix}*, consumer group {report.group_id})")
    await replayer.start()
    try:
        ends = await replayer.end_offsets()
        replaying = Pace(say, "replayed (offsets)", total=await replayer.remaining(ends))
        await replayer.replay_to(ends, replaying)
        say(f"replayed {replayer.events} events in {time.monotonic() - replaying.started:,.0f} s; "
            f"comparing with the live generation {live_generation}")
        only: set[tuple[str, str]] | None = None
        for round_ in range(1, max(rounds, 1) + 1):
            await replayer.align(live, wait)
            comparing = Pace(say, "compared (documents read)")
            compared, report.differences = await compare(live, rebuilt, replayer.sources(), only, comparing)
            if only is None:
                report.compared = compared
            if not report.differences:
                break
            if round_ <= rounds - 1:
                say(f"{len(report.differences)} rows differ; checking them again once the live generation "
                    "has moved on (events may be arriving)")
                only = {(d.view, d.key) for d in report.differences}
                await asyncio.sleep(min(wait, 2.0))
        report.events = replayer.events
        report.positions = await replayer.positions()
    finally:
        await replayer.stop()
    if swap:
        await meta.make_live(generation, group_id=report.group_id, rebuilt_events=report.events,
                             differences=len(report.differences))
        report.swapped = True
        say(f"generation {generation} is live; aggregate processes follow within "
            f"{settings.generation_poll_s:g}s and continue from where the rebuild stopped")
    return report


async def drop_generation(client: AsyncMongoClient[Document], database: str, generation: int) -> list[str]:
    """Drop a generation's collections (never the live one's); returns the collections dropped."""
    meta = GenerationMeta(client, database)
    if generation == await meta.live():
        raise ValueError(f"generation {generation} is live; swap another in first")
    names = set(await client[database].list_collection_names())
    dropped = [n for n in MongoRepository(client, database, generation).collection_names() if n in names]
    for name in dropped:
        await client[database].drop_collection(name)
    return dropped


def summarize(differences: Iterable[Difference]) -> dict[str, int]:
    """How many differences each view has."""
    counts: dict[str, int] = {}
    for d in differences:
        counts[d.view] = counts.get(d.view, 0) + 1
    return counts
