"""Reading CSV and XLSX sheets into rows, and writing row ids back into them.

Row numbers are the ones a spreadsheet program shows (the header is usually row 1), so a
problem reported for "row 7" is found on row 7. Rows whose cells are all empty are skipped.
CSV files must be UTF-8 (with or without BOM); the delimiter (`,`, `;` or tab) is taken from
the header line. XLSX: the first worksheet, or the one named with `--sheet`.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cli.columns import ID_COLUMN, is_empty


class SheetError(Exception):
    """The file cannot be read as a sheet; the message says why and what to do."""


@dataclass(frozen=True)
class SheetRow:
    number: int
    cells: dict[str, Any]
    """Header name (stripped, lower case) → cell value (str for CSV; str, int, float, date… for XLSX)."""


@dataclass
class Sheet:
    path: Path
    format: Literal["csv", "xlsx"]
    header: list[str]
    header_row: int
    rows: list[SheetRow] = field(default_factory=list)
    worksheet: str | None = None
    delimiter: str = ","

    @property
    def has_id_column(self) -> bool:
        return ID_COLUMN in self.header


def read(path: Path, worksheet: str | None = None) -> Sheet:
    """The sheet at `path` (`.csv` or `.xlsx`)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, worksheet)
    raise SheetError(f"{path.name}: only .csv and .xlsx files can be imported")


def _decode(path: Path) -> tuple[str, bool]:
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig"), raw.startswith(codecs.BOM_UTF8)
    except UnicodeDecodeError:
        raise SheetError(f"{path.name} is not UTF-8 text; in your spreadsheet program save it as "
                         "'CSV UTF-8', or import the .xlsx instead") from None


def _delimiter(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _records(text: str, delimiter: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def _header(names: list[Any], path: Path, row: int) -> list[str]:
    header = ["" if is_empty(n) else str(n).strip().lower() for n in names]
    named = [h for h in header if h]
    repeated = sorted({h for h in named if named.count(h) > 1})
    if repeated:
        raise SheetError(f"{path.name}: the header (row {row}) names {', '.join(repeated)} more than once")
    return header


def _row(header: list[str], values: list[Any] | tuple[Any, ...], number: int) -> SheetRow | None:
    cells = {name: values[i] if i < len(values) else None for i, name in enumerate(header) if name}
    if all(is_empty(v) for v in values):
        return None
    return SheetRow(number, cells)


def _read_csv(path: Path) -> Sheet:
    text, _ = _decode(path)
    delimiter = _delimiter(text)
    records = _records(text, delimiter)
    start = next((i for i, r in enumerate(records) if not all(is_empty(v) for v in r)), None)
    if start is None:
        raise SheetError(f"{path.name} is empty; it needs a header row (see `dmp template TYPE`)")
    sheet = Sheet(path, "csv", _header(records[start], path, start + 1), start + 1, delimiter=delimiter)
    for index in range(start + 1, len(records)):
        row = _row(sheet.header, records[index], index + 1)
        if row is not None:
            sheet.rows.append(row)
    return sheet


def _read_xlsx(path: Path, worksheet: str | None) -> Sheet:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises many kinds for a file that is not a workbook
        raise SheetError(f"{path.name} cannot be read as an .xlsx workbook ({exc})") from None
    try:
        if worksheet is not None and worksheet not in book.sheetnames:
            raise SheetError(f"{path.name} has no worksheet {worksheet!r} (it has {', '.join(book.sheetnames)})")
        ws = book[worksheet] if worksheet is not None else book.worksheets[0]
        sheet: Sheet | None = None
        for number, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
            if sheet is None:
                if all(is_empty(v) for v in values):
                    continue
                sheet = Sheet(path, "xlsx", _header(list(values), path, number), number, worksheet=ws.title)
                continue
            row = _row(sheet.header, values, number)
            if row is not None:
                sheet.rows.append(row)
        if sheet is None:
            raise SheetError(f"{path.name} ({ws.title}) is empty; it needs a header row (see `dmp template TYPE`)")
        return sheet
    finally:
        book.close()


def write_ids(sheet: Sheet, ids: dict[int, str]) -> int:
    """Fill the empty `id` cells of the rows numbered in `ids`; add an `id` column if there is none.

    Returns how many cells were filled. The file is replaced atomically; a CSV keeps its
    delimiter, encoding and line endings, a workbook its other sheets and formulas.
    """
    if sheet.format == "csv":
        return _write_csv_ids(sheet, ids)
    return _write_xlsx_ids(sheet, ids)


def _replace(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        shutil.copymode(path, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_csv_ids(sheet: Sheet, ids: dict[int, str]) -> int:
    text, bom = _decode(sheet.path)
    records = _records(text, sheet.delimiter)
    header_index = sheet.header_row - 1
    header = _header(records[header_index], sheet.path, sheet.header_row)
    if header != sheet.header:
        raise SheetError(f"{sheet.path.name} changed while it was being imported; import it again")
    if ID_COLUMN in header:
        column = header.index(ID_COLUMN)
    else:  # the template puts id first; so does this
        column = 0
        records = [[ID_COLUMN if i == header_index else "", *r] if r or i == header_index else r
                   for i, r in enumerate(records)]
    filled = 0
    for number, submission_id in ids.items():
        record = records[number - 1]
        if not record:
            continue
        record.extend([""] * (column + 1 - len(record)))
        if is_empty(record[column]):
            record[column] = submission_id
            filled += 1
    if filled == 0:
        return 0
    newline = "\r\n" if "\r\n" in text else "\n"

    def write(tmp: Path) -> None:
        with tmp.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as out:
            csv.writer(out, delimiter=sheet.delimiter, lineterminator=newline).writerows(records)

    _replace(sheet.path, write)
    return filled


def _write_xlsx_ids(sheet: Sheet, ids: dict[int, str]) -> int:
    import openpyxl

    book = openpyxl.load_workbook(sheet.path)  # not data_only: formulas must survive the save
    ws = book[sheet.worksheet] if sheet.worksheet else book.worksheets[0]
    header = [ws.cell(sheet.header_row, i).value for i in range(1, ws.max_column + 1)]
    names = ["" if is_empty(h) else str(h).strip().lower() for h in header]
    if ID_COLUMN in names:
        column = names.index(ID_COLUMN) + 1
    else:  # appended, not inserted: inserting a column would not move formulas that refer to others
        column = ws.max_column + 1
        ws.cell(sheet.header_row, column, ID_COLUMN)
    filled = 0
    for number, submission_id in ids.items():
        cell = ws.cell(number, column)
        if is_empty(cell.value):
            cell.value = submission_id
            filled += 1
    if filled:
        _replace(sheet.path, lambda tmp: book.save(tmp))
    book.close()
    return filled
