"""Turning a sheet into submissions: one per row, each with a stable id, checked with the server's rules.

The stable-id rule, in order:

1. The row's `id` cell holds a UUID → that is the submission id, wherever the row or file moves.
2. The `id` cell holds anything else (your own reference, e.g. `SZ-2025-017`) → a UUID derived
   from it: uuid5(installation namespace, type + sheet + reference).
3. The `id` cell is empty, or there is no `id` column → a UUID derived from the row number:
   uuid5(installation namespace, type + sheet + row number).

The sheet is identified by its absolute path (or `--source NAME`); the installation namespace is a
random UUID made once per queue, so two officers' "seizures.csv row 5" never collide. Derived ids
are written back into the `id` column (CSV by default, XLSX with `--write-ids`), after which rule 1
applies and inserting, deleting or sorting rows, or moving the file, changes nothing. Until then a
row-number id follows the row *number*: insert or delete a row above and the rows below get other
rows' ids. The queue catches that (and a renamed or copied sheet): a new or changed row whose exact
content is already queued under another id stops the import before anything is queued.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cli.checks import check_data
from cli.columns import ID_COLUMN, TYPES, TypeColumns, column_for, is_empty, row_to_data, shown
from cli.queue import Item
from cli.sheets import Sheet, SheetRow


@dataclass(frozen=True)
class RowProblem:
    row: int
    column: str
    value: str
    msg: str
    code: str


@dataclass(frozen=True)
class PlannedRow:
    number: int
    id: str
    id_in_sheet: bool
    """The row's `id` cell already held a value (nothing to write back)."""
    data: dict[str, Any]
    problems: list[RowProblem]


@dataclass
class ImportPlan:
    type: str
    schema_version: int
    source: str
    rows: list[PlannedRow] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[RowProblem]:
        return [p for row in self.rows for p in row.problems]

    @property
    def valid(self) -> list[PlannedRow]:
        return [row for row in self.rows if not row.problems]

    def items(self) -> list[Item]:
        return [Item(id=row.id, type=self.type, schema_version=self.schema_version, data=row.data, origin="sheet",
                     source=self.source, row=row.number) for row in self.valid]

    def ids_to_write(self) -> dict[int, str]:
        return {row.number: row.id for row in self.rows if not row.id_in_sheet}


def sheet_identity(path: Path, source: str | None = None) -> str:
    """What identifies the sheet in derived ids: `source` if given, else the file's absolute path."""
    return source if source else str(path.resolve())


def derived_id(namespace: uuid.UUID, type_: str, source: str, key: str) -> str:
    """uuid5 over (type, sheet, row key): the same sheet and key always give the same id on this installation."""
    return str(uuid.uuid5(namespace, f"{type_}\n{source}\n{key}"))


def explicit_id(cell: Any) -> str | None:
    """The UUID an `id` cell holds, in canonical form, or None if it holds something else."""
    try:
        return str(uuid.UUID(str(cell).strip()))
    except ValueError:
        return None


def _cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def assign_ids(rows: list[SheetRow], namespace: uuid.UUID, type_: str, source: str) -> dict[int, tuple[str, bool]]:
    """Row number → (submission id, whether the sheet's `id` cell gave it), by the module's rule."""
    assigned: dict[int, tuple[str, bool]] = {}
    by_cell = {}
    for row in rows:
        cell = row.cells.get(ID_COLUMN)
        if is_empty(cell):
            continue
        text = _cell_text(cell)
        by_cell[row.number] = explicit_id(text) or derived_id(namespace, type_, source, f"id:{text}")
    taken = set(by_cell.values())
    for row in rows:
        if row.number in by_cell:
            assigned[row.number] = (by_cell[row.number], True)
            continue
        key, salt = f"row:{row.number}", 0
        candidate = derived_id(namespace, type_, source, key)
        while candidate in taken:  # a row inserted where an earlier row (whose id was written back) used to be
            salt += 1
            candidate = derived_id(namespace, type_, source, f"{key}#{salt}")
        taken.add(candidate)
        assigned[row.number] = (candidate, False)
    return assigned


def plan(sheet: Sheet, type_: str, namespace: uuid.UUID, source: str,
         progress: Callable[[int], None] | None = None) -> ImportPlan:
    """Every row of `sheet` as a submission of `type_`, with its id and every problem found locally."""
    spec = TYPES[type_]
    result = ImportPlan(type_, spec.schema_version, source)
    result.ignored_columns = [h for h in sheet.header if h and h != ID_COLUMN and spec.column(h) is None]
    result.missing_columns = [c for c in required_columns(type_) if c not in sheet.header and not (
        c.endswith(".*") and any(h.startswith(c[:-1]) for h in sheet.header))]
    ids = assign_ids(sheet.rows, namespace, type_, source)
    rows_of_id: dict[str, list[int]] = {}
    for number, (submission_id, _) in ids.items():
        rows_of_id.setdefault(submission_id, []).append(number)
    for row in sheet.rows:
        submission_id, in_sheet = ids[row.number]
        converted = row_to_data(spec, row.cells)
        problems = [RowProblem(row.number, column, shown(column, _cell_text(row.cells.get(column))), p.msg, p.code)
                    for column, p in converted.problems.items()]
        twins = [n for n in rows_of_id[submission_id] if n != row.number]
        if twins:
            problems.append(RowProblem(row.number, ID_COLUMN, _cell_text(row.cells.get(ID_COLUMN)),
                                       f"is also the id of row {', '.join(map(str, twins))}; every row needs its own",
                                       "duplicate_id"))
        for error in check_data(type_, spec.schema_version, converted.data, submission_id):
            column, detail = column_for(type_, error.loc)
            if column in converted.problems:
                continue  # the cell could not be read; that is the problem to fix
            raw = row.cells.get(column)
            problems.append(RowProblem(row.number, column, "" if is_empty(raw) else shown(column, _cell_text(raw)),
                                       f"{detail}: {error.msg}" if detail else error.msg, error.type))
        problems.sort(key=lambda p: _column_order(spec, p.column))
        result.rows.append(PlannedRow(row.number, submission_id, in_sheet, converted.data, problems))
        if progress is not None:
            progress(1)
    return result


@cache
def required_columns(type_: str) -> list[str]:
    """The columns a row of `type_` cannot leave empty, as the server's rules say (an empty row's "missing" errors)."""
    spec = TYPES[type_]
    missing = [e.loc for e in check_data(type_, spec.schema_version, {}) if e.type == "missing"]
    objects = {str(loc[1]) for loc in missing if len(loc) == 2 and f"{loc[1]}." != spec.open_prefix
               and any(c.path[0] == loc[1] and len(c.path) > 1 for c in spec.columns)}
    if objects:
        missing += [e.loc for e in check_data(type_, spec.schema_version, {o: {} for o in objects})
                    if e.type == "missing" and len(e.loc) > 2]
    found = {column_for(type_, loc)[0] for loc in missing} - objects
    return [name for name in [*spec.names, f"{spec.open_prefix}*"] if name in found]


def _column_order(spec: TypeColumns, column: str) -> int:
    names = spec.names
    return names.index(column) if column in names else len(names)
