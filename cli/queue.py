"""The offline queue: every submission is stored here first, then sent, then followed to its verdict.

One SQLite file in the user's data folder. A submission's `id` is its primary key, so a row can
never be queued as two submissions; queueing the same id with other content is an amendment and
makes it pending again. States:

    pending ──207 received──▶ received ──aggregate──▶ validated | rejected
       │  └──207 invalid────▶ invalid   (ingest refused it: a bad envelope, or a country the key does
       │                               not cover; correct it, or fix the key, and import it again)
       └── stays pending on connection errors, 5xx and `unavailable` items: `dmp sync` resends

A submission is marked received only after ingest's answer says so, and only if its content is
still what was sent; being killed at any point leaves it pending, and resending is harmless
because the server deduplicates by id and content. Once ingest has a training participant, their
identity number and name are blanked here too (the queue then keeps only the content hash).
"""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from shared.envelope import ErrorDetail, content_hash, utcnow

State = Literal["pending", "received", "invalid", "validated", "rejected"]
STATES: tuple[State, ...] = ("pending", "received", "invalid", "validated", "rejected")
Outcome = Literal["new", "amended", "unchanged"]
Origin = Literal["sheet", "json"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    origin TEXT NOT NULL,
    source TEXT,
    row INTEGER,
    state TEXT NOT NULL,
    sent_hash TEXT,
    sent_versions INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    errors TEXT,
    server_version INTEGER,
    current_valid_version INTEGER,
    queued_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS submissions_state ON submissions (state, seq);
CREATE INDEX IF NOT EXISTS submissions_content ON submissions (content_hash);
CREATE INDEX IF NOT EXISTS submissions_source ON submissions (source, row);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_IDENTITY = ("national_id", "full_name")


@dataclass(frozen=True)
class Item:
    """What to queue: one envelope, and where it came from."""

    id: str
    type: str
    schema_version: int
    data: dict[str, Any]
    origin: Origin = "sheet"
    source: str | None = None
    row: int | None = None

    @property
    def content_hash(self) -> str:
        return content_hash(self.type, self.schema_version, self.data)


@dataclass(frozen=True)
class Stored:
    """One queued submission as the queue holds it."""

    id: str
    type: str
    schema_version: int
    data: dict[str, Any]
    content_hash: str
    origin: Origin
    source: str | None
    row: int | None
    state: State
    sent_versions: int
    attempts: int
    last_error: str | None
    errors: list[ErrorDetail]
    server_version: int | None
    current_valid_version: int | None

    def envelope(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type, "schema_version": self.schema_version, "data": self.data}


@dataclass(frozen=True)
class Conflict:
    """A row whose content is already queued under another id: a renamed sheet, moved rows, or a copy."""

    item: Item
    other: Stored


def _now() -> str:
    return utcnow().isoformat()


def _redact_identity(type_: str, data: dict[str, Any]) -> dict[str, Any]:
    participant = data.get("participant")
    if type_ != "training" or not isinstance(participant, dict):
        return data
    return {**data, "participant": {k: v for k, v in participant.items() if k not in _IDENTITY}}


class Queue:
    """The SQLite queue; open it with `Queue.open(path)` and close it (or use it as a context manager)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.db = connection

    @classmethod
    def open(cls, path: Path) -> Queue:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():  # it may hold training participants' identity: the user's eyes only
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        connection = sqlite3.connect(path, timeout=30, isolation_level=None)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.executescript(_SCHEMA)
        queue = cls(connection)
        if queue._meta("namespace") is None:  # first use; OR IGNORE: another process may be doing the same
            queue.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('namespace', ?)", (str(uuid.uuid4()),))
        return queue

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Queue:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    @property
    def namespace(self) -> uuid.UUID:
        """This installation's random namespace for row ids derived from sheet and row number."""
        value = self._meta("namespace")
        assert value is not None
        return uuid.UUID(value)

    # -- queueing ---------------------------------------------------------------------------------

    def conflicts(self, items: Iterable[Item]) -> list[Conflict]:
        """Items that are new or changed whose exact content is already queued under a different id."""
        found = []
        for item in items:
            digest = item.content_hash
            own = self.db.execute("SELECT content_hash FROM submissions WHERE id = ?", (item.id,)).fetchone()
            if own is not None and own["content_hash"] == digest:
                continue
            other = self.db.execute("SELECT * FROM submissions WHERE content_hash = ? AND id != ? ORDER BY seq "
                                    "LIMIT 1", (digest, item.id)).fetchone()
            if other is not None:
                found.append(Conflict(item, _stored(other)))
        return found

    def enqueue(self, items: Iterable[Item]) -> dict[str, Outcome]:
        """Store the items in one transaction: new ones pending, changed ones pending again (amendments)."""
        outcomes: dict[str, Outcome] = {}
        now = _now()
        with self._transaction():
            for item in items:
                digest = item.content_hash
                row = self.db.execute("SELECT content_hash FROM submissions WHERE id = ?", (item.id,)).fetchone()
                if row is None:
                    self.db.execute(
                        "INSERT INTO submissions (id, type, schema_version, data, content_hash, origin, source, row, "
                        "state, queued_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                        (item.id, item.type, item.schema_version, json.dumps(item.data), digest, item.origin,
                         item.source, item.row, now, now))
                    outcomes[item.id] = "new"
                elif row["content_hash"] == digest:
                    # Refused by ingest (say, a country the key did not cover): queueing it again means "try again".
                    self.db.execute("UPDATE submissions SET source = ?, row = ?, state = CASE state WHEN 'invalid' "
                                    "THEN 'pending' ELSE state END WHERE id = ?", (item.source, item.row, item.id))
                    outcomes[item.id] = "unchanged"
                else:
                    self.db.execute(
                        "UPDATE submissions SET type = ?, schema_version = ?, data = ?, content_hash = ?, origin = ?, "
                        "source = ?, row = ?, state = 'pending', errors = NULL, attempts = 0, last_error = NULL, "
                        "updated_at = ? WHERE id = ?",
                        (item.type, item.schema_version, json.dumps(item.data), digest, item.origin, item.source,
                         item.row, now, item.id))
                    outcomes[item.id] = "amended"
        return outcomes

    # -- sending ----------------------------------------------------------------------------------

    def pending(self, limit: int, after_seq: int = 0) -> list[tuple[int, Stored]]:
        rows = self.db.execute("SELECT * FROM submissions WHERE state = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
                               (after_seq, limit)).fetchall()
        return [(int(r["seq"]), _stored(r)) for r in rows]

    def mark_received(self, submission_id: str, sent_hash: str) -> bool:
        """Ingest has it. False (and still pending) if the content changed since it was sent."""
        with self._transaction():
            row = self.db.execute("SELECT * FROM submissions WHERE id = ? AND content_hash = ? AND state = 'pending'",
                                  (submission_id, sent_hash)).fetchone()
            if row is None:
                return False
            stored = _stored(row)
            data = _redact_identity(stored.type, stored.data)
            versions = stored.sent_versions + (0 if row["sent_hash"] == sent_hash else 1)
            self.db.execute(
                "UPDATE submissions SET state = 'received', sent_hash = ?, sent_versions = ?, data = ?, errors = NULL, "
                "last_error = NULL, updated_at = ? WHERE id = ?",
                (sent_hash, versions, json.dumps(data), _now(), submission_id))
        return True

    def mark_invalid(self, submission_id: str, sent_hash: str, errors: list[ErrorDetail]) -> bool:
        """Ingest refused the envelope: nothing was stored there; the row needs correcting."""
        cursor = self.db.execute(
            "UPDATE submissions SET state = 'invalid', errors = ?, updated_at = ? "
            "WHERE id = ? AND content_hash = ? AND state = 'pending'",
            (_dump_errors(errors), _now(), submission_id, sent_hash))
        return cursor.rowcount == 1

    def note_attempt(self, ids: Iterable[str], error: str) -> None:
        """A send that did not get through; the items stay pending."""
        with self._transaction():
            for submission_id in ids:
                self.db.execute("UPDATE submissions SET attempts = attempts + 1, last_error = ? "
                                "WHERE id = ? AND state = 'pending'", (error, submission_id))

    # -- verdicts ---------------------------------------------------------------------------------

    def awaiting_verdict(self) -> list[Stored]:
        return [_stored(r) for r in self.db.execute(
            "SELECT * FROM submissions WHERE state = 'received' ORDER BY seq").fetchall()]

    def apply_verdict(self, submission_id: str, status: str, version: int, errors: list[ErrorDetail],
                      current_valid_version: int | None) -> bool:
        """aggregate's verdict, if it is about the version this queue last sent (not an older one)."""
        if status not in ("validated", "rejected"):
            return False
        cursor = self.db.execute(
            "UPDATE submissions SET state = ?, errors = ?, server_version = ?, current_valid_version = ?, "
            "updated_at = ? WHERE id = ? AND state = 'received' AND ? >= sent_versions",
            (status, _dump_errors(errors) if errors else None, version, current_valid_version, _now(),
             submission_id, version))
        return cursor.rowcount == 1

    # -- reading ----------------------------------------------------------------------------------

    def counts(self) -> dict[State, int]:
        found = dict(self.db.execute("SELECT state, COUNT(*) FROM submissions GROUP BY state").fetchall())
        return {state: int(found.get(state, 0)) for state in STATES}

    def get(self, submission_id: str) -> Stored | None:
        row = self.db.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
        return None if row is None else _stored(row)

    def in_state(self, *states: State) -> list[Stored]:
        marks = ", ".join("?" for _ in states)
        return [_stored(r) for r in self.db.execute(
            f"SELECT * FROM submissions WHERE state IN ({marks}) ORDER BY source, row, seq",  # noqa: S608 - only ?s
            states).fetchall()]

    def from_source(self, source: str) -> list[Stored]:
        return [_stored(r) for r in self.db.execute(
            "SELECT * FROM submissions WHERE source = ? ORDER BY row", (source,)).fetchall()]


def _dump_errors(errors: list[ErrorDetail]) -> str:
    return json.dumps([e.model_dump() for e in errors])


def _stored(row: sqlite3.Row) -> Stored:
    return Stored(
        id=row["id"], type=row["type"], schema_version=row["schema_version"], data=json.loads(row["data"]),
        content_hash=row["content_hash"], origin=row["origin"], source=row["source"], row=row["row"],
        state=row["state"], sent_versions=row["sent_versions"], attempts=row["attempts"],
        last_error=row["last_error"],
        errors=[ErrorDetail.model_validate(e) for e in json.loads(row["errors"])] if row["errors"] else [],
        server_version=row["server_version"], current_valid_version=row["current_valid_version"])
