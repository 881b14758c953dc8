"""What every read endpoint shares: the repository dependency, cursors, CSV pages and 422 answers."""

from __future__ import annotations

import base64
import binascii
import csv
import io
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, NoReturn

from fastapi import Depends, HTTPException, Request, Response
from pydantic import BaseModel

from services.aggregate.repository import Repository
from shared.health import STORE_RETRY_AFTER_S
from shared.store import Document

PAGE_MAX = 1000
CURSOR = r"^(?:[A-Za-z0-9_-]{4})*(?:[A-Za-z0-9_-]{2,3})?$"
"""What `encode_cursor` writes (unpadded url-safe base64): every string of this form decodes, and names a
place in the view's order (the view's rows after it)."""


async def get_repository(request: Request) -> Repository:
    """The live generation's repository (it changes when a rebuild is swapped in), or the one given to the app.

    Async although it never waits: FastAPI runs a plain function dependency in a worker thread, a hand-off
    that cost every status read more than the rest of its work."""
    live = request.app.state.live
    repository: Repository | None = live.repository if live is not None else request.app.state.repository
    if repository is None:
        raise HTTPException(503, detail=[{"loc": [], "type": "not_ready", "msg": "the views are not open yet"}],
                            headers={"Retry-After": str(STORE_RETRY_AFTER_S)})
    return repository


RepositoryDep = Annotated[Repository, Depends(get_repository)]


def bad_query(parameter: str, type_: str, msg: str) -> NoReturn:
    """Answer 422 naming the query parameter, in the shape FastAPI uses for its own validation errors."""
    raise HTTPException(422, detail=[{"loc": ["query", parameter], "type": type_, "msg": msg}])


def encode_cursor(last: str | bytes) -> str:
    """An opaque cursor: unpadded url-safe base64 of the last row's `_id` (or key)."""
    return base64.urlsafe_b64encode(last if isinstance(last, bytes) else last.encode()).decode().rstrip("=")


def cursor_bytes(cursor: str) -> bytes:
    """What `encode_cursor` encoded; 422 naming `cursor` for anything it cannot have made."""
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        bad_query("cursor", "cursor_invalid", "is not a cursor returned by this API")


def decode_cursor(cursor: str | None) -> str | None:
    """The `_id` a cursor encodes; bytes that are not UTF-8 still name a place in `_id` order."""
    return None if cursor is None else cursor_bytes(cursor).decode(errors="replace")


async def page_of(repository: Repository, view: str, filters: Mapping[str, Any], cursor: str | None,
                  limit: int) -> tuple[list[Document], str | None]:
    """One page of a view's non-empty documents in `_id` order, and the cursor of the next (None on the last)."""
    docs = await repository.query_view(view, filters, decode_cursor(cursor), limit + 1)
    page = docs[:limit]
    return page, encode_cursor(page[-1]["_id"]) if len(docs) > limit else None


async def all_of(repository: Repository, view: str, filters: Mapping[str, Any]) -> list[Document]:
    """Every non-empty document of a view matching `filters` (views are small; read page by page)."""
    found: list[Document] = []
    after: str | None = None
    while True:
        docs = await repository.query_view(view, filters, after, PAGE_MAX)
        found += docs
        if len(docs) < PAGE_MAX:
            return found
        after = docs[-1]["_id"]


def range_filter(lower: str | None, upper: str | None) -> dict[str, str] | None:
    """`{"$gte": lower, "$lte": upper}` with either side optional. A range that ends before it starts is
    a valid question whose answer is empty (the filter then matches nothing)."""
    bounds = {op: value for op, value in (("$gte", lower), ("$lte", upper)) if value is not None}
    return bounds or None


def csv_response(request: Request, rows: Sequence[BaseModel], model: type[BaseModel], next_cursor: str | None,
                 filename: str) -> Response:
    """A CSV page: a header row, one line per row; the next page's cursor in `X-Next-Cursor` and `Link`."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(model.model_fields)
    for row in rows:
        writer.writerow(row.model_dump().values())
    headers = {"Content-Disposition": f'inline; filename="{filename}.csv"'}
    if next_cursor is not None:
        headers["X-Next-Cursor"] = next_cursor
        headers["Link"] = f'<{request.url.include_query_params(cursor=next_cursor)}>; rel="next"'
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)
