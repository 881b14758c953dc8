"""aggregate's read API: submission status and the seizures view."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from services.aggregate.projection import QUANTITY_SCALE
from services.aggregate.repository import Repository
from shared.envelope import ErrorDetail
from shared.store import Document


def get_repository(request: Request) -> Repository:
    repository: Repository = request.app.state.repository
    return repository


RepositoryDep = Annotated[Repository, Depends(get_repository)]
router = APIRouter()


class VersionEntry(BaseModel):
    version: int
    seq: int
    status: str
    received_at: str
    submitted_by: str
    decided_at: str | None = None
    errors: list[ErrorDetail] = []


class SubmissionStatus(BaseModel):
    """Where a submission stands: its latest version's verdict, with every reason if rejected."""

    id: str
    type: str
    status: str
    version: int
    current_valid_version: int | None = Field(None, description="The version the views count, if any.")
    errors: list[ErrorDetail]
    received_at: str
    updated_at: str
    history: list[VersionEntry]


class SeizureRow(BaseModel):
    country: str
    year: int
    drug: str
    cases: int
    quantity: float
    unit: str
    persons_arrested: int
    submissions: int


class SeizurePage(BaseModel):
    items: list[SeizureRow]
    next: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last page.")


@router.get("/v1/submissions/{submission_id}", response_model=SubmissionStatus, tags=["status"],
            responses={404: {"description": "No submission with this id has been seen"}})
async def submission_status(submission_id: str, repository: RepositoryDep) -> SubmissionStatus:
    """The status of one submission: received, validated or rejected, with reasons and history."""
    record = await repository.get_submission(submission_id)
    if record is None:
        raise HTTPException(404, detail=[{"loc": ["path", "submission_id"], "type": "not_found",
                                          "msg": f"no submission with id {submission_id!r} has been received"}])
    return status_of(record)


def status_of(record: Document) -> SubmissionStatus:
    valid = record.get("valid")
    history = [VersionEntry(**h) for h in record["history"]]
    current = next((h["version"] for h in record["history"] if valid and h["seq"] == valid["seq"]), None)
    return SubmissionStatus(id=record["_id"], type=record["type"], status=record["status"], version=record["version"],
                            current_valid_version=current, errors=record["errors"],
                            received_at=record["received_at"], updated_at=record["updated_at"], history=history)


def encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(last_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise HTTPException(422, detail=[{"loc": ["query", "cursor"], "type": "cursor_invalid",
                                          "msg": "is not a cursor returned by this API"}]) from None


@router.get("/v1/views/seizures", response_model=SeizurePage, tags=["views"])
async def seizures_view(
    repository: RepositoryDep,
    country: Annotated[str | None, Query(pattern="^[A-Z]{3}$", description="ISO 3166-1 alpha-3")] = None,
    year: Annotated[int | None, Query(ge=1990, le=2100)] = None,
    drug: Annotated[str | None, Query(pattern="^[a-z_]{1,40}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> SeizurePage:
    """Seizures by country × year × drug (the questionnaire's national table), in normalised units."""
    filters: dict[str, Any] = {k: v for k, v in {"country": country, "year": year, "drug": drug}.items()
                               if v is not None}
    docs = await repository.query_view("seizures", filters, decode_cursor(cursor), limit + 1)
    page, more = docs[:limit], len(docs) > limit
    items = [SeizureRow(country=d["country"], year=d["year"], drug=d["drug"], cases=d["cases"],
                        quantity=d["quantity_micro"] / QUANTITY_SCALE, unit=d["unit"],
                        persons_arrested=d["persons_arrested"], submissions=d["submissions"]) for d in page]
    return SeizurePage(items=items, next=encode_cursor(page[-1]["_id"]) if more else None)
