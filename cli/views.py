"""`dmp admin views`: rebuild the aggregate's views from the log, compare them with the live ones, swap them in.

Reads the same settings as the aggregate service (`KAFKA_BOOTSTRAP_SERVERS`, `MONGODB_URL`,
`MONGODB_DATABASE`, `DMP_TOPIC_NAMESPACE`, `AGGREGATE_GROUP_ID`) and talks to the broker and the
store directly. Exit codes of `rebuild`: 0 the rebuilt views equal the live ones (or were swapped
in), 1 they differ (nothing swapped), 2 the broker or store could not be used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the server packages are imported when a command runs, not for `dmp --help`
    from pymongo import AsyncMongoClient

    from services.aggregate.rebuild import RebuildReport
    from services.aggregate.settings import AggregateSettings
    from shared.store import Document

views_app = typer.Typer(help="The aggregate's views: rebuild from the log, compare with the live ones, swap; "
                             "list and drop generations.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)
T = TypeVar("T")
EXIT_DIFFERENT = 1
EXIT_UNAVAILABLE = 2


def _run(action: Callable[[AggregateSettings, AsyncMongoClient[Document]], Awaitable[T]]) -> T:
    from pymongo.errors import PyMongoError

    from services.aggregate.settings import AggregateSettings
    from shared.errors import DmpError
    from shared.store import connect

    settings = AggregateSettings()

    async def main() -> T:
        client = connect(settings.mongodb_url, "dmp-cli-views")
        try:
            return await action(settings, client)
        finally:
            await client.close()

    try:
        import asyncio

        return asyncio.run(main())
    except (DmpError, PyMongoError, OSError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(EXIT_UNAVAILABLE) from None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _show(report: RebuildReport, shown: int) -> None:
    from services.aggregate.rebuild import summarize

    console.print(f"generation {report.rebuilt} (group {report.group_id}): {report.events} events replayed, "
                  f"{report.compared} rows compared with generation {report.live}")
    if not report.differences:
        console.print("[green]no differences[/]: the live views equal the views rebuilt from the log")
        return
    counts = ", ".join(f"{view} {n}" for view, n in summarize(report.differences).items())
    console.print(f"[yellow]{len(report.differences)} rows differ[/] ({counts})")
    table = Table("view", "key", "difference", "live → rebuilt", title_justify="left")
    for d in report.differences[:shown]:
        what = {"only_live": "only in live", "only_rebuilt": "only in rebuilt", "differs": "figures differ"}[d.kind]
        table.add_row(d.view, d.key, what, "; ".join(f"{name}: {_short(a)} → {_short(b)}"
                                                    for name, (a, b) in d.fields.items()))
    console.print(table)
    if len(report.differences) > shown:
        console.print(f"… and {len(report.differences) - shown} more (--show)")


@views_app.command("rebuild")
def rebuild_command(
    swap: Annotated[bool, typer.Option("--swap", help="make the rebuilt generation the live one")] = False,
    rounds: Annotated[int, typer.Option(min=1, help="comparisons before reporting what still differs")] = 3,
    wait: Annotated[float, typer.Option(min=0, help="seconds to wait for the live views to catch up")] = 15.0,
    show: Annotated[int, typer.Option(min=0, help="differences to list")] = 50,
    force: Annotated[bool, typer.Option("--force", help="run although another rebuild's claim is recorded "
                                                        "(only when that one is known to have stopped)")] = False,
) -> None:
    """Replay the topics from the earliest offset into a new generation and compare it with the live views.

    The live services keep working meanwhile. With --swap the new generation becomes live: every aggregate
    process switches to it within AGGREGATE_GENERATION_POLL_S seconds and continues from where the rebuild
    stopped, so no event is lost or counted twice. Old generations stay until `dmp admin views drop`.
    """

    from services.aggregate import rebuild as rebuilding

    async def action(settings: AggregateSettings, client: AsyncMongoClient[Document]) -> RebuildReport:
        return await rebuilding.rebuild(settings, client, swap=swap, rounds=rounds, wait=wait, force=force,
                             say=lambda message: err.print(message, style="dim"))

    report = _run(action)
    _show(report, show)
    if report.swapped:
        console.print(f"[green]generation {report.rebuilt} is live[/] (was {report.live}); "
                      f"drop the old one with `dmp admin views drop {report.live}` once nothing reads it")
    elif report.differences:
        raise typer.Exit(EXIT_DIFFERENT)


@views_app.command("status")
def status_command() -> None:
    """The live generation, its consumer group and how far it has processed each partition."""
    from services.aggregate.generation import GenerationMeta, group_for
    from services.aggregate.mongo_repository import MongoRepository
    from services.aggregate.settings import AggregateSettings

    async def action(settings: AggregateSettings, client: AsyncMongoClient[Document],
                     ) -> tuple[Document | None, list[int], list[Document]]:
        meta = GenerationMeta(client, settings.mongodb_database)
        live = await meta.live()
        progress = await MongoRepository(client, settings.mongodb_database, live).load_progress()
        return await meta.describe(), await meta.generations(), progress

    described, generations, progress = _run(action)
    settings = AggregateSettings()
    live = int(described["generation"]) if described else 0
    console.print(f"live generation {live} (consumer group {group_for(settings.group_id, live)})"
                  + (f", since {described['since']}" if described else ""))
    console.print(f"generations in the store: {', '.join(map(str, generations)) or 'none'}")
    table = Table("topic", "partition", "next offset", "updated", title="progress", title_justify="left")
    for doc in progress:
        table.add_row(doc.get("topic", doc.get("kind", "")), str(doc.get("partition")), str(doc.get("next_offset")),
                      str(doc.get("at", ""))[:19])
    console.print(table)


@views_app.command("drop")
def drop_command(generation: Annotated[int, typer.Argument(min=0, help="the generation to drop")]) -> None:
    """Drop an old generation's collections (the live one is refused)."""
    from services.aggregate.rebuild import drop_generation

    async def action(settings: AggregateSettings, client: AsyncMongoClient[Document]) -> list[str]:
        return await drop_generation(client, settings.mongodb_database, generation)

    try:
        dropped = _run(action)
    except ValueError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(EXIT_DIFFERENT) from None
    console.print(f"dropped {len(dropped)} collections of generation {generation}")


if __name__ == "__main__":
    views_app()
