"""The published contracts: JSON Schemas of submissions and events, and the AsyncAPI document.

Generated from the pydantic models, committed under `schemas/`, and checked for drift by the
test suite: `dmp admin contracts write` regenerates them, `dmp admin contracts check` lists what drifted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from services.validate.rules import SUBMITTED_MODELS
from shared.envelope import (
    EVENT_RECEIVED,
    EVENT_REJECTED,
    EVENT_SOURCE,
    EVENT_VALIDATED,
    EVENT_WITHDRAWAL_REQUESTED,
    EVENT_WITHDRAWN,
    SCHEMA_VERSIONS,
    SubmissionCreate,
    SubmissionReceived,
    SubmissionRejected,
    SubmissionValidated,
    SubmissionWithdrawn,
    WithdrawalRequested,
)
from shared.topics import Topics

ROOT = Path(__file__).resolve().parent.parent / "schemas"
BASE_ID = "https://schemas.dmp.example/"

CHANNELS: dict[str, tuple[str, str]] = {
    "received": (Topics().received, "ingest"),
    "validated": (Topics().validated, "validate"),
    "rejected": (Topics().rejected, "validate"),
}
"""Channel → (topic, the service that publishes on it)."""
EVENTS: dict[str, tuple[type[BaseModel], str, str]] = {
    "received": (SubmissionReceived, EVENT_RECEIVED, "received"),
    "withdrawal_requested": (WithdrawalRequested, EVENT_WITHDRAWAL_REQUESTED, "received"),
    "validated": (SubmissionValidated, EVENT_VALIDATED, "validated"),
    "withdrawn": (SubmissionWithdrawn, EVENT_WITHDRAWN, "validated"),
    "rejected": (SubmissionRejected, EVENT_REJECTED, "rejected"),
}
"""Event → (model, CloudEvents type, channel). A channel's events are told apart by `ce_type`."""

CLOUDEVENT_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes in the Kafka binary binding, plus W3C trace context.",
    "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_subject", "ce_time", "traceparent"],
    "properties": {
        "ce_specversion": {"type": "string", "const": "1.0"},
        "ce_id": {"type": "string", "description": "Unique per event."},
        "ce_type": {"type": "string"},
        "ce_source": {"type": "string", "const": EVENT_SOURCE},
        "ce_subject": {"type": "string", "description": "The submission id (also the record key)."},
        "ce_time": {"type": "string", "format": "date-time"},
        "content-type": {"type": "string", "const": "application/json"},
        "traceparent": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$"},
    },
}


def _schema(model: type[BaseModel], schema_id: str, title: str | None = None) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": BASE_ID + schema_id,
            **({"title": title} if title else {}), **schema}


def build() -> dict[str, str]:
    """Every contract file: relative path → content."""
    files: dict[str, Any] = {"envelope.schema.json": _schema(SubmissionCreate, "envelope.schema.json")}
    for type_, versions in SCHEMA_VERSIONS.items():
        for version in versions:
            name = f"submissions/{type_}.v{version}.schema.json"
            files[name] = _schema(SUBMITTED_MODELS[(type_, version)], name, f"{type_} data, schema_version {version}")
    for kind, (model, _, _) in EVENTS.items():
        name = f"events/{kind}.v1.schema.json"
        files[name] = _schema(model, name)
    files["asyncapi.json"] = asyncapi()
    return {path: json.dumps(content, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
            for path, content in files.items()}


def asyncapi() -> dict[str, Any]:
    """An AsyncAPI 3.0 document for the three submission topics."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for channel, (topic, producer) in CHANNELS.items():
        names = {model.__name__: kind for kind, (model, _, on) in EVENTS.items() if on == channel}
        channels[channel] = {"address": topic,
                             "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
                             "description": f"Keyed by submission id; published by {producer}. Retention is "
                                            "unlimited so views can be rebuilt by replay."
                                            + (" Its events are told apart by `ce_type`." if len(names) > 1 else "")}
        refs = [{"$ref": f"#/channels/{channel}/messages/{name}"} for name in names]
        operations[f"{producer}Publishes{channel.capitalize()}"] = {
            "action": "send", "channel": {"$ref": f"#/channels/{channel}"}, "messages": refs}
        operations[f"subscribeTo{channel.capitalize()}"] = {
            "action": "receive", "channel": {"$ref": f"#/channels/{channel}"},
            "summary": "Downstream programmes subscribe here (read_committed: validate writes transactionally).",
            "messages": refs}
    for kind, (model, ce_type, _) in EVENTS.items():
        message = model.__name__
        messages[message] = {
            "name": message, "title": message, "summary": (model.__doc__ or "").strip().splitlines()[0],
            "contentType": "application/json",
            "headers": {**CLOUDEVENT_HEADERS, "properties": {
                **CLOUDEVENT_HEADERS["properties"], "ce_type": {"type": "string", "const": ce_type}}},
            "payload": {"$ref": f"events/{kind}.v1.schema.json"},
            "bindings": {"kafka": {"key": {"type": "string", "description": "The submission id."},
                                   "bindingVersion": "0.5.0"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "DMP Pipeline submission events", "version": "1.0.0",
                 "description": "Every stage publishes what it decided, keyed by submission id so the versions "
                                "of one submission stay in order."},
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka",
                              "description": "The broker `make up` starts."}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def write(root: Path = ROOT) -> list[str]:
    """Regenerate the files; return the ones that changed."""
    changed = []
    for path, content in build().items():
        target = root / path
        if not target.exists() or target.read_text() != content:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            changed.append(path)
    return changed


def check(root: Path = ROOT) -> list[str]:
    """The files whose committed content differs from what the models generate (or that are missing)."""
    expected = build()
    drift = [p for p, c in expected.items() if not (root / p).exists() or (root / p).read_text() != c]
    extra = [str(p.relative_to(root)) for p in root.rglob("*.json") if str(p.relative_to(root)) not in expected]
    return sorted(drift + extra)
