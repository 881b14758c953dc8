"""Submissions for tests: valid by default, with overrides."""

from __future__ import annotations

import uuid
from typing import Any


def seizure_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "seized_on": "2024-03-02", "country": "AFG", "place": "Islam Qala border crossing",
        "drug": "heroin", "quantity": 1500, "unit": "g", "cases": 1, "persons_arrested": 2,
        "transport": "land", "route": "balkan",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not ...}


def envelope(submission_id: str | None = None, type_: str = "seizure", **data_overrides: Any) -> dict[str, Any]:
    return {"id": submission_id or str(uuid.uuid4()), "type": type_, "schema_version": 1,
            "data": seizure_data(**data_overrides)}
