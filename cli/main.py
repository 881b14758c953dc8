"""`dmp`: the field officer's command line — queue submissions offline, sync them, read verdicts.

Every submission goes to the local queue first (`cli.queue`), checked with the server's own rules
(`cli.checks`), then to ingest in batches (`cli.sync`); verdicts come from aggregate
(`cli.verdicts`). Sheets are mapped to submissions by `cli.columns` and `cli.importer`. The commands
run in `cli.officer`, imported only when one runs, so that `dmp --help` answers at once. What
administrators run where the services run (keys, the views' generations, the contracts) is under
`dmp admin` (`cli.admin`).

Exit codes: 0 done; 1 problems in the data (or a refused request); 3 not everything could be sent
yet — it stays queued, run `dmp sync` when the connection is back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.admin import admin_app
from cli.options import MAX_BATCH, AggregateUrl, BatchSize, IngestUrl, NoSync, Retries, SubmissionKind

app = typer.Typer(help="DMP Pipeline command line: queue, send and follow field data.", no_args_is_help=True)


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import version

        print(f"dmp {version('dmp-pipeline')}")
        raise typer.Exit()


@app.callback()
def main(_version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """DMP Pipeline command line: queue, send and follow field data."""


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a JSON envelope, or a list of them")],
    ingest_url: IngestUrl = None,
    batch_size: BatchSize = MAX_BATCH,
    retries: Retries = 5,
    no_sync: NoSync = False,
) -> None:
    """Check the submissions in FILE with the server's rules, queue the valid ones, then send the queue.

    Each envelope without an id gets one, written back to FILE, so sending it again is safe.
    """
    from cli import officer

    officer.submit(file, ingest_url, batch_size, retries, no_sync)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a .csv or .xlsx sheet")],
    type_: Annotated[SubmissionKind, typer.Option("--type", "-t", help="what each row is")],
    worksheet: Annotated[str | None, typer.Option(
        "--sheet", help="the worksheet to read (XLSX; default: the first)")] = None,
    source: Annotated[str | None, typer.Option(
        help="name identifying the sheet in derived row ids (default: the file's absolute path)")] = None,
    write_ids_: Annotated[bool | None, typer.Option(
        "--write-ids/--no-write-ids", help="write row ids into the sheet's id column (default: CSV yes, XLSX no)")
    ] = None,
    allow_duplicates: Annotated[bool, typer.Option(
        "--allow-duplicates", help="queue rows whose content is already queued under another id (really "
                                   "separate events)")] = False,
    ingest_url: IngestUrl = None,
    batch_size: BatchSize = MAX_BATCH,
    retries: Retries = 5,
    no_sync: NoSync = False,
) -> None:
    """Check every row of a sheet with the server's rules, queue the rows without problems, then send the queue.

    Columns are the type's field names (`dmp template TYPE`). Rows keep their id across imports: importing
    the same sheet again changes nothing, and a corrected row is sent as an amendment.
    """
    from cli import officer

    officer.import_(file, type_, worksheet, source, write_ids_, allow_duplicates, ingest_url, batch_size, retries,
                    no_sync)


@app.command()
def template(
    type_: Annotated[SubmissionKind, typer.Argument(metavar="TYPE", help="the submission type")],
    output_file: Annotated[Path | None, typer.Option("--output", "-o", dir_okay=False,
                                                     help=".csv (header) or .xlsx (header and a column guide)")] = None,
) -> None:
    """Print (or write) an empty sheet for TYPE, its columns named as `dmp import` expects them."""
    from cli import officer

    officer.template(type_, output_file)


@app.command("sync")
def sync_command(ingest_url: IngestUrl = None, batch_size: BatchSize = MAX_BATCH, retries: Retries = 5) -> None:
    """Send every pending submission; safe to run again at any time, and after being interrupted."""
    from cli import officer

    officer.sync_command(ingest_url, batch_size, retries)


@app.command()
def status(
    submission_id: Annotated[str | None, typer.Argument(
        help="one submission's id; without it, the whole queue")] = None,
    export: Annotated[Path | None, typer.Option(
        dir_okay=False, help="write the rejected rows' problems to this CSV file")] = None,
    aggregate_url: AggregateUrl = None,
) -> None:
    """Counts of pending, received, validated and rejected submissions, and why rows were rejected.

    Verdicts of sent submissions are fetched from aggregate first. With an ID, show that submission as
    aggregate has it: status, version and every reason it was rejected.
    """
    from cli import officer

    officer.status(submission_id, export, aggregate_url)


@app.command()
def login(
    url: Annotated[str | None, typer.Option("--url", help="ingest's URL, e.g. https://dmp.example.org:8000")] = None,
    status_url: Annotated[str | None, typer.Option(
        help="aggregate's URL (default: port 8002 of --url's host)")] = None,
    key: Annotated[str | None, typer.Option(
        help="your API key; `-` reads it from stdin (keeps it out of the shell history); '' removes it")] = None,
) -> None:
    """Store the server URLs and your API key in your config folder (readable by you only)."""
    from cli import officer

    officer.login(url, status_url, key)


app.add_typer(admin_app, name="admin")


if __name__ == "__main__":
    app()
