"""Empty sheets to fill in, one per submission type: a CSV header, or a workbook with a column guide."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from cli.columns import ID_COLUMN, TYPES

ID_RULE = ("leave empty: the CLI fills it with the row's submission id (keep it, so re-imports amend rather than "
           "duplicate); or your own reference")


def csv_template(type_: str) -> str:
    """The header line of `type_`'s sheet."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(TYPES[type_].names)
    return out.getvalue()


def guide(type_: str) -> list[tuple[str, str, str]]:
    """(column, rule, example) for every column of `type_`'s sheet."""
    return [(ID_COLUMN, ID_RULE, ""), *((c.name, c.rule, c.example) for c in TYPES[type_].columns)]


def write_template(type_: str, path: Path) -> None:
    """Write the template to `path`: `.csv` gets the header, `.xlsx` the header plus a `columns` guide sheet."""
    if path.suffix.lower() != ".xlsx":
        path.write_text(csv_template(type_), encoding="utf-8")
        return
    import openpyxl
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = type_
    sheet.append(TYPES[type_].names)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        sheet.column_dimensions[cell.column_letter].width = max(12, len(str(cell.value)) + 2)
    sheet.column_dimensions["A"].width = 38  # a UUID
    sheet.freeze_panes = "A2"
    columns = book.create_sheet("columns")
    columns.append(["column", "rule", "example"])
    for cell in columns[1]:
        cell.font = Font(bold=True)
    for row in guide(type_):
        columns.append(list(row))
    columns.column_dimensions["A"].width = 28
    columns.column_dimensions["B"].width = 90
    columns.column_dimensions["C"].width = 30
    book.save(path)
