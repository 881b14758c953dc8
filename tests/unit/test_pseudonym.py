"""Training participants: identifier and name are replaced by a keyed pseudonym inside ingest."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from services.ingest.app import create_app
from services.ingest.pseudonym import normalise_identifier, pseudonym, pseudonymise_training
from services.ingest.settings import IngestSettings
from shared.auth import InMemoryKeyStore
from shared.kafka import InMemoryPublisher
from tests.keys import add_key, bearer

KEY = b"k" * 32


def training(national_id: object = "AB 123-456", full_name: str = "Amina Rahimi",
             **participant: object) -> dict[str, Any]:
    return {"course_id": "C-1", "course_title": "Container profiling", "starts_on": "2024-05-01",
            "ends_on": "2024-05-05", "host_country": "UZB", "programme": "CCP",
            "participant": {"national_id": national_id, "full_name": full_name, "agency": "Customs",
                            "country": "TJK", "gender": "female", "role": "inspector", **participant}}


def test_same_person_written_differently_gets_the_same_pseudonym() -> None:
    assert normalise_identifier(" ab-123.456 ") == "AB123456"
    assert pseudonym(KEY, "TJK", "AB 123-456") == pseudonym(KEY, "tjk", "ab123456")
    assert pseudonym(KEY, "TJK", "AB123456") != pseudonym(KEY, "UZB", "AB123456")
    assert pseudonym(KEY, "TJK", "AB123456") != pseudonym(b"other-key", "TJK", "AB123456")


def test_identifier_and_name_are_removed_and_the_rest_kept() -> None:
    data, errors = pseudonymise_training(training(), KEY)
    assert errors == []
    assert data["participant"] == {"agency": "Customs", "country": "TJK", "gender": "female", "role": "inspector",
                                   "pseudonym": pseudonym(KEY, "TJK", "AB123456")}


def test_missing_identifier_is_an_error_and_the_name_is_still_removed() -> None:
    data, errors = pseudonymise_training(training(national_id=None), KEY)
    assert [e.loc for e in errors] == [["body", "data", "participant", "national_id"]]
    assert "full_name" not in data["participant"]


async def test_published_training_event_carries_no_identifier_or_name() -> None:
    publisher = InMemoryPublisher()
    keys = InMemoryKeyStore()
    app = create_app(IngestSettings(pseudonym_key="s" * 32), publisher=publisher, keys=keys)
    body = {"id": "6f1c3b0e-1111-4a8b-9c55-0c6f1f1b7a10", "type": "training", "data": training()}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest",
                                 headers=bearer(add_key(keys, "officer"))) as client:
        response = await client.post("/v1/submissions", json=body)
        refused = await client.post("/v1/submissions", json={**body, "data": training(national_id="")})
    assert response.status_code == 202
    assert refused.status_code == 422
    [record] = publisher.records
    assert b"AB 123-456" not in record.value and b"AB123456" not in record.value
    assert b"Amina" not in record.value
    assert orjson.loads(record.value)["data"]["participant"]["pseudonym"] == pseudonym(b"s" * 32, "TJK", "AB123456")


def test_placeholder_key_is_refused_outside_development() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="placeholder"):
        IngestSettings(environment="production", auth_pepper="p" * 40)
    with pytest.raises(ValidationError, match="DMP_AUTH_PEPPER"):
        IngestSettings(environment="production", pseudonym_key="x" * 40)
    settings = IngestSettings(environment="production", pseudonym_key="x" * 40, auth_pepper="p" * 40)
    assert settings.environment == "production"
