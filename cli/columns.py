"""Spreadsheet columns of each submission type: how a row becomes `data`, and a field path a column.

Columns are the DOMAIN.md field names. Nested and list fields are flattened:

- seizure: `lat`, `lon` → `coordinates: {lat, lon}` (sent as schema_version 2); `transit` as `IRN;TUR`
- treatment_facility: `services` as `detox;outpatient`; `in_treatment.<drug>`, one column per drug
- training: `participant.national_id`, `participant.full_name`, … → `participant: {...}`

Every template starts with an `id` column (see `cli.importer` for how row ids are chosen).
An empty cell means the field is absent. Lists are split on `;` (a `,` works too).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Literal, get_args

from services.validate.rules.reference import drugs
from shared.reference import CaseType, Gender, Market, Route, Transport, TreatmentService

Kind = Literal["text", "number", "integer", "date", "period", "list"]
ID_COLUMN = "id"
LIST_SEPARATORS = re.compile(r"[;,]")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+(?:\.0*)?")
REDACTED_COLUMNS = frozenset({"participant.national_id", "participant.full_name"})
"""Raw identity: never shown in tables or written to exports (only the user's queue holds it)."""


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    path: tuple[str, ...]
    rule: str
    example: str = ""


@dataclass(frozen=True)
class TypeColumns:
    type: str
    schema_version: int
    columns: tuple[Column, ...]
    open_prefix: str | None = None
    """A prefix (`in_treatment.`) under which any column names a key of an object."""

    @property
    def names(self) -> list[str]:
        return [ID_COLUMN, *(c.name for c in self.columns)]

    def column(self, name: str) -> Column | None:
        """The column called `name` (case and surrounding spaces ignored), also for open object keys."""
        name = name.strip().lower()
        for column in self.columns:
            if column.name == name:
                return column
        if self.open_prefix and name.startswith(self.open_prefix) and len(name) > len(self.open_prefix):
            key = name[len(self.open_prefix):]
            return Column(name, "integer", (self.open_prefix.rstrip("."), key), "count ≥ 0")
        return None


def _c(name: str, kind: Kind, rule: str, example: str = "", path: tuple[str, ...] | None = None) -> Column:
    return Column(name, kind, path or tuple(name.split(".")), rule, example)


def _one_of(codes: Any) -> str:
    """`a, b or c`: the codes of a shared code list (shared/reference), for a column's rule."""
    names = get_args(codes)
    return f"{', '.join(names[:-1])} or {names[-1]}"


_ISO3 = "ISO 3166-1 alpha-3 code"
_DATE = "date YYYY-MM-DD, not in the future, not before 1990"

SEIZURE = TypeColumns("seizure", 2, (
    _c("seized_on", "date", _DATE, "2025-03-14"),
    _c("country", "text", f"{_ISO3}: where it was seized", "AFG"),
    _c("place", "text", "town, border crossing, port; 1–200 characters", "Islam Qala"),
    _c("lat", "number", "optional latitude −90…90; with lon, or neither", "34.66", ("coordinates", "lat")),
    _c("lon", "number", "optional longitude −180…180; with lat, or neither", "61.06", ("coordinates", "lon")),
    _c("drug", "text", "code from the drug list", "heroin"),
    _c("quantity", "number", "> 0", "12.5"),
    _c("unit", "text", "kg, g, l, ml or unit; must suit the drug", "kg"),
    _c("cases", "integer", "≥ 1; empty = 1", "1"),
    _c("persons_arrested", "integer", "≥ 0; empty = 0", "2"),
    _c("transport", "text", _one_of(Transport), "land"),
    _c("route", "text", _one_of(Route), "balkan"),
    _c("origin", "text", f"optional {_ISO3}", "AFG"),
    _c("destination", "text", f"optional {_ISO3}", "TUR"),
    _c("transit", "list", f"optional list of {_ISO3}, separated by ;", "IRN;TUR"),
    _c("agency", "text", "optional seizing agency", "Border Police"),
))

PRICE = TypeColumns("price", 1, (
    _c("observed_on", "date", _DATE, "2025-03-15"),
    _c("country", "text", _ISO3, "TJK"),
    _c("place", "text", "1–200 characters", "Dushanbe"),
    _c("drug", "text", "code from the drug list", "heroin"),
    _c("market", "text", _one_of(Market), "wholesale"),
    _c("price_typical", "number", "> 0; required", "9000"),
    _c("price_min", "number", "optional, > 0, ≤ price_typical", "8000"),
    _c("price_max", "number", "optional, > 0, ≥ price_typical", "11000"),
    _c("currency", "text", "ISO 4217 code", "USD"),
    _c("per", "text", "g or kg", "kg"),
    _c("purity_pct", "number", "optional, 0–100", "45.5"),
))

FINANCIAL_CASE = TypeColumns("financial_case", 1, (
    _c("reported_on", "date", _DATE, "2025-05-20"),
    _c("country", "text", _ISO3, "UZB"),
    _c("case_type", "text", _one_of(CaseType), "cash_smuggling"),
    _c("amount", "number", "> 0", "250000"),
    _c("currency", "text", "ISO 4217 code", "USD"),
    _c("linked_drug", "text", "optional code from the drug list", "heroin"),
    _c("persons_charged", "integer", "≥ 0; empty = 0", "3"),
))

TREATMENT_FACILITY = TypeColumns("treatment_facility", 1, (
    _c("facility_id", "text", "your stable id for the facility; 1–100 characters", "KAZ-ALM-007"),
    _c("country", "text", _ISO3, "KAZ"),
    _c("name", "text", "1–200 characters", "Almaty Regional Narcology Centre"),
    _c("period", "period", "YYYY or YYYY-MM", "2025-03"),
    _c("services", "list", f"{', '.join(get_args(TreatmentService))}; separated by ;", "detox;outpatient"),
    _c("capacity", "integer", "≥ 0", "120"),
    *(_c(f"in_treatment.{code}", "integer", f"people in treatment for {code}, ≥ 0; empty = none reported",
         "85" if code == "heroin" else "") for code in drugs()),
), open_prefix="in_treatment.")

TRAINING = TypeColumns("training", 1, (
    _c("course_id", "text", "1–100 characters", "TRN-2025-014"),
    _c("course_title", "text", "1–200 characters", "Controlled Delivery Techniques"),
    _c("starts_on", "date", _DATE, "2025-04-07"),
    _c("ends_on", "date", f"{_DATE}; not before starts_on", "2025-04-11"),
    _c("host_country", "text", _ISO3, "KGZ"),
    _c("programme", "text", "1–200 characters", "Border Liaison Offices"),
    _c("participant.national_id", "text", "identity or passport number; ingest keeps only a keyed pseudonym",
       "A1234567"),
    _c("participant.full_name", "text", "1–200 characters; never stored by the platform", "Nigora Rakhimova"),
    _c("participant.agency", "text", "1–200 characters", "Drug Control Agency"),
    _c("participant.country", "text", _ISO3, "TJK"),
    _c("participant.gender", "text", _one_of(Gender), "female"),
    _c("participant.role", "text", "1–200 characters", "investigator"),
))

TYPES: dict[str, TypeColumns] = {t.type: t for t in (SEIZURE, PRICE, FINANCIAL_CASE, TREATMENT_FACILITY, TRAINING)}


class Absent:
    """An empty cell: the field is not sent."""


ABSENT = Absent()


@dataclass(frozen=True)
class CellProblem:
    msg: str
    code: str


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def convert(kind: Kind, value: Any) -> Any | Absent | CellProblem:
    """A cell as the JSON value its field wants, ABSENT for an empty cell, or why it cannot be."""
    if is_empty(value):
        return ABSENT
    if kind == "number":
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                return CellProblem(f"must be a number, got {value}", "number_parsing")
            return value
        text = _text(value)
        if _NUMBER.fullmatch(text):
            number = float(text)
            return int(number) if number.is_integer() and abs(number) < 2**53 else number
        return CellProblem(f"must be a number (digits and '.' for decimals, no thousands separators), got {text!r}",
                           "number_parsing")
    if kind == "integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        text = _text(value)
        if _INTEGER.fullmatch(text):
            return int(text.split(".")[0])
        return CellProblem(f"must be a whole number, got {text!r}", "int_parsing")
    if kind == "date" and isinstance(value, datetime | date):
        return (value.date() if isinstance(value, datetime) else value).isoformat()
    if kind == "period" and isinstance(value, datetime | date):
        return f"{value.year:04d}-{value.month:02d}"  # spreadsheets turn a typed 2025-03 into 1 March 2025
    if kind == "list":
        items = [part.strip() for part in LIST_SEPARATORS.split(_text(value)) if part.strip()]
        return items or ABSENT
    return _text(value)


@dataclass(frozen=True)
class RowData:
    data: dict[str, Any]
    problems: dict[str, CellProblem]
    """Column name → why its cell could not be read."""


def row_to_data(spec: TypeColumns, cells: dict[str, Any]) -> RowData:
    """One sheet row (column name → cell) as the type's `data`; unknown columns are the caller's concern."""
    data: dict[str, Any] = {}
    problems: dict[str, CellProblem] = {}
    for name, value in cells.items():
        column = spec.column(name)
        if column is None or column.name == ID_COLUMN:
            continue
        converted = convert(column.kind, value)
        if isinstance(converted, Absent):
            continue
        if isinstance(converted, CellProblem):
            problems[column.name] = converted
            continue
        target = data
        for part in column.path[:-1]:
            target = target.setdefault(part, {})
        target[column.path[-1]] = converted
    return RowData(data, problems)


def column_for(type_: str, loc: list[str | int] | tuple[str | int, ...]) -> tuple[str, str]:
    """The sheet column a problem's `loc` points at, plus any detail the column alone loses (a list item).

    `["data", "quantity"]` → `quantity`; `["data", "coordinates", "lat"]` → `lat`;
    `["data", "in_treatment", "heroin"]` → `in_treatment.heroin`; `["data", "transit", 1]` → `transit`, "item 2".
    """
    path = list(loc)
    while path and path[0] in ("body", "data"):
        path = path[1:]
    spec = TYPES.get(type_)
    if not path:
        return "(row)", ""
    if spec is None:
        return ".".join(map(str, path)), ""
    best: Column | None = None
    for column in spec.columns:
        n = len(column.path)
        if tuple(path[:n]) == column.path and (best is None or n > len(best.path)):
            best = column
    if best is not None:
        rest = path[len(best.path):]
        detail = f"item {rest[0] + 1}" if rest and isinstance(rest[0], int) else ""
        return best.name, detail
    head = str(path[0])
    if spec.open_prefix == f"{head}.":
        return f"{head}.{path[1] if len(path) > 1 else '*'}", ""
    # A whole object (coordinates, participant) or a field the sheet has no column for.
    owned = [c.name for c in spec.columns if c.path[0] == head]
    return (" / ".join(owned) if owned else head), ""


def value_at(data: dict[str, Any], loc: list[str | int]) -> Any:
    """The submitted value a `loc` points at, or None."""
    path = list(loc)
    while path and path[0] in ("body", "data"):
        path = path[1:]
    current: Any = data
    for part in path:
        found = (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current))
        if not found:
            return None
        current = current[part]
    return current


def shown(column: str, value: Any) -> str:
    """A cell value fit to print: raw identity is never shown."""
    if value is None or value == "":
        return ""
    if column in REDACTED_COLUMNS:
        return "[hidden]"
    if isinstance(value, list):
        return ";".join(map(str, value))
    return str(value)
