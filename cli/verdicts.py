"""Verdicts: fetching them from aggregate for sent submissions, and mapping reasons back to sheet cells."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from cli.columns import column_for, shown, value_at
from cli.queue import Queue, Stored
from shared.envelope import ErrorDetail

RATE_LIMIT_WAITS = 10


class VerdictsRefused(Exception):
    """aggregate refuses the key; retrying will not help."""


@dataclass
class RefreshReport:
    checked: int = 0
    decided: int = 0
    unreachable: str | None = None


def refresh(queue: Queue, client: httpx.Client, progress: Callable[[int], None] | None = None,
            sleep: Callable[[float], None] = time.sleep) -> RefreshReport:
    """Ask aggregate for the verdict of every submission ingest has received but whose verdict is not known.

    One request per submission; when the server's rate limit answers 429, wait as long as it says.
    """
    report = RefreshReport()
    for stored in queue.awaiting_verdict():
        try:
            response = _get(client, f"/v1/submissions/{stored.id}", sleep)
        except httpx.TransportError as exc:
            report.unreachable = f"cannot reach aggregate at {client.base_url} ({type(exc).__name__})"
            break
        if response.status_code in (401, 403):
            raise VerdictsRefused(f"aggregate refused the key ({response.status_code}); "
                                  "set one with `dmp login --key KEY`")
        report.checked += 1
        if response.status_code == 200:
            body = response.json()
            errors = [ErrorDetail.model_validate(e) for e in body.get("errors", [])]
            if queue.apply_verdict(stored.id, body["status"], int(body["version"]), errors,
                                   body.get("current_valid_version")):
                report.decided += 1
        elif response.status_code != 404:  # 404: aggregate has not caught up yet
            report.unreachable = f"aggregate answered {response.status_code} for {stored.id}"
            break
        if progress is not None:
            progress(1)
    return report


def _get(client: httpx.Client, path: str, sleep: Callable[[float], None]) -> httpx.Response:
    for attempt in range(1, RATE_LIMIT_WAITS + 1):
        response = client.get(path)
        if response.status_code != 429 or attempt == RATE_LIMIT_WAITS:
            return response
        try:
            wait = float(response.headers.get("retry-after", "1"))
        except ValueError:
            wait = 1.0
        sleep(min(max(wait, 0.1), 30.0))
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Problem:
    """One reason a submission needs correcting, located as the officer will look for it."""

    source: str
    row: int | None
    column: str
    value: str
    problem: str
    code: str
    id: str
    type: str
    state: str
    counted_version: int | None = None
    """For a rejected amendment: the earlier version the views still count."""


def problems_of(stored: Stored) -> list[Problem]:
    """Every reason `stored` was refused or rejected, with sheet column (or JSON field) and submitted value."""
    found = []
    for error in stored.errors or [ErrorDetail(loc=[], msg="rejected without a reason", type="unknown")]:
        if stored.origin == "sheet":
            column, detail = column_for(stored.type, error.loc)
        else:
            column, detail = ".".join(str(p) for p in error.loc if p != "body") or "(submission)", ""
        value = value_at(stored.data, error.loc)
        msg = f"{detail}: {error.msg}" if detail else error.msg
        found.append(Problem(source=stored.source or "", row=stored.row, column=column, value=shown(column, value),
                             problem=msg, code=error.type, id=stored.id, type=stored.type, state=stored.state,
                             counted_version=stored.current_valid_version))
    return found


def rejected_problems(queue: Queue) -> list[Problem]:
    return [p for stored in queue.in_state("rejected", "invalid") for p in problems_of(stored)]


EXPORT_COLUMNS = ("source", "row", "column", "value", "problem", "code", "id", "type", "state")


def export(problems: list[Problem], path: Path) -> None:
    """Write the problems as CSV (UTF-8 with BOM, so spreadsheet programs read it as UTF-8)."""
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(EXPORT_COLUMNS)
        for p in problems:
            writer.writerow([p.source, "" if p.row is None else p.row, p.column, p.value, p.problem, p.code, p.id,
                             p.type, p.state])
