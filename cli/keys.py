"""`dmp admin keys`: make, list and revoke API keys, straight in the store the services read them from."""

from __future__ import annotations

import getpass
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from shared.roles import ROLES

if TYPE_CHECKING:  # the store's driver is imported when a command runs, not for `dmp --help`
    from shared.audit import MongoAuditLog
    from shared.auth import MongoKeyStore

keys_app = typer.Typer(help="API keys: `create` prints a key once; the store keeps only a keyed hash.",
                       no_args_is_help=True)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _with_store(action: Callable[[MongoKeyStore, MongoAuditLog], Awaitable[T]]) -> T:
    from shared.audit import MongoAuditLog
    from shared.auth import MongoKeyStore
    from shared.settings import ServiceSettings
    from shared.store import connect

    settings = ServiceSettings()

    async def run() -> T:
        client = connect(settings.mongodb_url, "dmp-cli")
        try:
            return await action(MongoKeyStore(client, settings.mongodb_database),
                                MongoAuditLog(client, settings.mongodb_database))
        finally:
            await client.close()

    import asyncio

    return asyncio.run(run())


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@keys_app.command("create")
def create(
    role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")],
    countries: Annotated[str | None, typer.Option(help="ISO3 codes an officer reports for, comma-separated")] = None,
    name: Annotated[str, typer.Option(help="who or what the key is for")] = "",
) -> None:
    """Make a key and print it once, alone on stdout (store it now: it cannot be shown again)."""
    from shared.audit import entry as audit_entry
    from shared.auth import make_key
    from shared.roles import Role
    from shared.settings import ServiceSettings

    if role not in ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(ROLES)}", param_hint="--role")
    scope = [c.strip().upper() for c in countries.split(",") if c.strip()] if countries else None
    pepper = ServiceSettings().auth_pepper.get_secret_value().encode()
    role_: Role = role
    new = make_key(pepper, role_, scope, name)

    async def store(keys: MongoKeyStore, audit: MongoAuditLog) -> None:
        await keys.insert(new.record)
        await audit.record([audit_entry(f"key:{new.record['_id']}:created", new.record["created_at"], _actor(),
                                        "key_created", new.record["_id"], role=role, countries=scope, name=name)])

    _with_store(store)
    # Only the key goes to stdout, so that `KEY=$(dmp admin keys create ...)` captures it and nothing else.
    err.print(f"[green]created[/] {role} key {new.record['_id']}"
              f"{' for ' + ','.join(scope) if scope else ''}{' (' + name + ')' if name else ''}", style="dim")
    print(new.key)


@keys_app.command("list")
def list_keys() -> None:
    """Every key: id, role, countries, name, when made and revoked (never the secret)."""
    from shared.auth import as_public

    async def fetch(keys: MongoKeyStore, _: MongoAuditLog) -> list[dict[str, Any]]:
        return [as_public(r) for r in await keys.all()]

    table = Table("id", "role", "countries", "name", "created", "revoked")
    for record in _with_store(fetch):
        table.add_row(record["_id"], record["role"], ",".join(record.get("countries") or []) or "all",
                      record.get("name", ""), str(record["created_at"])[:19], str(record.get("revoked_at") or "")[:19])
    console.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(
        help="the key's id (second part of the key), see `dmp admin keys list`")],
           ) -> None:
    """Revoke a key; every service refuses it within seconds."""
    from shared.audit import entry as audit_entry
    from shared.envelope import utcnow

    async def apply(keys: MongoKeyStore, audit: MongoAuditLog) -> bool:
        now = utcnow()
        done = await keys.revoke(key_id, now)
        if done:
            await audit.record([audit_entry(f"key:{key_id}:revoked", now, _actor(), "key_revoked", key_id)])
        return done

    if not _with_store(apply):
        console.print(f"[red]no active key {key_id}[/]")
        raise typer.Exit(1)
    console.print(f"revoked {key_id}")
