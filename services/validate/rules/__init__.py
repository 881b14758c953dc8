"""Validation core: `validate(received)` decides, and knows nothing of Kafka."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from services.validate.rules import seizure
from shared.envelope import ErrorDetail, SubmissionReceived

RULES_VERSION = "seizure/1"


@dataclass(frozen=True)
class Accepted:
    data: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    errors: list[ErrorDetail]


@dataclass(frozen=True)
class TypeRules:
    model: type[BaseModel]
    cross_field: Callable[[dict[str, Any], set[str]], list[tuple[str, str, str]]]
    normalise: Callable[[Any], dict[str, Any]]


TYPES: dict[tuple[str, int], TypeRules] = {
    ("seizure", 1): TypeRules(seizure.Seizure, seizure.cross_field_problems, seizure.normalise),
}


def validate(received: SubmissionReceived) -> Accepted | Rejected:
    """Apply every rule of the submission's type; return the normalised data or every problem found."""
    rules = TYPES.get((received.type, received.schema_version))
    if rules is None:
        msg = f"no rules for type {received.type!r} schema_version {received.schema_version}"
        return Rejected([ErrorDetail(loc=["type"], type="unknown_type", msg=msg)])
    errors: list[ErrorDetail] = []
    model: BaseModel | None = None
    try:
        model = rules.model.model_validate(received.data)
    except ValidationError as exc:
        errors = [_detail(e) for e in exc.errors(include_url=False)]
    invalid = {str(e.loc[1]) for e in errors if len(e.loc) > 1}
    errors += [ErrorDetail(loc=["data", field], msg=msg, type=code)
               for field, msg, code in rules.cross_field(received.data, invalid)]
    if errors or model is None:
        return Rejected(errors)
    return Accepted(rules.normalise(model))


def _detail(error: Any) -> ErrorDetail:
    msg = error["msg"]
    if error["type"] == "missing":
        msg = "is required"
    elif error["type"] == "extra_forbidden":
        msg = "is not a field of this submission type"
    return ErrorDetail(loc=["data", *error["loc"]], msg=msg, type=error["type"])
