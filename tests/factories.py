"""Submissions for tests: valid by default, with overrides (an override of `...` removes the key)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from shared.envelope import SubmissionReceived


def _with(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not ...}


def seizure_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "seized_on": "2024-03-02", "country": "AFG", "place": "Islam Qala border crossing",
        "drug": "heroin", "quantity": 1500, "unit": "g", "cases": 1, "persons_arrested": 2,
        "transport": "land", "route": "balkan",
    }
    return _with(data, overrides)


def price_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "observed_on": "2024-03-15", "country": "TJK", "place": "Dushanbe", "drug": "heroin",
        "market": "wholesale", "price_typical": 9000, "price_min": 8000, "price_max": 11000,
        "currency": "USD", "per": "kg", "purity_pct": 45.5,
    }
    return _with(data, overrides)


def financial_case_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "reported_on": "2024-05-20", "country": "UZB", "case_type": "cash_smuggling",
        "amount": 250000, "currency": "USD", "linked_drug": "heroin", "persons_charged": 3,
    }
    return _with(data, overrides)


def treatment_facility_data(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "facility_id": "KAZ-ALM-007", "country": "KAZ", "name": "Almaty Regional Narcology Centre",
        "period": "2024-03", "services": ["detox", "opioid_agonist", "psychosocial"], "capacity": 120,
        "in_treatment": {"heroin": 85, "opium": 12, "methamphetamine": 30},
    }
    return _with(data, overrides)


def participant_data(**overrides: Any) -> dict[str, Any]:
    """A participant as validate sees it: pseudonymised by ingest."""
    data: dict[str, Any] = {
        "pseudonym": "a" * 64, "agency": "Drug Control Agency", "country": "TJK", "gender": "female",
        "role": "investigator",
    }
    return _with(data, overrides)


def participant_submission_data(**overrides: Any) -> dict[str, Any]:
    """A participant as the officer reports them, raw identity included."""
    data: dict[str, Any] = {
        "national_id": "A1234567", "full_name": "Nigora Rakhimova", "agency": "Drug Control Agency",
        "country": "TJK", "gender": "female", "role": "investigator",
    }
    return _with(data, overrides)


def training_data(**overrides: Any) -> dict[str, Any]:
    """A training participation as validate sees it (participant pseudonymised)."""
    data: dict[str, Any] = {
        "course_id": "TRN-2024-014", "course_title": "Controlled  Delivery Techniques",
        "starts_on": "2024-04-08", "ends_on": "2024-04-12", "host_country": "KGZ",
        "programme": "Border Liaison Offices", "participant": participant_data(),
    }
    return _with(data, overrides)


def training_submission_data(**overrides: Any) -> dict[str, Any]:
    """A training participation as the officer sends it (participant's national_id and full_name included)."""
    return training_data(**{"participant": participant_submission_data(), **overrides})


def received_event(data: dict[str, Any], type_: str = "seizure", schema_version: int = 1) -> SubmissionReceived:
    """A received event as ingest publishes it."""
    return SubmissionReceived(id="9a1b", type=type_, schema_version=schema_version, data=data,
                              submitted_by="officer", received_at=datetime.now(UTC), trace_id="0" * 32)


def envelope(submission_id: str | None = None, type_: str = "seizure", **data_overrides: Any) -> dict[str, Any]:
    return {"id": submission_id or str(uuid.uuid4()), "type": type_, "schema_version": 1,
            "data": seizure_data(**data_overrides)}
