"""The error answers of the HTTP APIs, as their OpenAPI documents declare them.

Every error has one body, `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`: `loc` says where,
`msg` what (for people) and `type` a code for programs. Each status has its own closed list of
codes (an enum in the document), except 422, whose codes name the broken rule (pydantic's own,
such as `missing` or `string_pattern_mismatch`, and the services' own) and stay an open string.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, create_model

CODES: dict[int, tuple[str, ...]] = {
    400: ("empty_body", "invalid_json"),
    401: ("missing_key", "malformed_key", "unknown_key", "revoked_key"),
    403: ("forbidden_role", "forbidden_country", "forbidden_scope", "not_the_submitter"),
    404: ("not_found",),
    413: ("body_too_large", "batch_too_large"),
    415: ("unsupported_media_type",),
    429: ("rate_limited",),
    503: ("unavailable", "not_ready"),
}
"""Status → every code an answer with that status may carry (422 aside)."""

DESCRIPTIONS: dict[int, str] = {
    400: "The body is empty or not JSON.",
    401: "No API key, or one that is malformed, unknown or revoked.",
    403: "The key's role (or, for a submission, its countries) does not allow this.",
    404: "Nothing with this id, or nothing this key may see.",
    413: "The body (or the batch) is larger than allowed.",
    415: "The body's content type is not one this route reads.",
    422: "A parameter or the body breaks a rule; each problem names its field.",
    429: "Too many requests for this key; retry after `Retry-After` seconds.",
    503: "The broker or the store cannot be reached; nothing was done. Retry after `Retry-After` seconds.",
}

NAMES: dict[int, str] = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                         413: "PayloadTooLarge", 415: "UnsupportedMediaType", 422: "Unprocessable",
                         429: "TooManyRequests", 503: "Unavailable"}

RETRY_AFTER: dict[str, Any] = {"Retry-After": {
    "description": "Seconds to wait before sending the same request again.", "required": True,
    "schema": {"type": "integer", "minimum": 1}}}
"""The header every 429 and 503 answer of the APIs carries."""


def _problem_model(status: int) -> type[BaseModel]:
    name = NAMES[status]
    code: Any = Literal[CODES[status]] if status in CODES else str
    detail = create_model(f"{name}Detail", __doc__=f"One problem of a {status} answer.",
                          loc=(list[str | int], Field(description="Where: `body`, `query`, `path` or `header`, "
                                                                      "then the field's path.")),
                          msg=(str, Field(description="What is wrong, for people.")),
                          type=(code, Field(description="What is wrong, as a code.")))
    return create_model(name, __doc__=DESCRIPTIONS[status], detail=(list[detail], ...))


MODELS: dict[int, type[BaseModel]] = {status: _problem_model(status) for status in NAMES}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that may answer each of `statuses` with an error."""
    return {status: {"model": MODELS[status], "description": DESCRIPTIONS[status],
                     **({"headers": RETRY_AFTER} if status in (429, 503) else {})} for status in statuses}


KEYED = (401, 403, 429)
"""What any route that needs a key may answer: no or a bad key, the wrong role, too many requests."""


def operation_id(route: APIRoute) -> str:
    """A readable operation id: the method and the route function's name in camel case (`GET` on
    `seizures_view` is `getSeizuresView`), unless the route names its own."""
    method = sorted(route.methods or {"GET"})[0].lower()
    return method + "".join(part.capitalize() for part in route.name.split("_"))
