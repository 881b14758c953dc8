"""The access policy on the real stack: revocation reaches every service, scopes hold, the audit trail fills."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import httpx

from tests.conftest import Stack, eventually
from tests.e2e.helpers import decided
from tests.factories import envelope


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def dmp(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"MONGODB_URL": stack.infra.mongodb_url, "MONGODB_DATABASE": stack.database, "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "cli.main", "admin", "keys", *args], capture_output=True, text=True,
                          env=env, check=False, timeout=60)


def test_keys_made_and_revoked_with_the_cli_work_and_stop_working_within_seconds(stack: Stack) -> None:
    made = dmp(stack, "create", "--role", "officer", "--countries", "TJK", "--name", "Dushanbe office")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip().splitlines()[-1]
    key_id = key.split("_")[1]
    assert key_id in dmp(stack, "list").stdout

    ingest = f"{stack.url('ingest')}/v1/submissions"
    body = envelope(country="TJK", seized_on="2016-05-05")
    assert httpx.post(ingest, json=body, headers=bearer(key), timeout=10).status_code == 202
    other_country = httpx.post(ingest, json=envelope(country="AFG"), headers=bearer(key), timeout=10)
    assert other_country.status_code == 403
    decided(stack, body["id"])
    status_url = f"{stack.url('aggregate')}/v1/submissions/{body['id']}"
    assert httpx.get(status_url, headers=bearer(key), timeout=5).status_code == 200

    assert dmp(stack, "revoke", key_id).returncode == 0
    eventually(lambda: httpx.post(ingest, json=body, headers=bearer(key), timeout=10).status_code == 401,
               timeout=10, what="ingest to refuse the revoked key")
    eventually(lambda: httpx.get(status_url, headers=bearer(key), timeout=5).status_code == 401,
               timeout=10, what="aggregate to refuse the revoked key")


def test_keys_create_prints_only_the_key_on_stdout_so_a_shell_can_capture_it(stack: Stack) -> None:
    made = dmp(stack, "create", "--role", "analyst", "--name", "Research team")
    assert made.returncode == 0, made.stderr
    key = made.stdout.removesuffix("\n")
    assert "\n" not in key and key.startswith("dmp_")
    assert key.split("_")[1] in made.stderr  # the message names the key id, on stderr
    reference = httpx.get(f"{stack.url('aggregate')}/v1/reference/units", headers=bearer(key), timeout=5)
    assert reference.status_code == 200


def test_submissions_amendments_and_key_changes_are_in_the_audit_trail(stack: Stack) -> None:
    officer_key = stack.key("officer", name="audit test")
    body = envelope(country="GEO", seized_on="2015-01-01")
    for data in (body, body, envelope(body["id"], country="GEO", seized_on="2015-01-01", quantity=9)):
        httpx.post(f"{stack.url('ingest')}/v1/submissions", json=data, headers=bearer(officer_key), timeout=10)
    decided(stack, body["id"], version=2)
    admin = bearer(stack.key("admin"))

    def actions() -> list[str]:
        page: dict[str, Any] = httpx.get(f"{stack.url('aggregate')}/v1/audit", params={"target": body["id"]},
                                         headers=admin, timeout=5).json()
        return [i["action"] for i in page["items"] if i["actor"] == officer_key.split("_")[1]]

    eventually(lambda: actions() == ["submitted", "resubmitted", "amended"], what="three audit entries")
    assert httpx.get(f"{stack.url('aggregate')}/v1/audit", headers=stack.analyst, timeout=5).status_code == 403


def test_no_personal_data_in_the_service_logs(stack: Stack) -> None:
    from tests.factories import participant_submission_data, training_submission_data

    person = participant_submission_data(national_id="LOGCHECK-99120", full_name="Farrukh Logcheckov")
    body: dict[str, Any] = {"id": "0b8a7e52-2c4e-4d43-9a43-0c6f1f1b7a10", "type": "training", "schema_version": 1,
            "data": training_submission_data(participant=person)}
    assert httpx.post(f"{stack.url('ingest')}/v1/submissions", json=body, headers=stack.officer,
                      timeout=10).status_code == 202
    decided(stack, body["id"])
    for name in ("ingest", "validate", "aggregate"):
        log = (stack.base / f"{name}.log").read_text()
        assert "LOGCHECK" not in log and "Logcheckov" not in log, name
