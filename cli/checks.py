"""Checking a submission locally with exactly the server's rules, before anything is queued or sent.

The envelope is checked as ingest checks it (`SubmissionCreate`), the data with validate's own
`services.validate.rules.validate`. A training participant's identity number and name are replaced
by ingest with a keyed pseudonym before validate sees them; here the same replacement is made with
a throwaway key, in memory, only so the rules can run — the pseudonym is never stored or sent.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from services.ingest.pseudonym import pseudonymise_training
from services.validate.rules import SUBMITTED_MODELS, Rejected, validate
from shared.envelope import ErrorDetail, SubmissionCreate, SubmissionReceived, utcnow

LOCAL_ONLY_KEY = b"dmp-cli-local-check-only"
"""Keys the placeholder pseudonym used for local checking; unrelated to the server's key."""

_PLACEHOLDER_TRACE = "0" * 32


def check_envelope(envelope: Any) -> tuple[SubmissionCreate | None, list[ErrorDetail]]:
    """The envelope as ingest reads it and every problem the server would find: envelope first, then data."""
    if not isinstance(envelope, dict):
        return None, [ErrorDetail(loc=[], msg=f"must be a JSON object (one submission), got {type(envelope).__name__}",
                                  type="not_an_object")]
    try:
        parsed = SubmissionCreate.model_validate(envelope)
    except ValidationError as exc:
        return None, [ErrorDetail(loc=list(e["loc"]), msg="is required" if e["type"] == "missing" else e["msg"],
                                  type=e["type"]) for e in exc.errors(include_url=False)]
    return parsed, check_data(parsed.type, parsed.schema_version, parsed.data, str(parsed.id))


def check_data(type_: str, schema_version: int, data: dict[str, Any],
               submission_id: str | None = None) -> list[ErrorDetail]:
    """Every problem the server's rules find with `data`; locs read `["data", field, ...]` as the server's do."""
    errors: list[ErrorDetail] = []
    checked = data
    if type_ == "training":
        checked, identity_errors = pseudonymise_training(data, LOCAL_ONLY_KEY)
        errors += [_under_data(e) for e in identity_errors]
        errors += _raw_identity_errors(data, {tuple(e.loc) for e in errors})
    received = SubmissionReceived(id=submission_id or str(uuid.uuid4()), type=type_, schema_version=schema_version,
                                  data=checked, submitted_by="local-check", received_at=utcnow(),
                                  trace_id=_PLACEHOLDER_TRACE)
    verdict = validate(received)
    if isinstance(verdict, Rejected):
        seen = {tuple(e.loc) for e in errors}
        for error in verdict.errors:
            loc = tuple(error.loc)
            # The placeholder pseudonym is ours, not the officer's: its absence is already reported as national_id.
            if loc in seen or loc == ("data", "participant", "pseudonym"):
                continue
            errors.append(error)
    return errors


def _under_data(error: ErrorDetail) -> ErrorDetail:
    loc = list(error.loc)
    if loc[:1] == ["body"]:
        loc = loc[1:]
    return ErrorDetail(loc=loc, msg=error.msg, type=error.type)


def _raw_identity_errors(data: dict[str, Any], seen: set[tuple[str | int, ...]]) -> list[ErrorDetail]:
    """The officer's form of the participant (`SUBMITTED_MODELS`): the rules on the name and number ingest removes."""
    participant = data.get("participant")
    if not isinstance(participant, dict):
        return []
    try:
        SUBMITTED_MODELS[("training", 1)].model_validate(data)
    except ValidationError as exc:
        found = []
        for e in exc.errors(include_url=False):
            loc = ("data", *e["loc"])
            raw_identity = loc[:3] in (("data", "participant", "full_name"), ("data", "participant", "national_id"))
            if raw_identity and loc[:4] not in seen and loc[:3] not in seen:
                found.append(ErrorDetail(loc=list(loc), msg="is required" if e["type"] == "missing" else e["msg"],
                                         type=e["type"]))
        return found
    return []
