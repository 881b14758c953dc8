"""Each event's one encoder and decoder (shared/envelope.py): what they write is what the published JSON Schema
(schemas/events/, the contract downstream programmes read) allows, and what the model itself would write."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.envelope import ErrorDetail, Provenance, SubmissionReceived, SubmissionRejected, SubmissionValidated
from tests.factories import seizure_data

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "events"


def schema(name: str) -> Any:
    return jsonschema_rs.validator_for(json.loads((SCHEMAS / f"{name}.v1.schema.json").read_text()))


texts = st.text(min_size=1, max_size=12)
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
data = st.dictionaries(st.sampled_from(["place", "drug", "quantity", "n"]),
                       st.one_of(texts, st.integers(-2**53, 2**53), st.floats(allow_nan=False, allow_infinity=False)),
                       max_size=4).map(lambda d: {**seizure_data(), **d})


@settings(max_examples=200, deadline=None)
@given(submitted_by=texts, received_at=times, trace_id=texts, data=data, version=st.sampled_from([1, 2]))
def test_the_received_encoder_writes_what_the_schema_and_the_model_say(
        submitted_by: str, received_at: datetime, trace_id: str, data: dict[str, Any], version: int) -> None:
    event = SubmissionReceived(id="2f1c7a52-8d3e-4c1b-9a0e-3b2d1c0f9e8d", type="seizure", schema_version=version,
                               data=data, submitted_by=submitted_by, received_at=received_at, trace_id=trace_id)
    encoded = event.encode()
    assert schema("received").is_valid(orjson.loads(encoded))
    assert encoded == event.model_dump_json().encode()
    assert SubmissionReceived.decode(encoded) == event


@settings(max_examples=200, deadline=None)
@given(received_at=times, validated_at=times, data=data, seq=st.integers(0, 2**40), partition=st.integers(0, 63))
def test_the_validated_encoder_writes_what_the_schema_and_the_model_say(
        received_at: datetime, validated_at: datetime, data: dict[str, Any], seq: int, partition: int) -> None:
    event = SubmissionValidated(id="s1", type="seizure", schema_version=2, data=data, data_hash="ab" * 32,
                                received=Provenance(partition=partition, seq=seq), submitted_by="k1",
                                received_at=received_at, validated_at=validated_at, validator="dmp-validate",
                                trace_id="t" * 32)
    encoded = event.encode()
    assert schema("validated").is_valid(orjson.loads(encoded))
    assert encoded == event.model_dump_json().encode()
    assert SubmissionValidated.decode(encoded) == event


def test_the_rejected_encoder_writes_what_the_schema_and_the_model_say() -> None:
    at = datetime(2025, 3, 14, 8, 30, 0, 250_000, tzinfo=UTC)
    event = SubmissionRejected(id="s1", type="seizure", original={"data": seizure_data(unit="l")},
                               errors=[ErrorDetail(loc=["data", "unit"], msg="does not suit heroin", type="unit")],
                               data_hash="cd" * 32, received=Provenance(partition=1, seq=9), submitted_by="k1",
                               received_at=at, rejected_at=at, rejected_by="dmp-validate", trace_id="t" * 32)
    encoded = event.encode()
    assert schema("rejected").is_valid(orjson.loads(encoded))
    assert encoded == event.model_dump_json().encode()
    assert SubmissionRejected.decode(encoded) == event


@pytest.mark.parametrize("model", [SubmissionReceived, SubmissionValidated, SubmissionRejected])
def test_a_decoder_refuses_what_is_not_its_event(model: Any) -> None:
    with pytest.raises(ValueError, match="validation error"):
        model.decode(b'{"id": "s1"}')
