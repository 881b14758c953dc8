"""Schemathesis against each service's own OpenAPI document, on the real stack: never a 5xx."""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import Stack

EXAMPLES_PER_OPERATION = 150


@pytest.fixture(scope="module")
def ingest_schema(stack: Stack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{stack.url('ingest')}/openapi.json")


@pytest.fixture(scope="module")
def aggregate_schema(stack: Stack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{stack.url('aggregate')}/openapi.json")


def fuzz(schema: schemathesis.BaseSchema, headers: dict[str, str]) -> int:
    """Run every operation of `schema`; return how many cases were sent. Fails on any 5xx."""
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            nonlocal sent
            response = case.call(headers={**headers, **(case.headers or {})}, timeout=30)
            sent += 1
            case.validate_response(response, checks=[not_a_server_error])

        run()
    return sent


def test_ingest_never_answers_5xx(stack: Stack, ingest_schema: schemathesis.BaseSchema) -> None:
    assert fuzz(ingest_schema, stack.officer) > 100
    assert httpx.get(f"{stack.url('ingest')}/health/ready", timeout=5).status_code == 200


def test_aggregate_never_answers_5xx(stack: Stack, aggregate_schema: schemathesis.BaseSchema) -> None:
    assert fuzz(aggregate_schema, stack.analyst) > 500
    assert httpx.get(f"{stack.url('aggregate')}/health/ready", timeout=5).status_code == 200
