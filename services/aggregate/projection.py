"""View projection core: how each event changes a submission's record and the views. Pure.

A view is a pure function of the current valid version of every submission. Three rules make
the incremental updates exact under redelivery, replay and crashes between writes:

* Versions of one submission are ordered by `seq`, the offset of its received event; an event
  whose seq is not newer than what a record already reflects changes nothing.
* An amendment yields two deltas: minus the old version's figures, plus the new version's.
* Every view document remembers, per validated partition, the last offset applied to it
  (its watermark); a delta is applied only to documents whose watermark is below it. The
  worker writes view documents before submission records, so a crash between the two is
  repaired by replaying the batch.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from shared.store import Document

QUANTITY_SCALE = 1_000_000
"""Quantities are summed as integer millionths of a kg, litre or unit, so that totals are exact."""

HISTORY_LIMIT = 100
RANK = {"received": 0, "validated": 1, "rejected": 1}

EventKind = Literal["received", "validated", "rejected"]


@dataclass(frozen=True)
class Event:
    """One event about a submission, as the aggregate consumer sees it."""

    kind: EventKind
    id: str
    type: str
    seq: int
    data_hash: str
    at: str
    submitted_by: str
    received_at: str
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    offset: int = -1


@dataclass(frozen=True)
class Contribution:
    """What one valid submission adds to one view document."""

    view: str
    key: str
    dims: dict[str, Any]
    figures: dict[str, int]


@dataclass(frozen=True)
class Delta:
    """A signed change to one view document, tagged with the validated event that caused it."""

    view: str
    key: str
    dims: dict[str, Any]
    figures: dict[str, int]
    source: str
    offset: int


def micro(quantity: float) -> int:
    return int((Decimal(repr(quantity)) * QUANTITY_SCALE).to_integral_value(ROUND_HALF_EVEN))


def contributions(type_: str, data: dict[str, Any]) -> list[Contribution]:
    """The view documents a valid submission counts in, and with what figures."""
    if type_ == "seizure":
        norm = data["normalised"]
        dims = {"country": data["country"], "year": int(data["seized_on"][:4]), "drug": data["drug"],
                "unit": norm["unit"]}
        key = f"{dims['country']}:{dims['year']}:{dims['drug']}:{dims['unit']}"
        figures = {"cases": int(data["cases"]), "quantity_micro": micro(norm["quantity"]),
                   "persons_arrested": int(data["persons_arrested"]), "submissions": 1}
        return [Contribution("seizures", key, dims, figures)]
    return []


def project(record: Document | None, event: Event) -> tuple[Document, list[Delta]]:
    """The submission's record after `event`, and the view deltas it causes."""
    record = _copy(record) if record is not None else _new_record(event)
    _merge_history(record, event)
    deltas: list[Delta] = []
    if event.kind == "validated":
        deltas = _apply_valid_version(record, event)
    record["updated_at"] = max(record.get("updated_at", ""), event.at)
    return record, deltas


def apply_delta(doc: Document | None, delta: Delta) -> Document | None:
    """The view document with `delta` applied, or None when its watermark shows it already was."""
    if doc is not None and doc.get("wm", {}).get(delta.source, -1) >= delta.offset:
        return None
    doc = {"_id": delta.key, **delta.dims, "wm": {}} if doc is None else {**doc, "wm": dict(doc.get("wm", {}))}
    for name, value in delta.figures.items():
        doc[name] = int(doc.get(name, 0)) + value
    doc["wm"][delta.source] = delta.offset
    return doc


def _new_record(event: Event) -> Document:
    return {"_id": event.id, "type": event.type, "status": "received", "version": 0, "errors": [],
            "received_at": event.received_at, "updated_at": event.at, "submitted_by": event.submitted_by,
            "history": [], "valid": None}


def _copy(record: Document) -> Document:
    return {**record, "history": [dict(h) for h in record.get("history", [])]}


def _merge_history(record: Document, event: Event) -> None:
    history: list[Document] = record["history"]
    seqs = [h["seq"] for h in history]
    index = bisect.bisect_left(seqs, event.seq)
    if index < len(history) and history[index]["seq"] == event.seq:
        entry = history[index]
    else:
        entry = {"seq": event.seq, "hash": event.data_hash, "status": "received", "received_at": event.received_at,
                 "submitted_by": event.submitted_by, "errors": []}
        history.insert(index, entry)
    if RANK[event.kind] >= RANK[entry["status"]]:
        entry["status"] = event.kind
        entry["errors"] = event.errors if event.kind == "rejected" else []
        entry["decided_at"] = event.at if event.kind != "received" else None
    del history[:-HISTORY_LIMIT]
    version, previous = 0, None
    for item in history:
        if item["hash"] != previous:
            version, previous = version + 1, item["hash"]
        item["version"] = version
    latest = history[-1]
    record.update(status=latest["status"], version=latest["version"], errors=latest["errors"])


def _apply_valid_version(record: Document, event: Event) -> list[Delta]:
    valid = record.get("valid")
    if valid is not None and event.seq <= valid["seq"]:
        return []
    if valid is not None and valid["hash"] == event.data_hash:
        record["valid"] = {**valid, "seq": event.seq}
        return []
    old = [Contribution(**c) for c in valid["contributions"]] if valid else []
    new = contributions(event.type, event.data)
    record["valid"] = {"seq": event.seq, "hash": event.data_hash, "data": event.data,
                       "contributions": [c.__dict__ for c in new]}
    # One delta per view document and event: a watermark admits each event once per document.
    merged: dict[tuple[str, str], Delta] = {}
    for sign, group in ((-1, old), (1, new)):
        for c in group:
            prior = merged.get((c.view, c.key))
            figures = dict(prior.figures) if prior else {}
            for name, value in c.figures.items():
                figures[name] = figures.get(name, 0) + sign * value
            merged[(c.view, c.key)] = Delta(c.view, c.key, c.dims, figures, event.source, event.offset)
    return list(merged.values())
