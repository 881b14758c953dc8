"""Validation core: `validate(received)` decides, and knows nothing of Kafka.

Every (type, schema_version) a client may send has its rules here. A submission is checked
against the rules of the version it was sent in, so every error names a field the officer sent;
older versions are then upcast, one version at a time, to the type's latest version, which is the
only form that is normalised and published.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from services.validate.rules import financial_case, price, seizure, training, treatment_facility
from services.validate.rules.fields import CrossFieldProblem, as_json
from shared.envelope import ErrorDetail, SubmissionReceived

RULES_VERSION = "rules/3"
"""rules/1: seizure v1. rules/2: seizure v2 (coordinates as one object; v1 upcast to it), price,
financial_case, treatment_facility and training v1. rules/3: a seizure's coordinates fall in or near
its country."""


@dataclass(frozen=True)
class Accepted:
    data: dict[str, Any]
    schema_version: int
    """The version `data` is in: the type's latest, whatever version was submitted."""


@dataclass(frozen=True)
class Rejected:
    errors: list[ErrorDetail]


@dataclass(frozen=True)
class TypeRules:
    """The rules of one (type, schema_version): the latest normalises, every older one upcasts to the next."""

    model: type[BaseModel]
    cross_field: Callable[[dict[str, Any], set[str]], list[CrossFieldProblem]]
    normalise: Callable[[Any], dict[str, Any]] | None = None
    upcast: Callable[[dict[str, Any]], dict[str, Any]] | None = None


TYPES: dict[tuple[str, int], TypeRules] = {
    ("seizure", 1): TypeRules(seizure.SeizureV1, seizure.cross_field_problems_v1,
                              upcast=seizure.upcast_seizure_v1_to_v2),
    ("seizure", 2): TypeRules(seizure.Seizure, seizure.cross_field_problems, seizure.normalise),
    ("price", 1): TypeRules(price.Price, price.cross_field_problems, price.normalise),
    ("financial_case", 1): TypeRules(financial_case.FinancialCase, financial_case.cross_field_problems,
                                     financial_case.normalise),
    ("treatment_facility", 1): TypeRules(treatment_facility.TreatmentFacility,
                                         treatment_facility.cross_field_problems, treatment_facility.normalise),
    ("training", 1): TypeRules(training.Training, training.cross_field_problems, training.normalise),
}

SUPPORTED: frozenset[tuple[str, int]] = frozenset(TYPES)
"""Every (type, schema_version) validate accepts."""

LATEST: dict[str, int] = {type_: max(v for t, v in TYPES if t == type_) for type_, _ in TYPES}
"""Type → its latest schema_version: the version of all validated data."""

SUBMITTED_MODELS: dict[tuple[str, int], type[BaseModel]] = {
    **{key: rules.model for key, rules in TYPES.items()},
    ("training", 1): training.TrainingSubmission,
}
"""(type, schema_version) → what the officer sends, for published JSON Schemas (training before ingest
pseudonymises it)."""


def validate(received: SubmissionReceived) -> Accepted | Rejected:
    """Apply every rule of the submission's type and version; return the latest normalised form or every problem."""
    type_, version = received.type, received.schema_version
    if type_ not in LATEST:
        return Rejected([ErrorDetail(loc=["type"], type="unknown_type",
                                     msg=f"no rules for type {type_!r} (known: {', '.join(sorted(LATEST))})")])
    if (type_, version) not in TYPES:
        known = ", ".join(str(v) for t, v in sorted(TYPES) if t == type_)
        return Rejected([ErrorDetail(loc=["schema_version"], type="unknown_schema_version",
                                     msg=f"{type_} has no schema_version {version} (known: {known})")])
    model, errors = _check(TYPES[(type_, version)], received.data)
    if model is None:
        return Rejected(errors)
    while version < LATEST[type_]:
        upcast = TYPES[(type_, version)].upcast
        assert upcast is not None, (type_, version)
        version += 1
        model, errors = _check(TYPES[(type_, version)], upcast(as_json(model)))
        if model is None:  # an upcaster bug, not the officer's: reject (replayable) and say so
            detail = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors)
            return Rejected([ErrorDetail(loc=["schema_version"], type="upcast_failed",
                                         msg=f"valid as schema_version {received.schema_version} but not once "
                                             f"upcast to {version} ({detail})")])
    normalise = TYPES[(type_, version)].normalise
    assert normalise is not None, (type_, version)
    data = normalise(model)
    data["normalised"]["submitted_schema_version"] = received.schema_version
    return Accepted(data, version)


def _check(rules: TypeRules, data: dict[str, Any]) -> tuple[BaseModel | None, list[ErrorDetail]]:
    """The validated model, or None and every problem: field by field, then across fields."""
    errors: list[ErrorDetail] = []
    model: BaseModel | None = None
    try:
        # rules.model.model_validate(data), without the wrapper's keyword handling: this is the hot path.
        model = rules.model.__pydantic_validator__.validate_python(data)
    except ValidationError as exc:
        errors = [_detail(e) for e in exc.errors(include_url=False)]
    invalid = {str(e.loc[1]) for e in errors if len(e.loc) > 1}
    errors += [ErrorDetail(loc=["data", field], msg=msg, type=code)
               for field, msg, code in rules.cross_field(data, invalid)]
    return (None, errors) if errors else (model, errors)


def _detail(error: Any) -> ErrorDetail:
    msg = error["msg"]
    if error["type"] == "missing":
        msg = "is required"
    elif error["type"] == "extra_forbidden":
        msg = "is not a field of this submission type"
    # A bad key of an object (in_treatment's drug codes) is reported at the key, not at "<key>/[key]".
    loc = [part for part in error["loc"] if part != "[key]"]
    return ErrorDetail(loc=["data", *loc], msg=msg, type=error["type"])
