"""Training rules (DOMAIN.md, `training`, schema_version 1): one participant in one law-enforcement course.

The platform never stores or publishes a participant's identity document number or name. Ingest
replaces `participant.national_id` and `participant.full_name` by `participant.pseudonym`, a keyed
HMAC-SHA256 (64 lowercase hex characters), before it publishes; so validate checks the pseudonymised
form (`Training`), and the officer's form (`TrainingSubmission`) exists only to publish its schema.
"""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints

from services.validate.rules.fields import CrossFieldProblem, Identifier, Iso3, ReportDate, Text, as_json
from shared.reference import Gender

Pseudonym = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]

RAW_IDENTITY = ("national_id", "full_name")
"""Participant fields that must never leave ingest."""


class _ParticipantFields(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    agency: Text
    country: Iso3
    gender: Gender
    role: Text


class Participant(_ParticipantFields):
    """A course participant, known only by a keyed pseudonym."""

    pseudonym: Pseudonym


class ParticipantSubmission(_ParticipantFields):
    """A course participant as the officer reports them (ingest replaces `national_id` and `full_name`)."""

    national_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    full_name: Text


class _TrainingFields(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    course_id: Identifier
    course_title: Text
    starts_on: ReportDate
    ends_on: ReportDate
    host_country: Iso3
    programme: Text


class Training(_TrainingFields):
    """One participant in one law-enforcement training course, as validate sees it (pseudonymised)."""

    participant: Participant


class TrainingSubmission(_TrainingFields):
    """One participant in one training course, as the officer sends it.

    Ingest de-identifies the participant: it replaces `participant.national_id` and
    `participant.full_name` by a keyed HMAC-SHA256 before anything is published or stored, so the
    platform recognises a person across courses without ever keeping who they are. This model only
    describes the submitted form, for the published JSON Schema; validation checks the replaced form.
    """

    participant: ParticipantSubmission


def cross_field_problems(data: dict[str, Any], invalid: set[str]) -> list[CrossFieldProblem]:
    """A course cannot end before it starts: reported on `ends_on`."""
    if {"starts_on", "ends_on"} & invalid or "starts_on" not in data or "ends_on" not in data:
        return []
    if _as_date(data["ends_on"]) < _as_date(data["starts_on"]):
        return [("ends_on", f"must not be before starts_on ({data['starts_on']})", "date_order")]
    return []


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def title_key(title: str) -> str:
    """A course title folded for matching: NFKC, casefolded, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", title).casefold())
    return " ".join(folded.split())


def normalise(training: Training) -> dict[str, Any]:
    """The validated participation as JSON, plus the course year and a title key for matching courses."""
    data = as_json(training)
    data["normalised"] = {"year": training.starts_on.year, "title_key": title_key(training.course_title)}
    return data


def without_raw_identity(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with any raw participant identity blanked: for rejected events, should ingest ever miss it."""
    participant = data.get("participant")
    if not isinstance(participant, dict) or not set(RAW_IDENTITY) & participant.keys():
        return data
    redacted = {k: ("[redacted]" if k in RAW_IDENTITY else v) for k, v in participant.items()}
    return {**data, "participant": redacted}
