"""Reading the three submission topics into projection events, through each event's decoder.

The received topic carries submissions and withdrawal requests, the validated topic valid versions and
withdrawals: the frequent one is tried first, the other only when that fails.
"""

from __future__ import annotations

import logging

import orjson
from pydantic import ValidationError

from services.aggregate.projection import WITHDRAWN, Event, field_digests
from shared.envelope import (
    SubmissionReceived,
    SubmissionRejected,
    SubmissionValidated,
    SubmissionWithdrawn,
    WithdrawalRequested,
    content_hash,
)
from shared.topics import Topics

log = logging.getLogger(__name__)


def _text(time: object) -> str:
    """A decoded event time as the events carry it (ISO 8601, `Z` for UTC)."""
    return orjson.dumps(time, option=orjson.OPT_UTC_Z)[1:-1].decode()


def to_event(topic: str, partition: int, offset: int, value: bytes | None, topics: Topics) -> Event | None:
    """The projection event for one record, or None (logged) if it cannot be read."""
    value = value or b""
    try:
        if topic == topics.received:
            return _received(value, offset)
        if topic == topics.validated:
            return _validated(value, partition, offset)
        if topic == topics.rejected:
            rejected = SubmissionRejected.decode(value)
            return Event("rejected", rejected.id, rejected.type, rejected.received.seq, rejected.data_hash,
                         _text(rejected.rejected_at), rejected.submitted_by, _text(rejected.received_at),
                         errors=[e.model_dump() for e in rejected.errors],
                         fields=field_digests(rejected.original.get("data")),
                         country=reported_country(rejected.original.get("data")))
    except ValidationError as exc:
        log.error("unreadable event skipped", extra={"topic": topic, "partition": partition, "offset": offset,
                                                     "error": repr(exc)})
        return None
    return None


def _received(value: bytes, offset: int) -> Event:
    try:
        received = SubmissionReceived.decode(value)
    except ValidationError:
        request = WithdrawalRequested.decode(value)
        at = _text(request.received_at)
        return Event("received", request.id, request.type, offset, WITHDRAWN, at, request.submitted_by, at,
                     withdrawal=request.withdrawal.model_dump())
    at = _text(received.received_at)
    return Event("received", received.id, received.type, offset,
                 content_hash(received.type, received.schema_version, received.data),
                 at, received.submitted_by, at, fields=field_digests(received.data),
                 country=reported_country(received.data))


def _validated(value: bytes, partition: int, offset: int) -> Event:
    try:
        validated = SubmissionValidated.decode(value)
    except ValidationError:
        withdrawn = SubmissionWithdrawn.decode(value)
        return Event("withdrawn", withdrawn.id, withdrawn.type, withdrawn.received.seq, WITHDRAWN,
                     _text(withdrawn.withdrawn_at), withdrawn.submitted_by, _text(withdrawn.received_at),
                     source=str(partition), offset=offset, withdrawal=withdrawn.withdrawal.model_dump())
    return Event("validated", validated.id, validated.type, validated.received.seq, validated.data_hash,
                 _text(validated.validated_at), validated.submitted_by, _text(validated.received_at),
                 data=validated.data, source=str(partition), offset=offset)


def reported_country(data: object) -> str | None:
    """The country a submission reports for: `country`, or a training's `host_country`."""
    if not isinstance(data, dict):
        return None
    country = data.get("country", data.get("host_country"))
    return country if isinstance(country, str) else None
