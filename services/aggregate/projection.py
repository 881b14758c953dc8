"""View projection core: how each event changes a submission's record and the views. Pure.

A view is a pure function of the current valid version of every submission. A withdrawal is a
version that is valid and contributes nothing: it takes the submission out of every view, and a
later valid version brings it back. Three rules make the incremental updates exact under
redelivery, replay and crashes between writes:

* Versions of one submission are ordered by `seq`, the offset of its received event; an event
  whose seq is not newer than what a record already reflects changes nothing.
* An amendment yields two deltas: minus the old version's figures, plus the new version's.
* Every view document remembers, per validated partition, the last offset applied to it
  (its watermark); a delta is applied only to documents whose watermark is below it. The
  worker writes view documents before submission records, so a crash between the two is
  repaired by replaying the batch.
* Every view bucket is sharded by the validated partition of the events that change it: the
  document `<bucket key>#p<partition>` holds what that partition's submissions add to the bucket.
  One partition is consumed by one worker at a time, so every view document has exactly one
  writer (the store has no transactions and no locks); a reader sums a bucket's shards
  (`merge_shards`). The deltas of an amendment go to the shards of the amending event's partition,
  so even a submission whose partition changed (more partitions) nets out exactly in the sum.

Every figure is an integer (money and quantities in millionths), so sums are exact and a minus
delta undoes a plus delta to the unit. Every view document counts the submissions in it
(`submissions`); a document whose count is zero is an empty bucket and is never shown.
Figures that cannot be summed (min, max, "latest", "distinct") are kept exact another way:

* prices: one counter per distinct lowest and highest price (`lo_<micro>`, `hi_<micro>`); the
  minimum is the smallest `lo_` value still counted, so amending away the minimum reveals the next.
* map and treatment: one document per point (keyed by submission id) or per facility × period;
  the latest period per facility is chosen when reading, never summed across months.
* training: one document per person × group (`trainees`) or per person × course title
  (`repeats`, keyed by the person's country first, so one country's are found by index); distinct
  people are the documents whose count is above zero, counted when reading (read side: answers.py).

Dimensions are a function of a document's key, except on per-submission documents (map), where
the delta sets the new version's dimensions, so an amended point moves. Free-text dimensions are
hashed into the key (`digest`) and kept verbatim as fields.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

import orjson

from shared.store import Document

QUANTITY_SCALE = 1_000_000
"""Quantities are summed as integer millionths of a kg, litre or unit, so that totals are exact."""

LOW, HIGH, DRUG = "lo_", "hi_", "drug_"
SPARSE = (LOW, HIGH, DRUG)
"""Prefixes of figures that name a value (a price, a drug); dropped from a document at zero."""

SAFE_NAME = re.compile(r"[a-z0-9_]{1,40}")
INT64 = 2**63
"""BSON integers are signed 64-bit; larger sums (money in some currencies) are stored as decimal text."""

HISTORY_LIMIT = 100
RANK = {"received": 0, "validated": 1, "rejected": 1, "withdrawn": 1}
WITHDRAWN = "withdrawn"
"""The content hash of every withdrawn version (a real one is hex): withdrawing twice is one version."""

EventKind = Literal["received", "validated", "rejected", "withdrawn"]

SHARD = "#p"
"""Separates a view document's bucket key from its shard: `AFG:2024:heroin:kg#p3`."""
SHARD_FIELDS = ("_id", "wm", "bucket", "partition")
"""Bookkeeping on every view document; its other fields are the view's dimensions and figures."""
OWN_BUCKET_VIEWS = frozenset({"map"})
"""Views whose buckets each belong to one submission (the bucket key is its id): only its events write them."""
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "seizures": ("country", "year", "drug", "unit"),
    "routes": ("route", "month", "drug", "unit"),
    "map": ("lon", "lat", "drug", "seized_on", "country", "place", "quantity", "unit", "route"),
    "prices": ("country", "year", "drug", "market", "currency"),
    "financial": ("country", "year", "case_type", "currency"),
    "treatment": ("country", "year", "facility_id", "period", "month"),
    "courses": ("country", "year", "course_id"),
    "trainees": ("country", "year", "agency", "programme", "pseudonym"),
    "repeats": ("country", "pseudonym", "title_key"),
}
"""Each view's dimensions (what its rows are grouped by); every other field is a figure, summed across shards."""


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
    fields: dict[str, str] = field(default_factory=dict)
    """A short digest of each submitted field, so a version's status can say what changed."""
    withdrawal: dict[str, Any] | None = None
    """A withdrawal's reason, who withdrew and their role (`shared.envelope.Withdrawal`)."""
    country: str | None = None
    """The country a received or rejected version reports for (listing filters on the latest version's)."""


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
    """`quantity` (a float as submitted) in integer millionths, rounded half-even."""
    return int((Decimal(repr(quantity)) * QUANTITY_SCALE).to_integral_value(ROUND_HALF_EVEN))


def contributions(type_: str, data: dict[str, Any], submission_id: str) -> list[Contribution]:
    """The view documents a valid submission counts in, and with what figures."""
    build = _CONTRIBUTORS.get(type_)
    return build(data, submission_id) if build is not None else []


def _seizure(data: dict[str, Any], submission_id: str) -> list[Contribution]:
    norm = data["normalised"]
    country, drug, unit, seized_on = data["country"], data["drug"], norm["unit"], data["seized_on"]
    year, month, route = int(seized_on[:4]), seized_on[:7], data.get("route") or "unknown"
    cases, quantity = int(data.get("cases", 1)), micro(norm["quantity"])
    found = [
        Contribution("seizures", f"{country}:{year}:{drug}:{unit}",
                     {"country": country, "year": year, "drug": drug, "unit": unit},
                     {"cases": cases, "quantity_micro": quantity,
                      "persons_arrested": int(data.get("persons_arrested", 0)), "submissions": 1}),
        Contribution("routes", f"{route}:{month}:{drug}:{unit}",
                     {"route": route, "month": month, "drug": drug, "unit": unit},
                     {"cases": cases, "quantity_micro": quantity, "submissions": 1}),
    ]
    point = _coordinates(data)
    if point is not None:
        found.append(Contribution("map", submission_id,
                                  {"lon": point[0], "lat": point[1], "drug": drug, "seized_on": seized_on,
                                   "country": country, "place": data.get("place", ""),
                                   "quantity": float(norm["quantity"]), "unit": unit, "route": route},
                                  {"submissions": 1}))
    return found


def _coordinates(data: dict[str, Any]) -> tuple[float, float] | None:
    """(lon, lat) from `coordinates`; events validated before it existed carry top-level lat/lon."""
    if "coordinates" in data:
        point = data["coordinates"]
        return None if point is None else (float(point["lon"]), float(point["lat"]))
    if data.get("lat") is not None and data.get("lon") is not None:
        return float(data["lon"]), float(data["lat"])
    return None


def _price(data: dict[str, Any], submission_id: str) -> list[Contribution]:
    norm = data["normalised"]
    dims = {"country": data["country"], "year": int(data["observed_on"][:4]), "drug": data["drug"],
            "market": data["market"], "currency": data["currency"]}
    typical = micro(norm["price_typical"])
    low = typical if norm.get("price_min") is None else micro(norm["price_min"])
    high = typical if norm.get("price_max") is None else micro(norm["price_max"])
    # Exact min/max under amendments: count observations per lowest and per highest value;
    # the minimum is the smallest `lo_` value whose count is above zero (see report.price_row).
    figures = {"submissions": 1, "typical_micro": typical, f"{LOW}{low}": 1, f"{HIGH}{high}": 1}
    return [Contribution("prices", ":".join(str(v) for v in dims.values()), dims, figures)]


def _financial_case(data: dict[str, Any], submission_id: str) -> list[Contribution]:
    dims = {"country": data["country"], "year": int(data["reported_on"][:4]), "case_type": data["case_type"],
            "currency": data["currency"]}
    figures = {"submissions": 1, "amount_micro": micro(data["amount"]),
               "persons_charged": int(data.get("persons_charged", 0))}
    return [Contribution("financial", ":".join(str(v) for v in dims.values()), dims, figures)]


def _treatment_facility(data: dict[str, Any], submission_id: str) -> list[Contribution]:
    norm = data["normalised"]
    country, year, period, facility = data["country"], int(norm["year"]), data["period"], data["facility_id"]
    dims = {"country": country, "year": year, "facility_id": facility, "period": period, "month": norm.get("month")}
    figures = {"submissions": 1, "capacity": int(data.get("capacity", 0)),
               "in_treatment_total": int(norm["in_treatment_total"])}
    for drug, count in (data.get("in_treatment") or {}).items():
        name = f"{DRUG}{drug}" if SAFE_NAME.fullmatch(drug) else f"{DRUG}other"
        if int(count):
            figures[name] = figures.get(name, 0) + int(count)
    return [Contribution("treatment", f"{country}:{year}:{digest(facility)}:{period}", dims, figures)]


def _training(data: dict[str, Any], submission_id: str) -> list[Contribution]:
    norm, person = data["normalised"], data["participant"]
    year, pseudonym, host = int(norm["year"]), person["pseudonym"], data["host_country"]
    agency, programme = person.get("agency") or "", data.get("programme") or ""
    one = {"submissions": 1}
    return [
        Contribution("courses", f"{host}:{year}:{digest(data['course_id'])}",
                     {"country": host, "year": year, "course_id": data["course_id"]}, one),
        Contribution("trainees", f"{person['country']}:{year}:{digest(agency, programme)}:{pseudonym}",
                     {"country": person["country"], "year": year, "agency": agency, "programme": programme,
                      "pseudonym": pseudonym}, one),
        # By participant country first (ingest derives the pseudonym from it, so it splits no one's repeats):
        # one country's repeats are then found by an index.
        Contribution("repeats", f"{person['country']}:{pseudonym}:{digest(norm['title_key'])}",
                     {"country": person["country"], "pseudonym": pseudonym, "title_key": norm["title_key"]}, one),
    ]


Contributor = Callable[[dict[str, Any], str], list[Contribution]]
_CONTRIBUTORS: dict[str, Contributor] = {
    "seizure": _seizure, "price": _price, "financial_case": _financial_case,
    "treatment_facility": _treatment_facility, "training": _training,
}


def digest(*parts: str) -> str:
    """A short stable hash of free-text dimensions, for `_id`s (which must not depend on their spelling)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]


def project(record: Document | None, event: Event) -> tuple[Document, list[Delta]]:
    """The submission's record after `event`, and the view deltas it causes."""
    record = _copy(record) if record is not None else _new_record(event)
    _merge_history(record, event)
    deltas: list[Delta] = []
    if event.kind in ("validated", "withdrawn"):
        deltas = _apply_valid_version(record, event)
    record["updated_at"] = max(record.get("updated_at", ""), event.at)
    if event.country is not None and event.seq == record["history"][-1]["seq"]:
        record["country"] = event.country
    return record, deltas


def shard_key(bucket: str, source: str) -> str:
    """The `_id` of the shard of `bucket` that events from validated partition `source` write."""
    return f"{bucket}{SHARD}{source}"


def merge_shards(view: str, shards: list[Document]) -> Document:
    """One bucket's shards as one document: `_id` the bucket key, figures summed, `wm` the highest per partition.

    Dimensions come from a shard that counts submissions (they are equal across a bucket's shards,
    except a map point amended after its partition changed, where the counted one is the current one).
    """
    dimensions = DIMENSIONS.get(view, ())
    base = next((d for d in shards if int(d.get("submissions", 0)) > 0), shards[0])
    merged: Document = {"_id": base.get("bucket", base["_id"])}
    merged.update({name: base[name] for name in dimensions if name in base})
    totals: dict[str, int] = {}
    wm: dict[str, int] = {}
    for shard in shards:
        for name, value in shard.items():
            if name not in SHARD_FIELDS and name not in dimensions:
                totals[name] = totals.get(name, 0) + int(value)
        for source, offset in shard.get("wm", {}).items():
            wm[source] = max(wm.get(source, -1), offset)
    merged.update({name: total for name, total in totals.items() if total or not name.startswith(SPARSE)})
    merged["wm"] = wm
    return merged


def apply_delta(doc: Document | None, delta: Delta) -> Document | None:
    """The view document with `delta` applied (figures added, its dims set), or None if its watermark shows it was."""
    if doc is not None and doc.get("wm", {}).get(delta.source, -1) >= delta.offset:
        return None
    doc = {"_id": delta.key, "wm": {}} if doc is None else {**doc, "wm": dict(doc.get("wm", {}))}
    doc.update(delta.dims)
    for name, value in delta.figures.items():
        total = int(doc.get(name, 0)) + value
        if total == 0 and name.startswith(SPARSE):
            doc.pop(name, None)
        else:
            doc[name] = storable(total)
    doc["wm"][delta.source] = delta.offset
    return doc


def storable(value: int) -> int | str:
    """`value` as the store can hold it: an integer, or decimal text beyond 64 bits (read back with `int`)."""
    return value if -INT64 <= value < INT64 else str(value)


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
    if event.fields and not entry.get("fields"):
        entry["fields"] = event.fields
    if event.withdrawal is not None:
        entry["withdrawal"] = event.withdrawal
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


def field_digests(data: Any) -> dict[str, str]:
    """Field path (`participant/agency` for nested ones) → a short digest of its value."""
    if not isinstance(data, dict):
        return {}
    digests: dict[str, str] = {}
    for name, value in data.items():
        if isinstance(value, dict) and value:
            digests.update({f"{name}/{k}": v for k, v in field_digests(value).items()})
        else:
            encoded = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
            digests[str(name)] = hashlib.blake2b(encoded, digest_size=6).hexdigest()
    return {k.replace(".", "_").lstrip("$"): v for k, v in digests.items()}


def _apply_valid_version(record: Document, event: Event) -> list[Delta]:
    valid = record.get("valid")
    if valid is not None and event.seq <= valid["seq"]:
        return []
    if valid is not None and valid["hash"] == event.data_hash:
        record["valid"] = {**valid, "seq": event.seq}
        return []
    old = [_loaded(c) for c in valid["contributions"]] if valid else []
    new = contributions(event.type, event.data, event.id) if event.kind == "validated" else []
    record["valid"] = {"seq": event.seq, "hash": event.data_hash, "data": event.data,
                       "contributions": [_stored(c) for c in new]}
    # One delta per view document and event: a watermark admits each event once per document.
    # Both signs go to the shards of this event's partition (see the module docstring).
    merged: dict[tuple[str, str], Delta] = {}
    partition = int(event.source) if event.source.isdigit() else event.source
    for sign, group in ((-1, old), (1, new)):
        for c in group:
            prior = merged.get((c.view, c.key))
            figures = dict(prior.figures) if prior else {}
            for name, value in c.figures.items():
                figures[name] = figures.get(name, 0) + sign * value
            dims = {**c.dims, "bucket": c.key, "partition": partition}
            merged[(c.view, c.key)] = Delta(c.view, shard_key(c.key, event.source), dims, figures, event.source,
                                            event.offset)
    return list(merged.values())


def _stored(c: Contribution) -> Document:
    return {"view": c.view, "key": c.key, "dims": c.dims, "figures": {k: storable(v) for k, v in c.figures.items()}}


def _loaded(c: Document) -> Contribution:
    return Contribution(c["view"], c["key"], c["dims"], {k: int(v) for k, v in c["figures"].items()})
