"""Reading the three submission topics into projection events."""

from __future__ import annotations

import logging

import orjson

from services.aggregate.projection import Event, field_digests
from shared.envelope import content_hash
from shared.topics import Topics

log = logging.getLogger(__name__)


def to_event(topic: str, partition: int, offset: int, value: bytes | None, topics: Topics) -> Event | None:
    """The projection event for one record, or None (logged) if it cannot be read."""
    try:
        raw = orjson.loads(value or b"")
        if topic == topics.received:
            return Event("received", raw["id"], raw["type"], offset,
                         content_hash(raw["type"], raw["schema_version"], raw["data"]),
                         raw["received_at"], raw["submitted_by"], raw["received_at"],
                         fields=field_digests(raw["data"]), country=reported_country(raw["data"]))
        if topic == topics.validated:
            return Event("validated", raw["id"], raw["type"], raw["received"]["seq"], raw["data_hash"],
                         raw["validated_at"], raw["submitted_by"], raw["received_at"], data=raw["data"],
                         source=str(partition), offset=offset)
        if topic == topics.rejected:
            return Event("rejected", raw["id"], raw["type"], raw["received"]["seq"], raw["data_hash"],
                         raw["rejected_at"], raw["submitted_by"], raw["received_at"], errors=raw["errors"],
                         fields=field_digests(raw["original"].get("data")),
                         country=reported_country(raw["original"].get("data")))
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        log.error("unreadable event skipped", extra={"topic": topic, "partition": partition, "offset": offset,
                                                     "error": repr(exc)})
        return None
    return None


def reported_country(data: object) -> str | None:
    """The country a submission reports for: `country`, or a training's `host_country`."""
    if not isinstance(data, dict):
        return None
    country = data.get("country", data.get("host_country"))
    return country if isinstance(country, str) else None
