"""The field officer's commands, behind `cli.main`: loaded only when one of them runs, so `dmp --help` starts fast."""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.table import Table

from cli import config, output
from cli.checks import check_envelope
from cli.columns import column_for
from cli.config import Settings
from cli.importer import ImportPlan, RowProblem, plan, sheet_identity
from cli.options import EXIT_NOT_SENT, EXIT_PROBLEMS, SubmissionKind
from cli.output import console, err
from cli.queue import Item, Queue, Stored
from cli.sheets import Sheet, SheetError, read, write_ids
from cli.sync import SyncRefused, SyncReport, sync
from cli.templates import csv_template, write_template
from cli.verdicts import VerdictsRefused, problems_of, refresh, rejected_problems
from cli.verdicts import export as export_problems

USER_AGENT = "dmp-cli/0.1"


def _settings(ingest_url: str | None = None, aggregate_url: str | None = None) -> Settings:
    return config.resolve(config.paths(), ingest_url, aggregate_url)


def _queue() -> Queue:
    return Queue.open(config.paths().queue_file)


def _client(base_url: str, settings: Settings) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"User-Agent": USER_AGENT, **settings.headers()},
                        timeout=httpx.Timeout(30.0, connect=5.0))


def _send_pending(queue: Queue, settings: Settings, batch_size: int, retries: int) -> SyncReport:
    """Send what is pending with a progress bar; say what happened; the caller picks the exit code."""
    total = queue.counts()["pending"]
    if total == 0:
        console.print("nothing to send")
        return SyncReport()
    try:
        with output.progress("sending", total) as advance, _client(settings.ingest_url, settings) as client:
            report = sync(queue, client, batch_size=batch_size, retries=retries, progress=advance)
    except SyncRefused as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(EXIT_PROBLEMS) from None
    console.print(f"sent to {settings.ingest_url}: [green]{report.received} received[/]"
                  + (f", [red]{report.invalid} refused[/]" if report.invalid else "")
                  + (f", [yellow]{report.pending} still pending[/]" if report.pending else ""))
    if report.invalid_ids:
        refused = [p for i in report.invalid_ids if (s := queue.get(i)) is not None for p in problems_of(s)]
        output.verdict_problems(refused, "refused by ingest (not stored; correct and import again)")
    if report.gave_up:
        err.print(f"[yellow]could not send {report.pending} submission(s): {report.gave_up}.[/]\n"
                  "They stay queued; run `dmp sync` when the connection is back.")
    elif report.received:
        console.print("verdicts: `dmp status`")
    return report


def _exit_code(problems: bool, report: SyncReport) -> int:
    if problems or report.invalid:
        return EXIT_PROBLEMS
    return EXIT_NOT_SENT if report.pending else 0


def submit(file: Path, ingest_url: str | None, batch_size: int, retries: int, no_sync: bool) -> None:
    try:
        content: Any = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        err.print(f"[red]{file.name} is not JSON:[/] {exc}")
        raise typer.Exit(EXIT_PROBLEMS) from None
    envelopes = content if isinstance(content, list) else [content]
    if any(isinstance(e, dict) and "id" not in e for e in envelopes):
        for envelope in envelopes:
            if isinstance(envelope, dict):
                envelope.setdefault("id", str(uuid.uuid4()))
        file.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    problems: list[RowProblem] = []
    items: list[Item] = []
    seen: dict[str, int] = {}
    for number, envelope in enumerate(envelopes, start=1):
        parsed, errors = check_envelope(envelope)
        problems += [RowProblem(number, ".".join(map(str, e.loc)) or "(submission)", "", e.msg, e.type)
                     for e in errors]
        if parsed is not None and str(parsed.id) in seen:
            problems.append(RowProblem(number, "id", str(parsed.id), f"is also item {seen[str(parsed.id)]}'s id; "
                                       "every submission needs its own", "duplicate_id"))
            continue
        if parsed is not None:
            seen[str(parsed.id)] = number
        if parsed is not None and not errors:
            items.append(Item(str(parsed.id), parsed.type, parsed.schema_version, parsed.data, "json",
                              str(file.resolve()), number))
    if problems:
        output.row_problems(problems, f"{file.name}: problems found before sending (item = position in the file)")
        console.print(f"{len(envelopes) - len(items)} submission(s) with problems were not queued")
    with _queue() as queue:
        queue.enqueue(items)
        console.print(f"queued {len(items)} submission(s) from {file.name}")
        report = SyncReport()
        if no_sync:
            console.print("send them with `dmp sync`")
        else:
            report = _send_pending(queue, _settings(ingest_url), batch_size, retries)
            for item in items:
                stored = queue.get(item.id)
                if stored is not None and stored.state != "pending":
                    console.print(f"{stored.state} {item.id}")
    raise typer.Exit(_exit_code(bool(problems), report))


def import_(file: Path, type_: SubmissionKind, worksheet: str | None, source: str | None, write_ids_: bool | None,
            allow_duplicates: bool, ingest_url: str | None, batch_size: int, retries: int, no_sync: bool) -> None:
    try:
        sheet = read(file, worksheet)
    except SheetError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(EXIT_PROBLEMS) from None
    kind = type_.value
    identity = sheet_identity(file, source)
    with _queue() as queue:
        with output.progress(f"checking {file.name}", len(sheet.rows)) as advance:
            found = plan(sheet, kind, queue.namespace, identity, progress=advance)
        _warn_columns(found)
        if found.problems:
            output.row_problems(found.problems, f"{file.name}: problems found (rows with problems are not queued)")
        items = found.items()
        conflicts = [] if allow_duplicates else queue.conflicts(items)
        if conflicts:
            table = Table("row", "same content as", "queued as", title="rows already queued under another id",
                          title_justify="left")
            for c in conflicts[:output.SHOWN_PROBLEMS]:
                where = f"{Path(c.other.source).name if c.other.source else '?'} row {c.other.row}"
                table.add_row(str(c.item.row), where, c.other.id)
            console.print(table)
            err.print("[red]nothing was queued.[/] These rows hold exactly what other, already queued rows hold. "
                      "If rows were inserted, deleted or sorted in a sheet without ids, or the file was renamed, "
                      "importing would amend the wrong submissions or duplicate them: restore the sheet, or put "
                      "the queued ids in its `id` column (`--source` names a renamed sheet's old path). "
                      "If these really are separate events, use --allow-duplicates.")
            raise typer.Exit(EXIT_PROBLEMS)
        outcomes = queue.enqueue(items)
        tally = {o: sum(v == o for v in outcomes.values()) for o in ("new", "amended", "unchanged")}
        amended_rows = [str(i.row) for i in items if outcomes[i.id] == "amended"]
        console.print(f"{file.name}: {len(sheet.rows)} row(s): {tally['new']} new, {tally['amended']} amended"
                      + (f" (rows {', '.join(amended_rows[:20])}{'…' if len(amended_rows) > 20 else ''})"
                         if amended_rows else "")
                      + f", {tally['unchanged']} unchanged, {len(sheet.rows) - len(items)} with problems (not queued)")
        _warn_missing_rows(queue.from_source(identity), {r.id for r in found.rows})
        _write_back(found, sheet, write_ids_)
        report = SyncReport()
        if no_sync:
            console.print("queued; send with `dmp sync`")
        else:
            report = _send_pending(queue, _settings(ingest_url), batch_size, retries)
    raise typer.Exit(_exit_code(bool(found.problems), report))


def _warn_columns(found: ImportPlan) -> None:
    if found.ignored_columns:
        err.print(f"[yellow]ignored columns (not fields of {found.type}):[/] {', '.join(found.ignored_columns)}")
    if found.missing_columns:
        err.print(f"[yellow]required columns not in the sheet:[/] {', '.join(found.missing_columns)}")


def _warn_missing_rows(previous: list[Stored], current: set[str]) -> None:
    gone = [s for s in previous if s.id not in current]
    if gone:
        rows = ", ".join(str(s.row) for s in gone[:20])
        err.print(f"[yellow]{len(gone)} submission(s) imported from this sheet before are no longer in it "
                  f"(rows {rows}).[/] Removing a row does not withdraw what was sent.")


def _write_back(found: ImportPlan, sheet: Sheet, wanted: bool | None) -> None:
    ids = found.ids_to_write()
    if not ids or not (wanted if wanted is not None else sheet.format == "csv"):
        if ids and sheet.format == "xlsx" and wanted is None:
            err.print("[yellow]row ids come from row numbers:[/] do not insert or delete rows above imported ones, "
                      "or run with --write-ids to store the ids in the sheet's id column.")
        return
    try:
        filled = write_ids(sheet, ids)
    except (OSError, SheetError) as exc:
        err.print(f"[yellow]could not write the row ids into {sheet.path.name} ({exc});[/] they stay derived "
                  "from row numbers until it can be written")
        return
    if filled:
        console.print(f"wrote {filled} row id(s) into the id column of {sheet.path.name}; keep that column")


def template(type_: SubmissionKind, output_file: Path | None) -> None:
    if output_file is None:
        sys.stdout.write(csv_template(type_.value))
        return
    write_template(type_.value, output_file)
    console.print(f"wrote {output_file}")


def sync_command(ingest_url: str | None, batch_size: int, retries: int) -> None:
    with _queue() as queue:
        report = _send_pending(queue, _settings(ingest_url), batch_size, retries)
    raise typer.Exit(_exit_code(False, report))


def status(submission_id: str | None, export: Path | None, aggregate_url: str | None) -> None:
    settings = _settings(aggregate_url=aggregate_url)
    if submission_id is not None:
        _one_status(submission_id, settings)
        return
    with _queue() as queue:
        waiting = len(queue.awaiting_verdict())
        if waiting:
            try:
                with output.progress("fetching verdicts", waiting) as advance, \
                        _client(settings.aggregate_url, settings) as client:
                    checked = refresh(queue, client, progress=advance)
            except VerdictsRefused as exc:
                err.print(f"[red]{exc}[/]")
                raise typer.Exit(EXIT_PROBLEMS) from None
            if checked.unreachable:
                err.print(f"[yellow]{checked.unreachable}; the verdicts shown may be out of date[/]")
        output.counts(queue.counts())
        problems = rejected_problems(queue)
    if problems:
        output.verdict_problems(problems, "rejected: correct these cells and import the sheet again",
                                limit=50 if export is None else output.SHOWN_PROBLEMS)
    if export is not None:
        export_problems(problems, export)
        console.print(f"wrote {len(problems)} problem(s) to {export}")


def _one_status(submission_id: str, settings: Settings) -> None:
    try:
        with _client(settings.aggregate_url, settings) as client:
            response = client.get(f"/v1/submissions/{submission_id}", timeout=10)
    except httpx.TransportError as exc:
        err.print(f"[red]cannot reach aggregate at {settings.aggregate_url}[/] ({exc})")
        raise typer.Exit(EXIT_PROBLEMS) from None
    if response.status_code != 200:
        console.print(f"[red]{response.status_code}[/] {response.text}")
        raise typer.Exit(EXIT_PROBLEMS)
    body = response.json()
    colour = {"validated": "green", "rejected": "red"}.get(body["status"], "yellow")
    console.print(f"{body['id']}  {body['type']}  [{colour}]{body['status']}[/]  version {body['version']}")
    with _queue() as queue:
        stored = queue.get(body["id"])
    if stored is not None and stored.source:
        console.print(f"from {Path(stored.source).name}" + (f", row {stored.row}" if stored.row else ""))
    if body["errors"]:
        sheet = stored is not None and stored.origin == "sheet"
        table = Table("field", *(["column"] if sheet else []), "problem", "code")
        for error in body["errors"]:
            field = ".".join(str(p) for p in error["loc"])
            column, detail = column_for(body["type"], error["loc"]) if sheet else ("", "")
            table.add_row(field, *([column] if sheet else []), f"{detail}: {error['msg']}" if detail else error["msg"],
                          error["type"])
        console.print(table)


def login(url: str | None, status_url: str | None, key: str | None) -> None:
    p = config.paths()
    stored = config.load(p)
    if url:
        stored["ingest_url"] = url.rstrip("/")
        stored["aggregate_url"] = (status_url or config.derive_aggregate_url(url)).rstrip("/")
    elif status_url:
        stored["aggregate_url"] = status_url.rstrip("/")
    if key is not None:
        value = sys.stdin.readline().strip() if key == "-" else key.strip()
        if value:
            stored["key"] = value
        else:
            stored.pop("key", None)
    if url or status_url or key is not None:
        config.save(p, stored)
        console.print(f"saved {p.config_file}")
    settings = _settings()
    console.print(f"ingest     {settings.ingest_url}\naggregate  {settings.aggregate_url}\n"
                  f"key        {config.masked(settings.key)}")
    overridden = [v for v in ("DMP_INGEST_URL", "DMP_AGGREGATE_URL", "DMP_KEY") if v in os.environ]
    if overridden:
        err.print(f"[yellow]{', '.join(overridden)} set in the environment override the saved values[/]")
    try:
        httpx.get(f"{settings.ingest_url}/health/live", timeout=3).raise_for_status()
        console.print("[green]ingest answers[/]")
    except httpx.HTTPError:
        err.print("[yellow]ingest does not answer right now; submissions will wait in the queue[/]")
