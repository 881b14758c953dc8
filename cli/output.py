"""What the command line shows: tables of problems and counts, progress bars (on stderr)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.importer import RowProblem
from cli.queue import STATES, State
from cli.verdicts import Problem

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)
SHOWN_PROBLEMS = 200


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr; yields `advance(n)`."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def _more(shown: int, total: int, hint: str = "") -> None:
    if total > shown:
        console.print(f"… and {total - shown} more{hint}")


def row_problems(problems: Sequence[RowProblem], title: str) -> None:
    table = Table("row", "column", "value", "problem", title=title, title_justify="left")
    for p in problems[:SHOWN_PROBLEMS]:
        table.add_row(str(p.row), p.column, p.value, p.msg)
    console.print(table)
    _more(SHOWN_PROBLEMS, len(problems))


def verdict_problems(problems: Sequence[Problem], title: str, limit: int = SHOWN_PROBLEMS) -> None:
    table = Table("sheet", "row", "column", "value", "problem", title=title, title_justify="left")
    for p in problems[:limit]:
        note = f" (views still count version {p.counted_version})" if p.counted_version else ""
        table.add_row(Path(p.source).name if p.source else p.id, "" if p.row is None else str(p.row), p.column,
                      p.value, p.problem + note)
    console.print(table)
    _more(limit, len(problems), "; `dmp status --export FILE.csv` writes them all")


LABELS: dict[str, str] = {"pending": "pending (not sent yet)", "received": "received (awaiting a verdict)",
                          "validated": "validated", "rejected": "rejected (to correct)"}


def counts(found: dict[State, int]) -> None:
    merged = {s: found[s] for s in STATES if s != "invalid"}
    merged["rejected"] += found["invalid"]  # refused by ingest or by validate: either way, to correct
    table = Table("state", "submissions")
    colours = {"validated": "green", "rejected": "red", "pending": "yellow"}
    for state, n in merged.items():
        table.add_row(f"[{colours.get(state, 'default')}]{LABELS[state]}[/]", str(n))
    console.print(table)
