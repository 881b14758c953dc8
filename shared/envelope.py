"""The submission envelope and the events every stage publishes about it.

A field officer sends a `SubmissionCreate`; ingest publishes it as `SubmissionReceived`;
validate publishes `SubmissionValidated` or `SubmissionRejected`. A withdrawal travels the same
way: ingest publishes `WithdrawalRequested` on the received topic, validate `SubmissionWithdrawn` on
the validated one. Every event is keyed by the submission id, so all versions of one submission
stay on one partition, in order.
"""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, Literal, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

SCHEMA_VERSIONS: dict[str, tuple[int, ...]] = {
    "seizure": (1, 2),
    "price": (1,),
    "financial_case": (1,),
    "treatment_facility": (1,),
    "training": (1,),
}
"""Each submission type and the schema versions accepted for it (the last is the current one)."""

SUBMISSION_TYPES: tuple[str, ...] = tuple(SCHEMA_VERSIONS)

SubmissionType = Literal["seizure", "price", "financial_case", "treatment_facility", "training"]
Status = Literal["received", "validated", "rejected", "withdrawn"]
REASON_MAX = 500
"""The longest withdrawal reason accepted."""
EVENT_SOURCE = "urn:dmp:pipeline"


def utcnow() -> datetime:
    return datetime.now(UTC)


class ErrorDetail(BaseModel):
    """One problem with a submission: where (`loc`), what (`msg`, for people) and a code (`type`)."""

    loc: list[str | int]
    msg: str
    type: str


class SubmissionCreate(BaseModel):
    """What a field officer sends: one submission of one type (DOMAIN.md, the envelope)."""

    model_config = ConfigDict(extra="forbid")

    id: uuid.UUID = Field(description="Client-chosen UUID; the idempotency key. Same id, new data = amendment.")
    type: SubmissionType = Field(description="What is reported.")
    schema_version: int = Field(1, ge=1, description="Version of the type's data schema.")
    data: dict[str, Any] = Field(description="The type-specific fields (DOMAIN.md).")

    @model_validator(mode="after")
    def _version_is_supported(self) -> SubmissionCreate:
        supported = SCHEMA_VERSIONS[self.type]
        if self.schema_version not in supported:
            raise PydanticCustomError(
                "schema_version_unsupported", "{type} supports schema_version {supported}",
                {"type": self.type, "supported": " or ".join(map(str, supported))})
        return self


class PublishedEvent(BaseModel):
    """An event the services publish: `encode()` is its one encoder, `decode()` its one decoder."""

    def encode(self) -> bytes:
        """This event as published (the model's own JSON; the frequent events override it with a faster one)."""
        return self.model_dump_json().encode()

    @classmethod
    def decode(cls, value: bytes) -> Self:
        """The event read from `value` (a ValidationError for anything that is not one)."""
        # cls.model_validate_json(value), without the wrapper's keyword handling (once per event).
        decoded: Self = cls.__pydantic_validator__.validate_json(value)
        return decoded


class SubmissionReceived(PublishedEvent):
    """Published by ingest: the envelope as received, plus who sent it, when, and a trace id."""

    id: str
    type: str
    schema_version: int
    data: dict[str, Any]
    submitted_by: str
    received_at: datetime
    trace_id: str

    def encode(self) -> bytes:
        """This event as published: `encode_fields` of its fields."""
        return self.encode_fields(self.id, self.type, self.schema_version, orjson.dumps(self.data),
                                  self.submitted_by, self.received_at, self.trace_id)

    @staticmethod
    def encode_fields(id: str, type: str, schema_version: int, data: bytes, submitted_by: str,
                      received_at: datetime, trace_id: str) -> bytes:
        """The event's one encoder: its fields filled into a template, `data` already encoded as JSON.

        Ingest encodes every submission with it without building the model: orjson's output buffer, kept
        per item until a batch is sent, costs more than the encoding. Id (a UUID's text) and type (a known
        one) need no escaping. A test pins its output to the model's JSON Schema and to the model.
        """
        return _RECEIVED % (id.encode(), type.encode(), schema_version, data, orjson.dumps(submitted_by),
                            orjson.dumps(received_at, option=orjson.OPT_UTC_Z), orjson.dumps(trace_id))



_RECEIVED = (b'{"id":"%s","type":"%s","schema_version":%d,"data":%s,"submitted_by":%s,"received_at":%s,'
             b'"trace_id":%s}')


class Provenance(BaseModel):
    """Where in the received log a decision came from; `seq` orders versions of one submission."""

    partition: int
    seq: int = Field(description="Offset of the received event: later versions have larger seq.")


class SubmissionValidated(PublishedEvent):
    """Published by validate: the normalised submission."""

    id: str
    type: str
    schema_version: int
    data: dict[str, Any]
    data_hash: str
    received: Provenance
    submitted_by: str
    received_at: datetime
    validated_at: datetime
    validator: str
    trace_id: str

    def encode(self) -> bytes:
        """This event as published: `encode_fields` of its fields."""
        return self.encode_fields(self.id, self.type, self.schema_version, self.data, self.data_hash,
                                  self.received.partition, self.received.seq, self.submitted_by, self.received_at,
                                  self.validated_at, self.validator, self.trace_id)

    @staticmethod
    def encode_fields(id: str, type: str, schema_version: int, data: dict[str, Any], data_hash: str,
                      partition: int, seq: int, submitted_by: str, received_at: datetime, validated_at: datetime,
                      validator: str, trace_id: str) -> bytes:
        """The event's one encoder, straight from its fields: validate publishes nearly every event through it
        without building the model and its `Provenance`. A test pins it to the model's JSON Schema."""
        return orjson.dumps({
            "id": id, "type": type, "schema_version": schema_version, "data": data, "data_hash": data_hash,
            "received": {"partition": partition, "seq": seq}, "submitted_by": submitted_by,
            "received_at": received_at, "validated_at": validated_at, "validator": validator,
            "trace_id": trace_id}, option=orjson.OPT_UTC_Z)



class SubmissionRejected(PublishedEvent):
    """Published by validate: the untouched original plus every reason (a replayable bad row)."""

    id: str
    type: str
    original: dict[str, Any]
    errors: list[ErrorDetail]
    data_hash: str
    received: Provenance
    submitted_by: str
    received_at: datetime
    rejected_at: datetime
    rejected_by: str
    trace_id: str



class Withdrawal(BaseModel):
    """Why a submission was withdrawn, and by whom."""

    reason: str = Field(min_length=1, max_length=REASON_MAX, description="Why, in the withdrawer's words.")
    withdrawn_by: str = Field(description="The key id that withdrew it: its submitter's or an admin's.")
    role: str = Field(description="That key's role (`officer` or `admin`).")


class WithdrawalRequested(PublishedEvent):
    """Published by ingest on the received topic: a request, already authorised, to withdraw a submission.

    It is a version of the submission like any other: ordered with its other versions by its offset.
    """

    id: str
    type: str = Field(description="The submission's type.")
    withdrawal: Withdrawal
    submitted_by: str = Field(description="Who owns the submission (the key that first sent it), not who withdrew it.")
    received_at: datetime = Field(description="When ingest took the request.")
    trace_id: str


class SubmissionWithdrawn(PublishedEvent):
    """Published by validate on the validated topic: the submission leaves every view as of this version.

    Published where the submission's valid versions are, so a subscriber reads its versions and its
    withdrawal in one order; a later valid version brings it back.
    """

    id: str
    type: str
    status: Literal["withdrawn"] = "withdrawn"
    withdrawal: Withdrawal
    received: Provenance
    submitted_by: str = Field(description="Who owns the submission (the key that first sent it), not who withdrew it.")
    received_at: datetime = Field(description="When ingest took the request.")
    withdrawn_at: datetime
    trace_id: str


def dumps(value: Any) -> bytes:
    """Encode an event or document as compact JSON (datetimes as ISO 8601)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return orjson.dumps(value)


def content_hash(type_: str, schema_version: int, data: Any) -> str:
    """A stable digest of what was submitted: the same data in any key order hashes the same."""
    canonical = orjson.dumps({"type": type_, "schema_version": schema_version, "data": data},
                             option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()


def new_trace_id() -> str:
    return os.urandom(16).hex()  # = secrets.token_hex(16), less its wrappers


def traceparent(trace_id: str, span_id: str | None = None) -> str:
    """A W3C `traceparent` header value for `trace_id` with `span_id` (16 hex digits), by default a fresh one."""
    return f"00-{trace_id}-{span_id or secrets.token_hex(8)}-01"


def trace_id_from(traceparent_value: str | None) -> str | None:
    """The trace id inside a W3C `traceparent`, or None if absent or malformed."""
    if not traceparent_value:
        return None
    parts = traceparent_value.strip().split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        try:
            int(parts[1], 16)
        except ValueError:
            return None
        return parts[1].lower()
    return None


_VARIANT = {digit: "89ab"[int(digit, 16) & 0x3] for digit in "0123456789abcdef"}
"""A hex digit with its top two bits set to the RFC 4122 variant (10)."""


def uuid4_text(random16: bytes) -> str:
    """`str(uuid.UUID(bytes=random16, version=4))`, without building the UUID object (hot: one per event)."""
    h = random16.hex()  # version 4 replaces digit 12; the variant, the top bits of digit 16
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


_SPECVERSION = ("ce_specversion", b"1.0")
_SOURCE = ("ce_source", EVENT_SOURCE.encode())
_CONTENT_TYPE = ("content-type", b"application/json")


@functools.lru_cache(maxsize=16)
def _ce_type(event_type: str) -> tuple[str, bytes]:
    return ("ce_type", event_type.encode())


def _iso_bytes(time: datetime) -> bytes:
    """`time.isoformat().encode()`; for UTC times (every event's) orjson writes the same text faster."""
    return orjson.dumps(time)[1:-1] if time.tzinfo is UTC else time.isoformat().encode()


def cloudevent_headers(event_type: str, subject: str, trace_id: str, time: datetime) -> list[tuple[str, bytes]]:
    """CloudEvents Kafka binding attributes (`ce_*`) plus a W3C `traceparent`."""
    random = os.urandom(24)  # as secrets.token_bytes; one read of it: 16 bytes for the event id, 8 for the span
    return [  # the constant headers are shared tuples: only four are built per event
        _SPECVERSION,
        ("ce_id", uuid4_text(random[:16]).encode()),
        _ce_type(event_type),
        _SOURCE,
        ("ce_subject", subject.encode()),
        ("ce_time", _iso_bytes(time)),
        _CONTENT_TYPE,
        ("traceparent", traceparent(trace_id, random[16:].hex()).encode()),
    ]


EVENT_RECEIVED = "org.dmp.submission.received.v1"
EVENT_VALIDATED = "org.dmp.submission.validated.v1"
EVENT_REJECTED = "org.dmp.submission.rejected.v1"
EVENT_WITHDRAWAL_REQUESTED = "org.dmp.submission.withdrawal_requested.v1"
EVENT_WITHDRAWN = "org.dmp.submission.withdrawn.v1"
