"""Schemathesis against each service's own OpenAPI document, on the real stack, with every check it has
(as `st run --checks all`): no 5xx, every answer documented (status, headers, content type, body), every
request the document allows accepted and every request it forbids refused, and routes that need a key
refusing a request without one."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.schemas import APIOperation

from tests.conftest import Stack

EXAMPLES_PER_OPERATION = 30

Operation = APIOperation[Any, Any, Any, Any]


@pytest.fixture(scope="module")
def ingest_schema(stack: Stack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{stack.url('ingest')}/openapi.json")


@pytest.fixture(scope="module")
def aggregate_schema(stack: Stack) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(f"{stack.url('aggregate')}/openapi.json")


def fuzz(schema: schemathesis.BaseSchema, headers: dict[str, str]) -> tuple[int, list[str]]:
    """Send every operation of `schema` valid and invalid requests, checking each answer with every check;
    return how many were sent and the distinct failures found (each with the request that shows it)."""
    sent = 0
    failures: dict[str, str] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                sent += send(operation, mode, headers, failures)
            except Unsatisfiable:
                if mode is GenerationMode.POSITIVE:
                    raise
                # An operation with no parameters and no body has no invalid request to send.
    return sent, sorted(failures.values())


def send(operation: Operation, mode: GenerationMode, headers: dict[str, str], failures: dict[str, str]) -> int:
    """Send `operation` EXAMPLES_PER_OPERATION requests of `mode`; add each new failure to `failures`."""
    sent = 0

    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
    def run(case: schemathesis.Case[Operation]) -> None:
        nonlocal sent
        sent += 1
        try:
            # No `checks=`: every check schemathesis has, as `--checks all`.
            case.call_and_validate(timeout=30)
        except (Failure, FailureGroup) as exc:  # recorded, not raised: every distinct failure is reported
            for failure in exc.exceptions if isinstance(exc, FailureGroup) else [exc]:
                key = f"{operation.label} ({mode.value}): {failure.title}"
                failures.setdefault(key, f"{key}\n{failure.message}\n{case.as_curl_command()}")

    run()
    return sent


def test_ingest_answers_as_its_document_says(stack: Stack, ingest_schema: schemathesis.BaseSchema) -> None:
    sent, failures = fuzz(ingest_schema, stack.officer)
    assert not failures, f"{len(failures)} distinct failures:\n\n" + "\n\n".join(failures)
    assert sent > 100
    assert httpx.get(f"{stack.url('ingest')}/health/ready", timeout=5).status_code == 200


def test_aggregate_answers_as_its_document_says(stack: Stack, aggregate_schema: schemathesis.BaseSchema) -> None:
    sent, failures = fuzz(aggregate_schema, stack.analyst)
    assert not failures, f"{len(failures)} distinct failures:\n\n" + "\n\n".join(failures)
    assert sent > 300
    assert httpx.get(f"{stack.url('aggregate')}/health/ready", timeout=5).status_code == 200
