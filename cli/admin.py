"""`dmp admin`: what administrators run where the services run — API keys, the views' generations, the
published contracts. These commands talk to the store (and, for the views, the broker) directly, with the
services' own settings (`MONGODB_URL`, `KAFKA_BOOTSTRAP_SERVERS`, `DMP_AUTH_PEPPER`, ...); the officer's
commands never need them."""

from __future__ import annotations

import typer
from rich.console import Console

from cli.keys import keys_app
from cli.views import views_app

admin_app = typer.Typer(help="Administration, run where the services run: it needs their store (and for `views` "
                             "their broker) and their settings.", no_args_is_help=True)
console = Console(highlight=False)
contracts_app = typer.Typer(help="The published JSON Schemas and AsyncAPI document (schemas/).", no_args_is_help=True)
admin_app.add_typer(keys_app, name="keys")
admin_app.add_typer(views_app, name="views")
admin_app.add_typer(contracts_app, name="contracts")


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
        console.print("[red]out of date:[/] " + ", ".join(drift) + " — run `dmp admin contracts write`")
        raise typer.Exit(1)
    console.print("schemas/ matches the models")
