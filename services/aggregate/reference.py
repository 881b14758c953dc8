"""Reference data for clients: the lists the rules check against, each with its version (shared/reference)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, Field

from shared.access import allow
from shared.problems import KEYED, problems
from shared.reference import LISTS, ListName, reference_list

router = APIRouter(tags=["reference"], dependencies=[Depends(allow("officer", "analyst", "operator", "admin"))],
                   responses={401: {"description": "No valid API key"}})


class ReferenceListPublic(BaseModel):
    """One list: what it is, which version, and its items in code order."""

    name: ListName
    version: str = Field(description="The version of the data (the file's, or the ISO tables' release).")
    source: str
    items: list[dict[str, Any]] = Field(description="Each with a `code`: drugs also `category`, `forms` and "
                                                    "`units`; units `to` and `factor`; countries and currencies "
                                                    "`name`.")


class ReferenceIndexEntry(BaseModel):
    name: ListName
    version: str
    url: str


class ReferenceIndex(BaseModel):
    lists: list[ReferenceIndexEntry]


@router.get("/v1/reference", response_model=ReferenceIndex, operation_id="listReferenceLists", tags=["reference"],
            responses=problems(*KEYED, 503))
async def reference_index() -> ReferenceIndex:
    """Which reference lists there are, with their versions."""
    return ReferenceIndex(lists=[ReferenceIndexEntry(name=name, version=reference_list(name).version,
                                                     url=f"/v1/reference/{name}") for name in LISTS])


@router.get("/v1/reference/{name}", response_model=ReferenceListPublic, operation_id="getReferenceList",
            tags=["reference"], responses=problems(*KEYED, 422, 503))
async def reference_data(name: Annotated[ListName, Path(description="Which list")]) -> ReferenceListPublic:
    """A reference list (drugs, units, countries, currencies) with its version, as validate applies it."""
    found = reference_list(name)
    return ReferenceListPublic(name=found.name, version=found.version, source=found.source, items=found.items)
