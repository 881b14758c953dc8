"""How a submission record is stored: its version history and valid version packed into one compressed field.

Those two parts are most of a record and are only ever read whole, by `_id`; nothing queries inside
them. Stored as nested documents, each of their fields also costs the embedded store a type entry of
its own, so they go as one zlib-compressed JSON value (`packed`) instead, and the fields reads filter
on (type, status, country, submitter, times) stay plain. A record stored before packing (no `packed`)
reads as it is.
"""

from __future__ import annotations

import zlib

import orjson

from shared.store import Document

PACKED = ("history", "valid")
"""The record's fields that travel in `packed`."""


def pack(record: Document) -> Document:
    """The stored form of `record`."""
    inner = {name: record[name] for name in PACKED if name in record}
    stored = {name: value for name, value in record.items() if name not in PACKED}
    stored["packed"] = zlib.compress(orjson.dumps(inner), 1)
    return stored


def unpack(stored: Document) -> Document:
    """The record stored as `stored` (a stored record without `packed` is already whole)."""
    if "packed" not in stored:
        return stored
    record = {name: value for name, value in stored.items() if name != "packed"}
    record.update(orjson.loads(zlib.decompress(stored["packed"])))
    return record
