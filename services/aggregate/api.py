"""aggregate's read API: submission status here, the views in views.py."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from services.aggregate.paging import RepositoryDep
from services.aggregate.views import router as views_router
from shared.envelope import ErrorDetail
from shared.store import Document

router = APIRouter()


class VersionEntry(BaseModel):
    version: int
    seq: int
    status: str
    received_at: str
    submitted_by: str
    decided_at: str | None = None
    errors: list[ErrorDetail] = []
    changed: list[str] | None = Field(None, description="Fields that differ from the previous version "
                                                        "(nested ones as `participant/agency`).")


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
    history = [VersionEntry(**h, changed=changed) for h, changed in zip(record["history"],
                                                                         _changes(record["history"]), strict=True)]
    current = next((h["version"] for h in record["history"] if valid and h["seq"] == valid["seq"]), None)
    return SubmissionStatus(id=record["_id"], type=record["type"], status=record["status"], version=record["version"],
                            current_valid_version=current, errors=record["errors"],
                            received_at=record["received_at"], updated_at=record["updated_at"], history=history)


def _changes(history: list[Document]) -> list[list[str] | None]:
    """For each history entry, the fields its version changed, when both versions' digests are known."""
    changes: list[list[str] | None] = []
    previous: dict[str, str] | None = None
    previous_version = None
    for entry in history:
        fields = entry.get("fields")
        changed = None
        if entry["version"] != previous_version:
            if previous is not None and fields is not None:
                changed = sorted(k for k in previous.keys() | fields.keys() if previous.get(k) != fields.get(k))
            previous, previous_version = fields, entry["version"]
        changes.append(changed)
    return changes


router.include_router(views_router)
