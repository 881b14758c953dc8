"""aggregate's read API: submission status here, the views in views.py."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from services.aggregate.listing import router as listing_router
from services.aggregate.paging import get_repository
from services.aggregate.projection import WITHDRAWN
from services.aggregate.reference import router as reference_router
from services.aggregate.views import router as views_router
from shared.access import BEARER_REQUIRED, allow, authorise
from shared.audit import Action, AuditLog
from shared.auth import Principal
from shared.envelope import ErrorDetail, Status, SubmissionType, Withdrawal
from shared.problems import KEYED, problems
from shared.roles import Role
from shared.store import Document

router = APIRouter()
Admin = Annotated[Principal, Depends(allow("admin"))]


class VersionEntry(BaseModel):
    version: int
    seq: int
    status: Status
    received_at: str
    submitted_by: str
    decided_at: str | None = None
    errors: list[ErrorDetail] = []
    changed: list[str] | None = Field(None, description="Fields that differ from the previous version "
                                                        "(nested ones as `participant/agency`).")
    withdrawal: Withdrawal | None = Field(None, description="On a withdrawn version: why, and by whom.")


class SubmissionStatus(BaseModel):
    """Where a submission stands: its latest version's verdict, with every reason if rejected."""

    id: str
    type: SubmissionType
    status: Status
    version: int
    current_valid_version: int | None = Field(None, description="The version the views count, if any.")
    errors: list[ErrorDetail]
    received_at: str
    updated_at: str
    history: list[VersionEntry]


STATUS_READERS: tuple[Role, ...] = ("officer", "analyst", "operator", "admin")


@router.get("/v1/submissions/{submission_id}", response_model=SubmissionStatus, tags=["status"],
            responses=problems(404, *KEYED, 503), openapi_extra=BEARER_REQUIRED)
async def submission_status(submission_id: str, request: Request) -> Response:
    """The status of one submission: received, validated, rejected or withdrawn, with reasons and history.

    Officers see only the submissions their key sent (others answer 404, as if unknown).
    """
    # The most frequent read (every client polls it), so it skips FastAPI's dependency solving and its
    # second validation of the returned model: authorised and answered here, as the two would have.
    reader = await authorise(request, STATUS_READERS)
    record = await (await get_repository(request)).get_submission(submission_id)
    if record is not None and reader.role == "officer" and record.get("submitted_by") != reader.key_id:
        record = None
    if record is None:
        raise HTTPException(404, detail=[{"loc": ["path", "submission_id"], "type": "not_found",
                                          "msg": f"no submission with id {submission_id!r} has been received"}])
    return Response(status_of(record).model_dump_json(), media_type="application/json")


def status_of(record: Document) -> SubmissionStatus:
    valid = record.get("valid")
    history = [VersionEntry(**h, changed=changed) for h, changed in zip(record["history"],
                                                                         _changes(record["history"]), strict=True)]
    counted = valid if valid and valid["hash"] != WITHDRAWN else None
    current = next((h["version"] for h in record["history"] if counted and h["seq"] == counted["seq"]), None)
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


class AuditEntry(BaseModel):
    id: str
    at: str
    actor: str = Field(description="The key id that acted.")
    action: str
    target: str
    details: dict[str, Any] = {}


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next: str | None


@router.get("/v1/audit", response_model=AuditPage, tags=["audit"], responses=problems(*KEYED, 422, 503))
async def audit_trail(request: Request, _: Admin,
                      actor: Annotated[str | None, Query(max_length=64)] = None,
                      action: Annotated[Action | None, Query()] = None,
                      target: Annotated[str | None, Query(max_length=200)] = None,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                      cursor: Annotated[str | None, Query(max_length=400)] = None) -> AuditPage:
    """Who submitted, amended, exported, made or revoked what, and when (admins only), oldest first."""
    log: AuditLog = request.app.state.audit
    filters = {k: v for k, v in {"actor": actor, "action": action, "target": target}.items() if v is not None}
    found = await log.query(filters, cursor, limit + 1)
    page = found[:limit]
    items = [AuditEntry(id=e["_id"], **{k: v for k, v in e.items() if k != "_id"}) for e in page]
    return AuditPage(items=items, next=page[-1]["_id"] if len(found) > limit else None)


router.include_router(listing_router)
router.include_router(reference_router)
router.include_router(views_router)
