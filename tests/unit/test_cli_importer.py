"""Sheet rows → submissions: stable ids, and every local problem named by row and column."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from cli.importer import assign_ids, derived_id, plan, required_columns, sheet_identity
from cli.sheets import Sheet, SheetRow
from tests.factories import seizure_data, training_submission_data

NAMESPACE = uuid.UUID("6f1c3d2e-0000-4000-8000-000000000001")
SEIZURE_COLUMNS = ["id", "seized_on", "country", "place", "lat", "lon", "drug", "quantity", "unit", "cases",
                   "persons_arrested", "transport", "route", "origin", "destination", "transit", "agency"]


def sheet_of(rows: list[dict[str, Any]], header: list[str] | None = None, first_row: int = 2) -> Sheet:
    header = header or sorted({k for r in rows for k in r})
    return Sheet(Path("/data/seizures.csv"), "csv", header, first_row - 1,
                 [SheetRow(first_row + i, {h: r.get(h) for h in header}) for i, r in enumerate(rows)])


def seizure_row(**overrides: Any) -> dict[str, Any]:
    data = {k: str(v) for k, v in seizure_data().items()}
    return {"id": None, **data, **overrides}


def test_the_same_sheet_gets_the_same_ids_every_time() -> None:
    rows = [seizure_row(), seizure_row(place="Herat")]
    first = plan(sheet_of(rows, SEIZURE_COLUMNS), "seizure", NAMESPACE, "/data/seizures.csv")
    again = plan(sheet_of(rows, SEIZURE_COLUMNS), "seizure", NAMESPACE, "/data/seizures.csv")
    assert [r.id for r in first.rows] == [r.id for r in again.rows]
    assert len({r.id for r in first.rows}) == 2
    assert first.ids_to_write() == {2: first.rows[0].id, 3: first.rows[1].id}


def test_ids_depend_on_the_installation_the_sheet_and_the_type() -> None:
    base = derived_id(NAMESPACE, "seizure", "/data/seizures.csv", "row:2")
    assert derived_id(uuid.uuid4(), "seizure", "/data/seizures.csv", "row:2") != base
    assert derived_id(NAMESPACE, "seizure", "/data/2024/seizures.csv", "row:2") != base
    assert derived_id(NAMESPACE, "price", "/data/seizures.csv", "row:2") != base
    assert uuid.UUID(base).version == 5


def test_the_sheet_is_its_absolute_path_unless_named(tmp_path) -> None:
    assert sheet_identity(tmp_path / "a" / ".." / "s.csv") == str((tmp_path / "s.csv").resolve())
    assert sheet_identity(tmp_path / "s.csv", "seizures-2025") == "seizures-2025"


def test_an_id_cell_holding_a_uuid_is_the_submission_id_wherever_the_row_is() -> None:
    mine = uuid.uuid4()
    rows = [SheetRow(2, {"id": None}), SheetRow(9, {"id": f" {str(mine).upper()} "})]
    assigned = assign_ids(rows, NAMESPACE, "seizure", "s")
    assert assigned[9] == (str(mine), True)
    assert assigned[2] == (derived_id(NAMESPACE, "seizure", "s", "row:2"), False)


def test_own_references_keep_their_id_when_rows_are_sorted_or_inserted() -> None:
    before = assign_ids([SheetRow(2, {"id": "SZ-1"}), SheetRow(3, {"id": 2.0})], NAMESPACE, "seizure", "s")
    after = assign_ids([SheetRow(2, {"id": "new"}), SheetRow(3, {"id": "2"}), SheetRow(4, {"id": "SZ-1"})],
                       NAMESPACE, "seizure", "s")
    assert after[4] == before[2]
    assert after[3] == before[3]


def test_row_number_ids_follow_the_row_number_which_is_why_they_are_written_back() -> None:
    before = assign_ids([SheetRow(2, {}), SheetRow(3, {})], NAMESPACE, "seizure", "s")
    after = assign_ids([SheetRow(2, {}), SheetRow(3, {}), SheetRow(4, {})], NAMESPACE, "seizure", "s")
    assert after[3] == before[3]  # whatever row 3 now holds


def test_a_row_inserted_where_a_written_back_row_was_gets_a_fresh_id() -> None:
    first = assign_ids([SheetRow(2, {}), SheetRow(3, {})], NAMESPACE, "seizure", "s")
    written = [SheetRow(2, {"id": first[2][0]}), SheetRow(3, {"id": None}), SheetRow(4, {"id": first[3][0]})]
    after = assign_ids(written, NAMESPACE, "seizure", "s")
    assert after[2] == (first[2][0], True)
    assert after[4] == (first[3][0], True)
    assert after[3][0] not in {first[2][0], first[3][0]}


def test_two_rows_with_one_id_are_both_problems() -> None:
    found = plan(sheet_of([seizure_row(id="SZ-1"), seizure_row(id="SZ-1", place="Herat")], SEIZURE_COLUMNS),
                 "seizure", NAMESPACE, "s")
    assert [(p.row, p.column, p.code) for p in found.problems] == [(2, "id", "duplicate_id"), (3, "id", "duplicate_id")]
    assert "row 3" in found.problems[0].msg
    assert found.items() == []


def test_local_problems_are_named_by_row_and_column_with_the_cell_value() -> None:
    rows = [seizure_row(),
            seizure_row(country="afg", unit="l", lat="34.6"),
            seizure_row(quantity="1,5", cases="two", transit="IRN;XXY")]
    found = plan(sheet_of(rows, SEIZURE_COLUMNS), "seizure", NAMESPACE, "s")
    problems = [(p.row, p.column, p.value, p.code) for p in found.problems]
    assert problems == [
        (3, "country", "afg", "country_code"),
        (3, "lon", "", "missing"),
        (3, "unit", "l", "unit_for_drug"),
        (4, "quantity", "1,5", "number_parsing"),
        (4, "cases", "two", "int_parsing"),
        (4, "transit", "IRN;XXY", "country_code"),
    ]
    assert "did you mean AFG?" in found.problems[0].msg
    assert found.problems[-1].msg.startswith("item 2: ")
    assert [i.row for i in found.items()] == [2]
    assert found.items()[0].schema_version == 2


def test_a_missing_required_column_is_reported_and_each_row_says_so() -> None:
    header = [c for c in SEIZURE_COLUMNS if c != "quantity"] + ["notes"]
    found = plan(sheet_of([seizure_row(notes="seen at night")], header), "seizure", NAMESPACE, "s")
    assert found.ignored_columns == ["notes"]
    assert "quantity" in found.missing_columns
    assert [(p.column, p.msg) for p in found.problems] == [("quantity", "is required")]


def training_row(**overrides: Any) -> dict[str, Any]:
    data = training_submission_data()
    row = {k: v for k, v in data.items() if k != "participant"}
    row |= {f"participant.{k}": v for k, v in data["participant"].items()}
    return {"id": None, **row, **overrides}


def test_training_rows_are_checked_without_keeping_a_pseudonym_and_identity_is_never_shown() -> None:
    rows = [training_row(), training_row(**{"participant.national_id": "", "participant.full_name": ""}),
            training_row(**{"participant.country": "tjk", "participant.full_name": "x" * 201})]
    found = plan(sheet_of(rows), "training", NAMESPACE, "s")
    assert [(p.row, p.column, p.code) for p in found.problems] == [
        (3, "participant.national_id", "missing"), (3, "participant.full_name", "missing"),
        (4, "participant.full_name", "string_too_long"), (4, "participant.country", "country_code")]
    assert all(p.value in ("", "[hidden]") for p in found.problems if p.column == "participant.full_name")
    valid = found.items()[0]
    assert valid.data["participant"]["national_id"] == "A1234567"
    assert "pseudonym" not in valid.data["participant"]


def test_treatment_facility_problems_point_at_the_drug_column() -> None:
    row = {"facility_id": "KAZ-1", "country": "KAZ", "name": "Centre", "period": "2024-03", "services": "detox;spa",
           "capacity": "10", "in_treatment.heroin": "-1", "in_treatment.hroin": "2"}
    found = plan(sheet_of([row]), "treatment_facility", NAMESPACE, "s")
    assert {(p.column, p.code) for p in found.problems} == {
        ("services", "literal_error"), ("in_treatment.heroin", "greater_than_equal"),
        ("in_treatment.hroin", "drug_code")}


def test_required_columns_come_from_the_servers_rules() -> None:
    assert required_columns("seizure") == ["seized_on", "country", "place", "drug", "quantity", "unit", "transport",
                                           "route"]
    assert required_columns("treatment_facility")[-1] == "in_treatment.*"
    assert "participant.national_id" in required_columns("training")
    assert "participant" not in required_columns("training")


def test_a_facility_with_no_drug_counts_is_told_to_fill_one() -> None:
    row = {"facility_id": "KAZ-1", "country": "KAZ", "name": "Centre", "period": "2024", "services": "detox",
           "capacity": "10", "in_treatment.heroin": ""}
    found = plan(sheet_of([row]), "treatment_facility", NAMESPACE, "s")
    assert [(p.column, p.msg) for p in found.problems] == [("in_treatment.*", "is required")]
    assert found.missing_columns == []
