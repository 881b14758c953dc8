"""What e2e tests do over HTTP: submit, wait for a verdict, read a view."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Stack, eventually


def submit(stack: Stack, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{stack.url('ingest')}/v1/submissions", json=body, headers=stack.officer, timeout=15)


def submit_batch(stack: Stack, bodies: list[Any]) -> httpx.Response:
    return httpx.post(f"{stack.url('ingest')}/v1/submissions/batch", json=bodies, headers=stack.officer, timeout=30)


def status(stack: Stack, submission_id: str) -> dict[str, Any] | None:
    response = httpx.get(f"{stack.url('aggregate')}/v1/submissions/{submission_id}", headers=stack.analyst,
                         timeout=5)
    return response.json() if response.status_code == 200 else None


def decided(stack: Stack, submission_id: str, version: int = 1) -> dict[str, Any]:
    """The submission's status once `version` has a verdict (validated or rejected)."""
    return eventually(lambda: (s := status(stack, submission_id)) and s["status"] != "received"
                      and s["version"] == version and s, what=f"a verdict on {submission_id} v{version}")


def view(stack: Stack, name: str = "seizures", **params: Any) -> Any:
    response = httpx.get(f"{stack.url('aggregate')}/v1/views/{name}", params=params, headers=stack.analyst,
                         timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    return body["items"] if "items" in body and name != "fact-sheet" else body


def withdraw(stack: Stack, submission_id: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.request("DELETE", f"{stack.url('ingest')}/v1/submissions/{submission_id}", json=body,
                         headers=headers or stack.officer, timeout=15)
