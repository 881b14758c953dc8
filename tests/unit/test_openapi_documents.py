"""The OpenAPI documents: typed submissions from the published JSON Schemas, readable operation ids, and every
error a keyed route can give declared with its codes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from services.aggregate.app import create_app as create_aggregate
from services.aggregate.memory_repository import InMemoryRepository
from services.aggregate.settings import AggregateSettings
from services.ingest.app import create_app as create_ingest
from services.ingest.settings import IngestSettings
from shared.auth import InMemoryKeyStore
from shared.kafka import InMemoryPublisher

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "submissions"


def ingest_document() -> dict[str, Any]:
    app = create_ingest(IngestSettings(), publisher=InMemoryPublisher(), keys=InMemoryKeyStore())
    return app.openapi()


def aggregate_document() -> dict[str, Any]:
    return create_aggregate(AggregateSettings(), repository=InMemoryRepository()).openapi()


def test_a_submission_is_a_union_on_type_whose_data_are_the_published_schemas() -> None:
    schemas = ingest_document()["components"]["schemas"]
    union = schemas["Submission"]
    mapping = union["discriminator"]["mapping"]
    assert union["discriminator"]["propertyName"] == "type"
    assert sorted(mapping) == ["financial_case", "price", "seizure", "training", "treatment_facility"]
    for type_, ref in mapping.items():
        variant = schemas[ref.rsplit("/", 1)[1]]
        assert variant["properties"]["type"]["enum"] == [type_]
        for published in SCHEMAS.glob(f"{type_}.v*.schema.json"):
            version = int(published.name.split(".v")[1].split(".")[0])
            declared = schemas["".join(p.capitalize() for p in type_.split("_")) + f"DataV{version}"]
            assert version in variant["properties"]["schema_version"]["enum"]
            assert declared["required"] == json.loads(published.read_text())["required"]


@pytest.mark.parametrize("document", [ingest_document, aggregate_document])
def test_every_operation_has_a_readable_id_and_keyed_ones_declare_their_refusals(document: Any) -> None:
    for path, operations in document()["paths"].items():
        for method, operation in operations.items():
            assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)+", operation["operationId"]), (method, path)
            if operation.get("security"):
                declared = operation["responses"]
                assert {"401", "403", "429", "503"} <= set(declared), (method, path)
                assert "Retry-After" in declared["429"]["headers"]


def test_refusals_list_their_codes_and_metrics_are_text() -> None:
    document = aggregate_document()
    schemas = document["components"]["schemas"]
    assert schemas["UnauthorizedDetail"]["properties"]["type"]["enum"] == [
        "missing_key", "malformed_key", "unknown_key", "revoked_key"]
    assert list(document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    status = document["paths"]["/v1/submissions/{submission_id}"]["get"]
    assert status["operationId"] == "getSubmissionStatus"
    assert schemas["SubmissionStatus"]["properties"]["status"]["enum"] == [
        "received", "validated", "rejected", "withdrawn"]
