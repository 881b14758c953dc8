"""Generations of the views: which one is live, and following it when `dmp admin views rebuild --swap` changes it.

A generation is a complete set of the aggregate's collections (records, views, progress; see
repository.py) and the consumer group that feeds it: generation 0 uses the configured group id,
generation N `<group id>-g<N>`. The meta document `aggregate_meta/live` names the live generation;
only `dmp admin views rebuild --swap` writes it (one writer), and every aggregate process reads it by
`_id` every `generation_poll_s` seconds.

How a swap loses and doubles nothing: the rebuild consumes the topics in its own group
(`-g<N>`), commits its offsets after every batch, stops, and only then names generation N live.
Each aggregate process, on noticing, finishes and commits its batch in the old generation, leaves
the old group, and joins the new group, whose committed offsets are where the rebuild stopped; it
writes generation N from there. Events the old generation took in meanwhile are read again for the
new one, and an overlap with what the rebuild applied is harmless (watermarks, projection.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re

from pymongo import AsyncMongoClient
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.aggregate.mongo_repository import MongoRepository
from services.aggregate.settings import AggregateSettings
from services.aggregate.worker import AggregateWorker
from shared.audit import AuditLog
from shared.envelope import utcnow
from shared.errors import DmpError
from shared.lifecycle import StopRequested
from shared.liveness import Heartbeat
from shared.records import LIVE, META
from shared.service import FatalHandler
from shared.store import Document

log = logging.getLogger(__name__)

REBUILD = "rebuild"
GENERATION_COLLECTION = re.compile(r"^g([1-9][0-9]*)_(submissions|progress|view_[a-z]+)$")


class RebuildRunning(DmpError):
    """Another rebuild holds the claim: two at once would build one generation in one consumer group."""


def group_for(base: str, generation: int) -> str:
    """The consumer group that feeds generation `generation`."""
    return base if generation == 0 else f"{base}-g{generation}"


class GenerationMeta:
    """The meta document naming the live generation, and the generations the database holds."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self.db = client[database]
        self.collection = self.db[META]

    async def live(self) -> int:
        """The live generation (0 until a rebuild was swapped in)."""
        doc = await self.collection.find_one({"_id": LIVE})
        return int(doc["generation"]) if doc else 0

    async def describe(self) -> Document | None:
        doc: Document | None = await self.collection.find_one({"_id": LIVE})
        return doc

    async def make_live(self, generation: int, **details: object) -> None:
        """Name `generation` live; every aggregate process follows within its poll interval."""
        previous = await self.live()
        await self.collection.replace_one(
            {"_id": LIVE}, {"_id": LIVE, "generation": generation, "previous": previous,
                            "since": utcnow().isoformat(), **details}, upsert=True)

    async def claim_rebuild(self, generation: int, force: bool = False) -> None:
        """Record that a rebuild of `generation` runs; RebuildRunning if another one does (unless `force`)."""
        claim = {"_id": REBUILD, "generation": generation, "started_at": utcnow().isoformat()}
        if force:
            await self.collection.replace_one({"_id": REBUILD}, claim, upsert=True)
            return
        try:
            await self.collection.insert_one(claim)
        except DuplicateKeyError:
            held = await self.collection.find_one({"_id": REBUILD}) or {}
            raise RebuildRunning(f"a rebuild of generation {held.get('generation')} started at "
                                 f"{held.get('started_at')} is running, or stopped without finishing; if none runs, "
                                 "drop that generation and use --force") from None

    async def release_rebuild(self) -> None:
        await self.collection.delete_one({"_id": REBUILD})

    async def generations(self) -> list[int]:
        """Every generation with collections in the database (0 when its collections exist)."""
        names = await self.db.list_collection_names()
        found = {int(m[1]) for name in names if (m := GENERATION_COLLECTION.match(name))}
        if "submissions" in names or any(name.startswith("view_") for name in names):
            found.add(0)
        return sorted(found)


class LiveAggregate:
    """The generation this process serves and writes: its repository, and the worker that keeps it current."""

    def __init__(self, settings: AggregateSettings, client: AsyncMongoClient[Document], audit: AuditLog | None = None,
                 on_fatal: FatalHandler | None = None) -> None:
        self.settings = settings
        self.client = client
        self.audit = audit
        self.on_fatal = on_fatal
        self.meta = GenerationMeta(client, settings.mongodb_database)
        self.repository: MongoRepository | None = None
        self.worker: AggregateWorker | None = None
        self._follow_task: asyncio.Task[None] | None = None

    @property
    def generation(self) -> int | None:
        return None if self.repository is None else self.repository.generation

    async def start(self) -> None:
        await self._switch(await self.meta.live())
        self._follow_task = asyncio.create_task(self._follow(), name="aggregate-generation")

    async def stop(self) -> None:
        if self._follow_task is not None:
            self._follow_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follow_task
        if self.worker is not None:
            await self.worker.stop()

    def assigned(self) -> bool:
        return self.worker is not None and self.worker.assigned()

    async def broker_ok(self) -> bool:
        return self.worker is not None and await self.worker.broker_ok()

    def heartbeats(self) -> list[Heartbeat]:
        """The consumer loop of the generation being written (none while switching)."""
        return [self.worker.heartbeat] if self.worker is not None else []

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.settings.generation_poll_s)
            try:
                live = await self.meta.live()
            except PyMongoError as exc:  # the worker notices a lost store on its own
                log.warning("cannot read the live generation", extra={"error": repr(exc)})
                continue
            if live != self.generation:
                try:
                    await self._switch(live)
                except StopRequested:  # SIGTERM mid-switch: the process is stopping anyway, cleanly
                    log.info("stop requested while switching generation", extra={"next": live})
                    return
                except Exception as exc:  # a process that cannot follow its generation must restart
                    log.critical("could not switch generation", exc_info=exc)
                    if self.on_fatal is not None:
                        self.on_fatal(exc)
                    return

    async def _switch(self, generation: int) -> None:
        repository = MongoRepository(self.client, self.settings.mongodb_database, generation)
        await repository.ensure_indexes()
        if await repository.view("seizures").find_one({"bucket": {"$exists": False}}) is not None:
            log.warning("generation %d holds view documents from before views were sharded by partition; they are "
                        "not read: run `dmp admin views rebuild --swap` once", generation)
        if self.worker is not None:
            log.info("leaving generation", extra={"generation": self.generation, "next": generation})
            await self.worker.stop()
        self.repository = repository
        self.worker = AggregateWorker(self.settings, repository, self.audit, on_fatal=self.on_fatal,
                                      group_id=group_for(self.settings.group_id, generation))
        await self.worker.start()
        log.info("serving generation", extra={"generation": generation, "group": self.worker.group_id})
