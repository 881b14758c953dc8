"""Finding submissions: `GET /v1/submissions`, pages of submission records in the order they were received.

The store answers lookups by `_id` (one or `$in` of many) from its index and scans the whole
collection for anything else, ranges included. So the listing walks the `listing` entries, one
per received event keyed `<partition>:<offset>` of the received topic, by `$in` over consecutive
offsets of every partition, and merges the partitions by (received_at, id). A cursor holds the
next offset of each partition: a page never repeats or skips an entry, whatever arrives
meanwhile, since new events only ever take offsets after every cursor.

A listing of one submitter's submissions reads, per partition, the windows of offsets their entries
are at (apply.py writes them with the entries), then those entries only. A listing filtered by
type, country or status (but `received`) reads the value windows of one of them likewise: the
offsets of the entries of the submissions that have or once had the value (apply.py), a superset
the records narrow. `updated_since` T reads, before the entries received since T less apply.LATE,
only those in the late windows of the days since T: a submission received before that and changed
since was changed late. Before a partition's `listed_from` or `windowed_from` (data applied by a
version that wrote no such windows) it reads every entry, as above.

`from` F starts each partition's walk at the first offset whose entry says an entry up to it was
received at F or later (`latest`: entries carry the latest received time of their partition so far
when theirs is earlier), found by searching the offsets, so a page starts at F however out of order
ingest processes appended their events; `updated_since` finds where its walk starts alike.

Only a submission's first received event lists it (the record's `received_at` is that event's).
A request reads at most SCAN_BUDGET entries, so a selective filter may answer a page with
fewer than `limit` items, or none, and a `next` cursor: follow it until it is null.
"""

from __future__ import annotations

import asyncio
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from services.aggregate.apply import (
    LATE,
    LISTING_WINDOW,
    VALUE_WINDOW,
    late_key,
    latest_received,
    value_key,
    window_key,
)
from services.aggregate.paging import PAGE_MAX, RepositoryDep, bad_query, csv_response, cursor_bytes, encode_cursor
from services.aggregate.repository import Repository
from shared.access import allow
from shared.auth import Principal
from shared.envelope import SubmissionType
from shared.problems import KEYED, problems
from shared.store import Document

CHUNK = 64
"""Offsets of one partition read per lookup, at least: a page reads its share of `limit` at once."""
SCAN_BUDGET = 5_000
"""Entries (and submitter windows) one request reads at most before it answers with what it found and a cursor."""
WINDOWS_PER_READ = 16
"""Most of a submitter's or value's windows read per partition per lookup: one at first (a value's:
VALUE_WINDOWS_FIRST), twice as many each time a read found too few of their entries (a window of a prolific
submitter or a frequent value holds many)."""
VALUE_WINDOWS_FIRST = 4
"""A value's windows read per lookup at first: a window of a value holds the offsets of every partition, and is
smaller than a submitter's."""
PROBES = 16
"""Offsets of each partition one read of the search for where a time starts tries."""
LATE_DAYS = 400
"""Most days of late windows `updated_since` reads; from further back it reads every entry."""
CLOCK_SLACK = timedelta(minutes=5)
"""How far out of order received times may be within one partition (several ingest processes share one) where
its entries do not say (before `ordered_from`) and after a time: `to` stops a partition's walk this far past
it (the walk filters exactly)."""

ListedStatus = Literal["received", "validated", "rejected", "withdrawn"]
Reader = Annotated[Principal, Depends(allow("officer", "analyst", "operator", "admin"))]
router = APIRouter(tags=["status"])


class SubmissionListItem(BaseModel):
    """One submission as the listing shows it: its latest version's status, without history."""

    id: str
    type: str
    status: str
    country: str | None = Field(None, description="The country its latest version reports for.")
    submitted_by: str = Field(description="The key id that first sent it.")
    version: int
    received_at: str = Field(description="When its first version was received.")
    updated_at: str
    reasons: int = Field(description="How many reasons its latest version was rejected for (0 unless rejected).")


class SubmissionPage(BaseModel):
    items: list[SubmissionListItem]
    next: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last page.")


@dataclass(frozen=True)
class Selection:
    """What a listing request asks for, with its bounds as datetimes."""

    type: str | None = None
    status: str | None = None
    country: str | None = None
    submitted_by: str | None = None
    received_from: datetime | None = None
    received_to: datetime | None = None
    updated_since: datetime | None = None

    def admits_entry(self, entry: Document) -> bool:
        if self.submitted_by is not None and entry["submitted_by"] != self.submitted_by:
            return False
        at = instant(entry["received_at"])
        return (self.received_from is None or at >= self.received_from) and (
            self.received_to is None or at <= self.received_to)

    def window(self) -> tuple[str, str] | None:
        """The value windows to read: of the filter likely to select fewest (the records check the others)."""
        if self.status in ("rejected", "withdrawn"):
            return "status", self.status
        if self.country is not None:
            return "country", self.country
        if self.type is not None:
            return "type", self.type
        return ("status", self.status) if self.status == "validated" else None

    def admits_record(self, record: Document) -> bool:
        return ((self.type is None or record["type"] == self.type)
                and (self.status is None or record["status"] == self.status)
                and (self.country is None or record.get("country") == self.country)
                and (self.updated_since is None or instant(record["updated_at"]) >= self.updated_since))


@dataclass
class Walk:
    """Where a listing stands in each received partition: entries read ahead cover offsets [taken, read)."""

    read: dict[int, int]
    ends: dict[int, int]
    submitter: str | None = None
    listed_from: dict[int, int] = field(default_factory=dict)
    """Per partition, the first offset from which the submitter's windows are complete."""
    windows: dict[int, int] = field(default_factory=dict)
    """Per partition, how many windows the next lookup reads."""
    value: tuple[str, str] | None = None
    """The value windows read (filter, value), if any."""
    windowed_from: dict[int, int] = field(default_factory=dict)
    """Per partition, the first offset from which value and late windows are complete."""
    ordered_from: dict[int, int] = field(default_factory=dict)
    """Per partition, the first offset from which entries carry their partition's latest received time (`m`)."""
    late: dict[int, list[int]] = field(default_factory=dict)
    """Per partition, the offsets in the late windows `updated_since` reads, and (`late_until`) up to where."""
    late_until: dict[int, int] = field(default_factory=dict)
    ahead: dict[int, list[Document]] = field(default_factory=dict)
    entries_read: int = 0
    chunk: int = CHUNK
    """Offsets of one partition read per lookup."""

    def positions(self) -> dict[int, int]:
        """Per partition, the first offset not yet taken: the cursor."""
        return {p: offset_of(self.ahead[p][0]) if self.ahead.get(p) else self.read[p] for p in self.ends}


def offset_of(entry: Document) -> int:
    return int(entry["_id"].partition(":")[2])


def instant(value: str) -> datetime:
    """An ISO 8601 time as stored (`Z` or an offset) as an aware datetime."""
    at = datetime.fromisoformat(value)
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def item_of(record: Document) -> SubmissionListItem:
    return SubmissionListItem(id=record["_id"], type=record["type"], status=record["status"],
                              country=record.get("country"), submitted_by=record["submitted_by"],
                              version=record["version"], received_at=record["received_at"],
                              updated_at=record["updated_at"], reasons=len(record.get("errors") or []))


async def list_submissions(repository: Repository, selection: Selection, positions: dict[int, int] | None,
                           limit: int) -> tuple[list[SubmissionListItem], dict[int, int] | None]:
    """Up to `limit` submissions from `positions` on (from the start when None), and the positions after them
    (None when every partition has been read to its end)."""
    received = [d for d in await repository.load_progress() if d["kind"] == "received"]
    ends = {d["partition"]: int(d["next_offset"]) for d in received}
    listed_from = {d["partition"]: int(d["listed_from"] if "listed_from" in d else d["next_offset"]) for d in received}
    windowed_from = {d["partition"]: int(d["windowed_from"] if "windowed_from" in d else d["next_offset"])
                     for d in received}
    ordered_from = {d["partition"]: int(d["ordered_from"] if "ordered_from" in d else d["next_offset"])
                    for d in received}
    if positions is None:
        positions = {p: 0 for p in ends}
        if selection.received_from is not None:
            positions = await _starts(repository, ends, selection.received_from, ordered_from)
    walk = Walk({p: positions.get(p, 0) for p in ends}, ends, selection.submitted_by, listed_from,
                value=selection.window() if selection.submitted_by is None else None, windowed_from=windowed_from,
                ordered_from=ordered_from)
    walk.chunk = max(CHUNK, math.ceil(limit / max(len(ends), 1)))
    if selection.updated_since is not None and walk.value is None and walk.submitter is None:
        await _read_late(repository, walk, selection.updated_since)
    stop = _moved(selection.received_to, CLOCK_SLACK) if selection.received_to is not None else None
    found: list[SubmissionListItem] = []
    waiting: set[int] = set()
    considered = 0
    while len(found) < limit and walk.entries_read < SCAN_BUDGET:
        candidates = await _merged(repository, walk, min(_more(limit - len(found), considered, len(found)),
                                                         walk.chunk * len(ends)), stop)
        if not candidates:
            break
        considered += len(candidates)
        wanted = {e["id"] for _, e in candidates if selection.admits_entry(e)}
        records = await repository.load_listed(wanted) if wanted else {}
        for index, (partition, entry) in enumerate(candidates):
            if partition in waiting:
                continue
            record = records.get(entry["id"])
            if record is None and selection.admits_entry(entry):
                # Its record is written after its entry: this partition goes no further until it is.
                waiting.add(partition)
                walk.ahead[partition] = [entry]
                walk.ends[partition] = offset_of(entry)
                continue
            if record is not None and instant(record["received_at"]) == instant(entry["received_at"]) \
                    and selection.admits_entry(entry) and selection.admits_record(record):
                found.append(item_of(record))
                if len(found) == limit:
                    _put_back(walk, candidates[index + 1:], waiting)
                    break
    positions = walk.positions()
    done = not waiting and len(found) < limit and all(positions[p] >= walk.ends[p] for p in walk.ends)
    return found, None if done else positions


def _more(wanted: int, considered: int, found: int) -> int:
    """Entries to consider next for `wanted` more items: twice as many as it took per item found so far (a filter
    checked on the records admits a share of them, which varies), so that a page is not completed one round trip
    at a time; those not needed are put back."""
    return wanted if not considered else 2 * math.ceil(wanted * considered / max(found, 1))


def _moved(at: datetime, by: timedelta) -> datetime:
    """`at + by`, or the earliest or latest datetime there is when that is out of range."""
    try:
        return at + by
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC) if by > timedelta(0) else datetime.min.replace(tzinfo=UTC)


def _put_back(walk: Walk, untaken: list[tuple[int, Document]], waiting: set[int]) -> None:
    for partition, entry in reversed(untaken):
        if partition not in waiting:
            walk.ahead.setdefault(partition, []).insert(0, entry)


async def _merged(repository: Repository, walk: Walk, count: int,
                  stop: datetime | None) -> list[tuple[int, Document]]:
    """The next `count` entries in (received_at, id) order across partitions, reading ahead as needed."""
    taken: list[tuple[int, Document]] = []
    while len(taken) < count:
        await _fill(repository, walk)
        if any(not walk.ahead.get(p) and walk.read[p] < walk.ends[p] for p in walk.ends):
            break  # out of budget before every partition has its next entry in hand: order needs them all
        heads = [(e[0]["received_at"], e[0]["id"], p) for p, e in walk.ahead.items() if e and p in walk.ends
                 and offset_of(e[0]) < walk.ends[p]]
        if not heads:
            break
        partition = min(heads)[2]
        entry = walk.ahead[partition].pop(0)
        if stop is not None and instant(entry["received_at"]) > stop:
            walk.ahead[partition] = [entry]  # past `to` (and its slack): this partition is done
            walk.ends[partition] = offset_of(entry)
            continue
        taken.append((partition, entry))
    return taken


async def _fill(repository: Repository, walk: Walk) -> None:
    """Read the next chunk of offsets of every partition with nothing read ahead, until each has some or is done;
    partitions with less than half a chunk left are read in the same lookup, since the merge soon needs them too."""
    while walk.entries_read < SCAN_BUDGET:
        unread = [p for p in walk.ends if walk.read[p] < walk.ends[p]]
        if all(walk.ahead.get(p) for p in unread):
            return
        low = [p for p in unread if len(walk.ahead.get(p, ())) < walk.chunk // 2]
        reads = await _next_offsets(repository, walk, low)
        found = await repository.load_listing([f"{p}:{o}" for p, (offsets, _) in reads.items() for o in offsets])
        walk.entries_read += sum(len(offsets) for offsets, _ in reads.values())
        for p, (_, after) in reads.items():
            walk.read[p] = after
            walk.ahead[p] = [*walk.ahead.get(p, ()),
                             *sorted((e for e in found if e["_id"].startswith(f"{p}:")), key=offset_of)]


async def _next_offsets(repository: Repository, walk: Walk, partitions: list[int]) -> dict[int, tuple[list[int], int]]:
    """Per partition, the offsets whose entries to read next, and the offset reading stands at after them."""
    reads: dict[int, tuple[list[int], int]] = {}
    windows: dict[int, tuple[list[str], str, int]] = {}
    submitter, value = walk.submitter, walk.value
    for p in partitions:
        start, end = walk.read[p], walk.ends[p]
        listed_from = walk.listed_from.get(p, end) if submitter is not None else end
        windowed_from = walk.windowed_from.get(p, end) if value is not None or p in walk.late_until else end
        if submitter is not None and start >= listed_from:
            first = start // LISTING_WINDOW
            last = min((end - 1) // LISTING_WINDOW, first + walk.windows.get(p, 1) - 1)
            windows[p] = ([window_key(submitter, p, w * LISTING_WINDOW) for w in range(first, last + 1)], "offsets",
                          LISTING_WINDOW)
        elif value is not None and start >= windowed_from:
            first = start // VALUE_WINDOW
            last = min((end - 1) // VALUE_WINDOW, first + walk.windows.get(p, VALUE_WINDOWS_FIRST) - 1)
            windows[p] = ([value_key(*value, w * VALUE_WINDOW) for w in range(first, last + 1)], f"o{p}",
                          VALUE_WINDOW)
        elif windowed_from <= start < walk.late_until.get(p, 0):
            until = walk.late_until[p]
            offsets = [o for o in walk.late[p] if start <= o < until]
            reads[p] = (offsets[:walk.chunk], offsets[walk.chunk - 1] + 1 if len(offsets) > walk.chunk else until)
        else:
            stop = min(start + walk.chunk, end, *(b for b in (listed_from, windowed_from) if b > start))
            reads[p] = (list(range(start, stop)), stop)
    if windows:
        wanted = sorted({key for keys, _, _ in windows.values() for key in keys})
        found = {d["_id"]: d for d in await repository.load_listing(wanted)}
        walk.entries_read += len(wanted)
        for p, (keys, name, size) in windows.items():
            start, end = walk.read[p], walk.ends[p]
            offsets = sorted({o for key in keys for o in found.get(key, {}).get(name, ()) if start <= o < end})
            if len(offsets) < walk.chunk:
                walk.windows[p] = min(2 * len(keys), WINDOWS_PER_READ)
            covered = min(end, (start // size + len(keys)) * size)
            reads[p] = (offsets[:walk.chunk], offsets[walk.chunk - 1] + 1 if len(offsets) > walk.chunk else covered)
    return reads


async def _read_late(repository: Repository, walk: Walk, since: datetime) -> None:
    """Prepare `updated_since`: per partition, the entries received before `since` less LATE are read from the
    late windows of the hours left in its day and of the days after, when there are at most
    LATE_DAYS of them."""
    since = since.astimezone(UTC)
    first, last = since.date(), datetime.now(UTC).date() + timedelta(days=1)
    if (last - first).days >= LATE_DAYS:
        return
    keys = [late_key(first, hour) for hour in range(since.hour, 24)]
    keys += [late_key(first + timedelta(days=n)) for n in range(1, (last - first).days + 1)]
    walk.late_until, found = await asyncio.gather(_starts(repository, walk.ends, _moved(since, -LATE),
                                                          walk.ordered_from, walk.read), repository.load_listing(keys))
    walk.entries_read += len(keys)
    walk.late = {p: sorted({o for d in found for o in d.get(f"o{p}", ())}) for p in walk.ends}


async def _starts(repository: Repository, ends: Mapping[int, int], bound: datetime, ordered_from: Mapping[int, int],
                  lows: Mapping[int, int] | None = None) -> dict[int, int]:
    """Per partition, an offset (from its `lows` on) before which every entry was received before `bound`: a search
    of its offsets by the latest received time up to each (`latest`), PROBES offsets of every partition a read."""
    low, high = {p: min((lows or {}).get(p, 0), end) for p, end in ends.items()}, dict(ends)
    while any(low[p] < high[p] for p in ends):
        probes = {p: sorted({low[p] + (high[p] - low[p]) * n // PROBES for n in range(PROBES)})
                  for p in ends if low[p] < high[p]}
        found = {e["_id"]: e for e in await repository.load_listing(
            [f"{p}:{o}" for p, offsets in probes.items() for o in offsets])}
        for p, offsets in probes.items():
            at = [(o, latest(found[f"{p}:{o}"], o >= ordered_from.get(p, 0))) for o in offsets if f"{p}:{o}" in found]
            if not at:  # only offsets without an entry (rare): start at what is known
                high[p] = low[p]
                continue
            before = [o for o, received in at if received < bound]
            if before:
                low[p] = before[-1] + 1
            after = [o for o, received in at if received >= bound and o >= low[p]]
            if after:
                high[p] = after[0]
    return low


def latest(entry: Document, ordered: bool) -> datetime:
    """The latest time an entry up to `entry` in its partition was received: its `m` or its own received time
    (apply.listing_entries) where entries are `ordered`; before, as far as CLOCK_SLACK allows."""
    if ordered:
        return instant(latest_received(entry))
    return _moved(instant(entry["received_at"]), CLOCK_SLACK)


def bound(value: str | None, parameter: str, end_of_day: bool = False) -> datetime | None:
    """A `from`/`to`/`updated_since` value (a date or a datetime) as a UTC datetime; 422 naming it otherwise."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        return instant(value.upper())
    except ValueError:
        bad_query(parameter, "datetime_invalid", "is not a date (YYYY-MM-DD) or an ISO 8601 date and time")


POSITIONS_CURSOR = r"^(?:[A-Za-z0-9_-]{32})*(?:[A-Za-z0-9_-]{11}|[A-Za-z0-9_-]{22})?$"
"""A listing cursor: url-safe base64 (unpadded) of one 8-byte offset per partition, in partition order.

Any text of this form is a position in the log (an offset past a partition's end reads nothing more
there; a partition it does not name starts at 0), so every cursor the document allows is answered."""
_OFFSET = struct.Struct(">Q")


def encode_positions(positions: dict[int, int]) -> str:
    offsets = [positions.get(p, 0) for p in range(max(positions, default=-1) + 1)]
    return encode_cursor(b"".join(_OFFSET.pack(o) for o in offsets))


def decode_positions(cursor: str | None) -> dict[int, int] | None:
    if cursor is None:
        return None
    raw = cursor_bytes(cursor)
    if len(raw) % _OFFSET.size:
        bad_query("cursor", "cursor_invalid", "is not a cursor returned by this API")
    return {p: _OFFSET.unpack_from(raw, p * _OFFSET.size)[0] for p in range(len(raw) // _OFFSET.size)}


def scope(reader: Principal, submitted_by: str | None) -> str | None:
    """Whose submissions the reader may list: an officer only their own, others anyone's (`me`: their own)."""
    wanted = reader.key_id if submitted_by == "me" else submitted_by
    if reader.role == "officer":
        if wanted not in (None, reader.key_id):
            raise HTTPException(403, detail=[{"loc": ["query", "submitted_by"], "type": "forbidden_scope",
                                              "msg": "officers list only their own submissions (`me`)"}])
        return reader.key_id
    return wanted


DATE_OR_TIME: dict[str, Any] = {"anyOf": [{"type": "string", "format": "date"},
                                         {"type": "string", "format": "date-time"}]}
"""A date or an RFC 3339 date and time (`bound` parses both), as the OpenAPI document declares it."""


def _when(description: str, alias: str | None = None) -> Any:
    return Query(alias=alias, json_schema_extra=DATE_OR_TIME, description=description)


@router.get("/v1/submissions", response_model=SubmissionPage, operation_id="findSubmissions", tags=["status"],
            responses={200: {"content": {"text/csv": {}}, "description": "JSON, or CSV with `format=csv`"},
                       **problems(*KEYED, 422, 503)})
async def find_submissions(
    request: Request, repository: RepositoryDep, reader: Reader,
    type_: Annotated[SubmissionType | None, Query(alias="type")] = None,
    status: Annotated[ListedStatus | None, Query()] = None,
    country: Annotated[str | None, Query(pattern="^[A-Z]{3}$", description="ISO 3166-1 alpha-3")] = None,
    submitted_by: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description=(
        "A key id, or `me`. Officers always get their own, and may pass only `me` or their key id."))] = None,
    from_: Annotated[str | None, _when("Received at or after: a date (from its start) or a date and time",
                                       alias="from")] = None,
    to: Annotated[str | None, _when("Received at or before: a date (to its end) or a date and time")] = None,
    updated_since: Annotated[str | None, _when("Last changed (a new version or a verdict) at or after this date "
                                               "or date and time")] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    cursor: Annotated[str | None, Query(max_length=2000, pattern=POSITIONS_CURSOR,
                                        description="The `next` value of the previous page.")] = None,
    format_: Annotated[Literal["json", "csv"], Query(alias="format", description=(
        "`csv`: text/csv, one page, the next page's cursor in `X-Next-Cursor` and `Link`."))] = "json",
) -> SubmissionPage | Response:
    """Find submissions: their latest status, in the order received, filtered, a page at a time.

    A page may hold fewer than `limit` items while `next` is not null (each request reads a bounded
    part of the log): follow `next` until it is null.
    """
    # `to` before `from` selects nothing (an empty page), as the views' ranges do.
    received_from, received_to = bound(from_, "from"), bound(to, "to", end_of_day=True)
    selection = Selection(type=type_, status=status, country=country, submitted_by=scope(reader, submitted_by),
                          received_from=received_from, received_to=received_to,
                          updated_since=bound(updated_since, "updated_since"))
    items, positions = await list_submissions(repository, selection, decode_positions(cursor), limit)
    next_cursor = encode_positions(positions) if positions is not None else None
    if format_ == "csv":
        return csv_response(request, items, SubmissionListItem, next_cursor, "submissions")
    return SubmissionPage(items=items, next=next_cursor)
