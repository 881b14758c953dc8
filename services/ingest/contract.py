"""Each submission type's `data`, as ingest's OpenAPI document declares it and as ingest checks it.

The shapes are the JSON Schemas published under `schemas/submissions/` (written from validate's models by
`dmp admin contracts write`), with the limits ingest itself enforces on every body added (`edge.sanitise`: no
control characters, strings of at most MAX_STRING characters, numbers that fit in 64 bits, field names the
store can hold). The document's `Submission` is a union discriminated by `type`; a body it allows is one
ingest takes, and ingest refuses with 422, naming each field, any `data` it forbids. What no JSON Schema can
say (codes from the reference lists, dates not in the future, fields that must agree) is validate's to
judge: such a submission is received, then rejected with every reason.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema_rs
from fastapi import FastAPI

from services.ingest.edge import CONTROL_CHARACTERS, FLOAT_LIMIT, INT64, MAX_STRING
from shared.envelope import SCHEMA_VERSIONS, ErrorDetail

REF = "#/components/schemas/"
SUBMISSION = REF + "Submission"


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def data_name(type_: str, version: int) -> str:
    """The component that declares `data` of `type_` in `version`: `SeizureDataV2`."""
    return f"{_camel(type_)}DataV{version}"


def submission_name(type_: str) -> str:
    """The component that declares one submission of `type_`: `SeizureSubmission`."""
    return f"{_camel(type_)}Submission"


def _published(type_: str, version: int) -> dict[str, Any]:
    text = resources.files("schemas").joinpath("submissions", f"{type_}.v{version}.schema.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema


_NO_CONTROL = f"^[^{CONTROL_CHARACTERS}]*$"
_FIELD_NAME = f"^[^{CONTROL_CHARACTERS}$.][^{CONTROL_CHARACTERS}.]*$"
_ONLY_SEPARATORS = r"[^\s./-]"
"""A national id must hold something besides separators: ingest pseudonymises its normalised form."""


def with_ingest_limits(node: Any) -> Any:
    """`node` (a JSON Schema) with what `edge.sanitise` refuses declared on every string, number and object."""
    if isinstance(node, list):
        return [with_ingest_limits(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: with_ingest_limits(value) for key, value in node.items()}
    kind = out.get("type")
    if kind == "string" and "enum" not in out and "const" not in out:
        out.setdefault("pattern", _NO_CONTROL)
        out["maxLength"] = min(out.get("maxLength", MAX_STRING), MAX_STRING)
    elif kind == "integer":
        out.setdefault("minimum", -INT64)
        out.setdefault("maximum", INT64 - 1)
    elif kind == "number":
        if "maximum" not in out and "exclusiveMaximum" not in out:
            out["exclusiveMaximum"] = FLOAT_LIMIT
        if "minimum" not in out and "exclusiveMinimum" not in out:
            out["exclusiveMinimum"] = -FLOAT_LIMIT
    elif kind == "object" and isinstance(out.get("additionalProperties"), dict):
        out["propertyNames"] = {"pattern": _FIELD_NAME, "maxLength": MAX_STRING}
    return out


def _rename_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, list):
        return [_rename_refs(item, prefix) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _rename_refs(value, prefix) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out["$ref"] = REF + prefix + ref.removeprefix("#/$defs/")
    return out


@cache
def components() -> dict[str, Any]:
    """Every schema the `Submission` union needs, by component name (the data's nested objects prefixed with
    their data's name: `SeizureDataV2Coordinates`)."""
    found: dict[str, Any] = {}
    for type_, versions in SCHEMA_VERSIONS.items():
        for version in versions:
            name = data_name(type_, version)
            schema = with_ingest_limits(_rename_refs(_published(type_, version), name))
            for key in ("$schema", "$id"):
                schema.pop(key, None)
            for def_name, definition in schema.pop("$defs", {}).items():
                found[name + def_name] = definition
            found[name] = {**schema, "title": name}
        found[submission_name(type_)] = _submission(type_, versions)
    participant = found[data_name("training", 1) + "ParticipantSubmission"]["properties"]["national_id"]
    participant["allOf"] = [{"pattern": _ONLY_SEPARATORS}]
    found["Submission"] = {
        "title": "Submission",
        "description": "One submission: its `type` says which fields `data` holds (DOMAIN.md).",
        "oneOf": [{"$ref": REF + submission_name(t)} for t in SCHEMA_VERSIONS],
        "discriminator": {"propertyName": "type",
                          "mapping": {t: REF + submission_name(t) for t in SCHEMA_VERSIONS}},
    }
    return found


def _submission(type_: str, versions: tuple[int, ...]) -> dict[str, Any]:
    data = [{"$ref": REF + data_name(type_, v)} for v in reversed(versions)]
    described = ", ".join(f"schema_version {v}: `{data_name(type_, v)}`" for v in versions)
    return {
        "title": submission_name(type_),
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "type", "data"],
        "properties": {
            "id": {"type": "string", "format": "uuid", "pattern": UUID_PATTERN,
                   "description": "Client-chosen UUID; the idempotency key. Same id, new data = amendment."},
            "type": {"type": "string", "enum": [type_]},
            "schema_version": {"type": "integer", "enum": list(versions), "default": versions[0],
                               "description": "Version of the type's data schema."},
            "data": data[0] if len(data) == 1 else {"anyOf": data, "description": described},
        },
    }


UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@cache
def _validator(type_: str, version: int) -> Any:
    """A validator of `type_`'s data in `version`, the other components reachable as the document has them."""
    root = {"$ref": REF + data_name(type_, version), "components": {"schemas": components()}}
    return jsonschema_rs.Draft202012Validator(root, validate_formats=True)


def data_problems(type_: str, version: int, data: Any) -> list[ErrorDetail]:
    """Why `data` is not what the document declares for `type_` (any of its versions, as the document
    allows); the problems are those against the version it was sent in. Empty when it is."""
    versions = SCHEMA_VERSIONS[type_]
    declared = version if version in versions else versions[0]
    if _validator(type_, declared).is_valid(data) or any(
            _validator(type_, v).is_valid(data) for v in versions if v != declared):
        return []
    return [problem for error in _validator(type_, declared).iter_errors(data) for problem in _details(error)]


def _details(error: Any) -> list[ErrorDetail]:
    loc: list[str | int] = ["body", "data", *error.instance_path]
    kind = type(error.kind).__name__
    if kind == "Required":
        return [ErrorDetail(loc=[*loc, error.kind.property], msg="is required", type="missing")]
    if kind == "AdditionalProperties":
        return [ErrorDetail(loc=[*loc, name], msg="is not a field of this submission type", type="extra_forbidden")
                for name in error.kind.unexpected]
    code = "".join(f"_{c.lower()}" if c.isupper() else c for c in kind).lstrip("_")
    return [ErrorDetail(loc=loc, msg=error.message, type=code)]


def declare_submission_schemas(app: FastAPI) -> None:
    """Add `Submission`, its variants and every type's data to the app's OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components())
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
