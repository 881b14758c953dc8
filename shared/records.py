"""Where aggregate keeps the submission records, and the one read other services make of them.

Aggregate writes a record per submission (its versions, each with who submitted it) into the live
generation's `submissions` collection; the meta document `aggregate_meta/live` names that
generation. Ingest reads a record by `_id` to learn who owns a submission before it accepts a
withdrawal. Who owns a submission (the key that sent its first version) never changes, so a record
read a moment ago still answers that question correctly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

from pymongo import AsyncMongoClient

from shared.store import Document

META = "aggregate_meta"
LIVE = "live"
SUBMISSIONS = "submissions"


def collection_prefix(generation: int) -> str:
    """What generation `generation`'s collection names start with."""
    return "" if generation == 0 else f"g{generation}_"


class Submitted(NamedTuple):
    """What another service may know of a submission: its type and who owns it."""

    type: str
    submitted_by: str


def submitted(record: Document) -> Submitted:
    return Submitted(str(record["type"]), str(record["submitted_by"]))


class SubmissionRecords(Protocol):
    async def find(self, submission_id: str) -> Submitted | None:
        """The submission as aggregate last recorded it, or None if it has not recorded it (yet)."""
        ...


class MongoSubmissionRecords:
    """Reads the live generation's record by `_id` (two lookups by `_id`: the meta document, the record)."""

    def __init__(self, client: AsyncMongoClient[Document], database: str) -> None:
        self.db = client[database]

    async def find(self, submission_id: str) -> Submitted | None:
        live = await self.db[META].find_one({"_id": LIVE})
        prefix = collection_prefix(int(live["generation"]) if live else 0)
        record = await self.db[f"{prefix}{SUBMISSIONS}"].find_one(
            {"_id": submission_id}, {"type": 1, "submitted_by": 1})
        return submitted(record) if record is not None else None


@dataclass
class InMemorySubmissionRecords:
    records: dict[str, Submitted] = field(default_factory=dict)

    async def find(self, submission_id: str) -> Submitted | None:
        return self.records.get(submission_id)
