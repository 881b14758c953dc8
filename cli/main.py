"""`dmp`: submit field data and read verdicts from the command line."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="DMP Pipeline command line.", no_args_is_help=True)
console = Console()

IngestUrl = Annotated[str, typer.Option(envvar="DMP_INGEST_URL", help="ingest's base URL")]
AggregateUrl = Annotated[str, typer.Option(envvar="DMP_AGGREGATE_URL", help="aggregate's base URL")]


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a JSON envelope, or a list of them")],
    ingest_url: IngestUrl = "http://127.0.0.1:8000",
) -> None:
    """Send the submissions in FILE; each without an id gets one (written back to the file, so a resend is safe)."""
    content: Any = json.loads(file.read_text())
    envelopes = content if isinstance(content, list) else [content]
    if any("id" not in e for e in envelopes):
        for envelope in envelopes:
            envelope.setdefault("id", str(uuid.uuid4()))
        file.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    failures = 0
    with httpx.Client(base_url=ingest_url, timeout=30) as client:
        for envelope in envelopes:
            response = client.post("/v1/submissions", json=envelope)
            if response.status_code == 202:
                console.print(f"[green]received[/] {envelope['id']}")
            else:
                failures += 1
                console.print(f"[red]{response.status_code}[/] {envelope.get('id')}: {response.text}")
    raise typer.Exit(1 if failures else 0)


@app.command()
def status(submission_id: str, aggregate_url: AggregateUrl = "http://127.0.0.1:8002") -> None:
    """Show a submission's status, version and every reason it was rejected."""
    response = httpx.get(f"{aggregate_url}/v1/submissions/{submission_id}", timeout=10)
    if response.status_code != 200:
        console.print(f"[red]{response.status_code}[/] {response.text}")
        raise typer.Exit(1)
    body = response.json()
    colour = {"validated": "green", "rejected": "red"}.get(body["status"], "yellow")
    console.print(f"{body['id']}  {body['type']}  [{colour}]{body['status']}[/]  version {body['version']}")
    if body["errors"]:
        table = Table("field", "problem", "code")
        for error in body["errors"]:
            table.add_row(".".join(str(p) for p in error["loc"]), error["msg"], error["type"])
        console.print(table)


contracts_app = typer.Typer(help="The published JSON Schemas and AsyncAPI document (schemas/).")
app.add_typer(contracts_app, name="contracts")


@contracts_app.command("write")
def contracts_write() -> None:
    """Regenerate schemas/ from the models."""
    from cli import contracts

    changed = contracts.write()
    console.print("\n".join(f"wrote schemas/{p}" for p in changed) or "schemas/ is up to date")


@contracts_app.command("check")
def contracts_check() -> None:
    """Exit 1 if schemas/ differs from what the models generate."""
    from cli import contracts

    drift = contracts.check()
    if drift:
        console.print("[red]out of date:[/] " + ", ".join(drift) + " — run `dmp contracts write`")
        raise typer.Exit(1)
    console.print("schemas/ matches the models")


if __name__ == "__main__":
    app()
