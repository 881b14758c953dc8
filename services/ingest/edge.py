"""Reading a submission off an HTTP request: content type, size, JSON, envelope shape. Nothing else."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, NamedTuple

import orjson
from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request

from shared.access import request_header
from shared.envelope import SCHEMA_VERSIONS, SUBMISSION_TYPES, ErrorDetail, SubmissionCreate
from shared.errors import DmpError


class BadSubmission(DmpError):
    """The request is not a submission at all; `status` is the HTTP answer, `errors` say why."""

    def __init__(self, status: int, errors: list[ErrorDetail]) -> None:
        super().__init__(errors[0].msg if errors else "bad submission")
        self.status = status
        self.errors = errors


def _problem(status: int, loc: list[str | int], msg: str, code: str) -> BadSubmission:
    return BadSubmission(status, [ErrorDetail(loc=loc, msg=msg, type=code)])


def _content_type(request: Request, allowed: tuple[str, ...]) -> str:
    content_type = (request_header(request, b"content-type") or "").split(";")[0].strip().lower()
    if content_type not in allowed:
        raise _problem(415, ["header", "content-type"],
                       f"must be {' or '.join(allowed)}, got {content_type or 'nothing'!r}", "unsupported_media_type")
    return content_type


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request_header(request, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _problem(413, ["body"], f"is {declared} bytes; the limit is {limit}", "body_too_large")
    # Request.stream(), without its async generator: most bodies arrive in one message.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await request.receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _problem(413, ["body"], f"is larger than the limit of {limit} bytes", "body_too_large")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    if not size:
        raise _problem(400, ["body"], "is empty; send JSON", "empty_body")
    return b"".join(chunks)


def is_plain(body: bytes) -> bool:
    """True when JSON text is ASCII without escapes or DEL. orjson refuses raw control characters inside
    strings, so every string parsed from such text is printable ASCII: NFC already, no control characters."""
    return body.isascii() and b"\\" not in body and b"\x7f" not in body


async def read_json_body(request: Request, limit: int) -> tuple[Any, bytes]:
    """The parsed JSON body and its bytes; 415 for another content type, 413 past `limit` bytes, 400 if not JSON."""
    _content_type(request, ("application/json",))
    body = await _read_body(request, limit)
    try:
        return orjson.loads(body), body
    except orjson.JSONDecodeError as exc:
        raise _problem(400, ["body"], f"is not valid JSON: {exc}", "invalid_json") from None


async def read_batch_body(request: Request, limit: int,
                          max_items: int) -> tuple[list[Any | BadSubmission], bytes]:
    """The batch's items and the body's bytes: a JSON array, or NDJSON where an unreadable line is that item's
    error only."""
    content_type = _content_type(request, ("application/json", "application/x-ndjson"))
    body = await _read_body(request, limit)
    items: list[Any | BadSubmission]
    if content_type == "application/json":
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise _problem(400, ["body"], f"is not valid JSON: {exc}", "invalid_json") from None
        if not isinstance(parsed, list):
            raise _problem(422, ["body"], "must be a JSON array of submissions (or NDJSON, one per line)",
                           "not_an_array")
        items = parsed
    else:
        items = []
        for number, line in enumerate(body.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                items.append(_problem(400, ["body", f"line {number}"], f"is not valid JSON: {exc}", "invalid_json"))
    if not items:
        raise _problem(422, ["body"], "holds no submissions", "empty_batch")
    if len(items) > max_items:
        raise _problem(413, ["body"], f"holds {len(items)} submissions; at most {max_items} per batch",
                       "batch_too_large")
    return items, body


def parse_envelope(value: Any) -> SubmissionCreate:
    """The envelope, or 422 naming every envelope field that is missing or wrong."""
    if not isinstance(value, dict):
        raise _problem(422, ["body"], f"must be a JSON object (one submission), got {type(value).__name__}",
                       "not_an_object")
    try:
        # SubmissionCreate.model_validate(value), without the wrapper's keyword handling (once per submission).
        envelope: SubmissionCreate = SubmissionCreate.__pydantic_validator__.validate_python(value)
    except ValidationError as exc:
        raise BadSubmission(422, [_detail(e) for e in exc.errors(include_url=False)]) from None
    return envelope


class Envelope(NamedTuple):
    """A checked envelope: what `SubmissionCreate` holds, its id as canonical text (`str` of the UUID)."""

    id: str
    type: str
    schema_version: int
    data: dict[str, Any]


_CANONICAL_UUID = re.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def read_envelope(value: Any) -> Envelope:
    """`parse_envelope` of a body as `sanitise` returns it (object keys all strings), as an `Envelope`.

    Almost every envelope already has each field in its final form (exactly the four fields or all but
    `schema_version`, an id as `str(uuid)` writes it, a known type and version, a `data` object): those are
    taken as they are, without building the model. Any other body gets the model's checks and errors.
    """
    if type(value) is dict:
        submission_id, kind, data = value.get("id"), value.get("type"), value.get("data")
        version = value.get("schema_version", 1)
        if (len(value) == 3 + ("schema_version" in value) and type(submission_id) is str and type(kind) is str
                and type(data) is dict and type(version) is int and version in SCHEMA_VERSIONS.get(kind, ())
                and _CANONICAL_UUID.fullmatch(submission_id)):
            return Envelope(submission_id, kind, version, data)
    envelope = parse_envelope(value)
    return Envelope(str(envelope.id), envelope.type, envelope.schema_version, envelope.data)


def _detail(error: Any) -> ErrorDetail:
    loc = ["body", *error["loc"]]
    code, msg = error["type"], error["msg"]
    if code == "schema_version_unsupported":
        loc = ["body", "schema_version"]
    elif error["loc"] == ("type",) and code == "literal_error":
        msg, code = f"unknown submission type; known types: {', '.join(SUBMISSION_TYPES)}", "unknown_type"
    elif code == "missing":
        msg = "is required"
    elif code == "extra_forbidden":
        msg = "is not an envelope field (type-specific fields go inside `data`)"
    return ErrorDetail(loc=loc, msg=msg, type=code)


MAX_DEPTH = 16
MAX_STRING = 10_000
INT64 = 2**63
FLOAT_LIMIT = 2.0**63


def sanitise(value: Any, plain: bool = False) -> Any:
    """The body with every string in Unicode NFC; 422 naming the path of anything hostile.

    Refused: nesting deeper than MAX_DEPTH, strings longer than MAX_STRING, NUL and other control
    characters, integers outside 64 bits (the store cannot hold them), and object keys the store
    cannot hold (starting with `$` or containing `.`).

    Almost every body is clean and already NFC: one quick pass proves it and the body is returned
    as it is. Only a body that needs a change or has a problem takes the slower pass that copies
    it and names every problem's path. `plain` says the value was parsed from JSON for which
    `is_plain` holds: its strings then need only their length checked.
    """
    if _clean(value, 0, plain):
        return value
    problems: list[ErrorDetail] = []
    cleaned = _sanitise(value, ["body"], problems)
    if problems:
        raise BadSubmission(422, problems[:50])
    return cleaned


CONTROL_CHARACTERS = "\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
"""Unicode's control characters (category Cc) less tab, line feed and carriage return, as a character range."""
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")


def _clean_text(value: str) -> bool:
    return (len(value) <= MAX_STRING and _CONTROL.search(value) is None
            and (value.isascii() or unicodedata.is_normalized("NFC", value)))


_GOOD_KEYS: set[str] = set()
"""Object keys seen to pass every check (field names repeat from one submission to the next); bounded."""
_GOOD_KEYS_MAX, _GOOD_KEY_LENGTH = 4096, 64


def _good_keys(value: dict[Any, Any], plain: bool) -> bool:
    """True when every key of `value` is a string the store can hold and that needs no change."""
    if value.keys() <= _GOOD_KEYS:  # JSON object keys are exact strs: equal to a remembered key = that key
        return True
    for key in value:
        if (type(key) is not str or not key or key[0] == "$" or "." in key
                or not (len(key) <= MAX_STRING if plain else _clean_text(key))):
            return False
    if len(_GOOD_KEYS) < _GOOD_KEYS_MAX:
        _GOOD_KEYS.update(key for key in value if len(key) <= _GOOD_KEY_LENGTH and _clean_text(key))
    return True


def _clean(value: Any, depth: int, plain: bool) -> bool:
    """True when `value` needs no change and breaks no limit (the quick pass of `sanitise`).

    Containers check their scalar items in line (one call per container, not per value); a
    container at MAX_DEPTH may hold nothing, as its items would be deeper than allowed.
    """
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    items: Any
    if kind is dict:
        if not _good_keys(value, plain):
            return False
        items = value.values()
    elif kind is list:
        items = value
    elif kind is str:
        return len(value) <= MAX_STRING if plain else _clean_text(value)
    elif kind is int:
        return bool(-INT64 <= value < INT64)
    elif kind is float:
        return bool(-FLOAT_LIMIT < value < FLOAT_LIMIT)  # False for inf and nan too
    else:
        return value is None or kind is bool
    if depth == MAX_DEPTH and value:
        return False
    for item in items:
        kind = type(item)
        if kind is str:
            if not (len(item) <= MAX_STRING if plain else _clean_text(item)):
                return False
        elif kind is int:
            if not -INT64 <= item < INT64:
                return False
        elif kind is float:
            if not -FLOAT_LIMIT < item < FLOAT_LIMIT:
                return False
        elif kind is dict or kind is list:
            if not _clean(item, depth + 1, plain):
                return False
        elif not (item is None or kind is bool):
            return False
    return True


def _sanitise(value: Any, path: list[str | int], problems: list[ErrorDetail]) -> Any:
    if len(path) > MAX_DEPTH + 1:
        problems.append(ErrorDetail(loc=path, type="too_deep", msg=f"nests deeper than {MAX_DEPTH} levels"))
        return None
    if isinstance(value, str):
        return _text(value, path, problems)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if not -INT64 <= value < INT64:
            problems.append(ErrorDetail(loc=path, type="number_too_large", msg="does not fit in 64 bits"))
        return value
    if isinstance(value, float):
        if not -FLOAT_LIMIT < value < FLOAT_LIMIT:  # False for inf and nan too
            problems.append(ErrorDetail(loc=path, type="number_too_large",
                                        msg="must be a finite number that fits in 64 bits"))
        return value
    if isinstance(value, list):
        return [_sanitise(item, [*path, index], problems) for index, item in enumerate(value)]
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            name = _text(key, [*path, key], problems)
            if not name or name[0] == "$" or "." in name:
                problems.append(ErrorDetail(loc=[*path, key], type="invalid_key",
                                            msg="field names must not be empty, start with '$' or contain '.'"))
            result[name] = _sanitise(item, [*path, name], problems)
        return result
    return value


def _text(value: str, path: list[str | int], problems: list[ErrorDetail]) -> str:
    if len(value) > MAX_STRING:
        problems.append(ErrorDetail(loc=path, type="string_too_long", msg=f"is longer than {MAX_STRING} characters"))
        return value[:0]
    normalised = unicodedata.normalize("NFC", value)
    bad = _CONTROL.search(normalised)
    if bad is not None:
        problems.append(ErrorDetail(loc=path, type="control_character",
                                    msg=f"contains the control character U+{ord(bad.group()):04X}"))
    return normalised
