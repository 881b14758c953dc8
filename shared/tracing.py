"""The trace id of the submission being handled, so every log line about it can carry it.

A submission's trace id comes from the officer's W3C `traceparent` (or is made by ingest), travels
in the `traceparent` header of every event about it, and is set here while a service works on it;
`shared.jsonlog` adds it to each log record as `trace_id`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from shared.envelope import trace_id_from

_current: ContextVar[str | None] = ContextVar("dmp_trace_id", default=None)


def current_trace_id() -> str | None:
    return _current.get()


def bind_trace_id(trace_id: str | None) -> None:
    """Set the trace id for the rest of the current task (one HTTP request runs in one task)."""
    _current.set(trace_id)


@contextmanager
def traced(trace_id: str | None) -> Iterator[None]:
    """Set the trace id for the duration of the block."""
    token = _current.set(trace_id)
    try:
        yield
    finally:
        _current.reset(token)


def trace_id_of(headers: Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None) -> str | None:
    """The trace id in a Kafka record's `traceparent` header, or None."""
    if not headers:
        return None
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        if name == "traceparent":
            return trace_id_from(value.decode(errors="replace") if isinstance(value, bytes) else str(value))
    return None
