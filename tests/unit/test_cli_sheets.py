"""Reading CSV and XLSX sheets with the row numbers a spreadsheet shows, and writing row ids back."""

from __future__ import annotations

import codecs
from datetime import datetime

import openpyxl
import pytest

from cli.sheets import SheetError, read, write_ids
from cli.templates import csv_template, write_template


def test_csv_rows_keep_spreadsheet_row_numbers_and_skip_empty_rows(tmp_path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("Country , Quantity\nAFG,1\n\n,\nPAK,2\n")
    sheet = read(path)
    assert sheet.header == ["country", "quantity"]
    assert [(r.number, r.cells) for r in sheet.rows] == [(2, {"country": "AFG", "quantity": "1"}),
                                                         (5, {"country": "PAK", "quantity": "2"})]


def test_semicolon_csv_with_bom_as_excel_saves_it_in_many_locales(tmp_path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(codecs.BOM_UTF8 + b"country;place;transit\r\nAFG;Islam Qala;\"IRN;TUR\"\r\n")
    sheet = read(path)
    assert sheet.delimiter == ";"
    assert sheet.rows[0].cells == {"country": "AFG", "place": "Islam Qala", "transit": "IRN;TUR"}


def test_short_rows_read_as_empty_cells(tmp_path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("a,b,c\n1\n")
    assert read(path).rows[0].cells == {"a": "1", "b": None, "c": None}


def test_unreadable_files_say_what_to_do(tmp_path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("place\nHérat\n".encode("latin-1"))
    with pytest.raises(SheetError, match="CSV UTF-8"):
        read(latin)
    twice = tmp_path / "twice.csv"
    twice.write_text("country,Country\nAFG,AFG\n")
    with pytest.raises(SheetError, match="more than once"):
        read(twice)
    with pytest.raises(SheetError, match=r"only \.csv and \.xlsx"):
        read(tmp_path / "s.ods")
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n")
    with pytest.raises(SheetError, match="empty"):
        read(empty)


def test_xlsx_cells_keep_their_types_and_the_first_sheet_is_read(tmp_path) -> None:
    path = tmp_path / "s.xlsx"
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["seized_on", "quantity", "cases", "place"])
    ws.append([datetime(2025, 3, 14), 12.5, 2, "Herat"])
    ws.append([None, None, None, None])
    ws.append([datetime(2025, 3, 15), 1, 1.0, 123])
    book.create_sheet("other").append(["x"])
    book.save(path)
    sheet = read(path)
    assert sheet.format == "xlsx"
    assert [(r.number, r.cells) for r in sheet.rows] == [
        (2, {"seized_on": datetime(2025, 3, 14), "quantity": 12.5, "cases": 2, "place": "Herat"}),
        (4, {"seized_on": datetime(2025, 3, 15), "quantity": 1, "cases": 1, "place": 123})]
    assert read(path, "other").header == ["x"]
    with pytest.raises(SheetError, match="no worksheet"):
        read(path, "missing")


def test_ids_are_written_into_empty_id_cells_of_a_csv_and_nothing_else_changes(tmp_path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("id;country;note\r\n;AFG;\"a;b\"\r\nmine;PAK;\r\n;TJK;x\r\n")
    sheet = read(path)
    assert write_ids(sheet, {2: "id-2", 3: "id-3", 4: "id-4"}) == 2
    assert path.read_bytes().decode() == "id;country;note\r\nid-2;AFG;\"a;b\"\r\nmine;PAK;\r\nid-4;TJK;x\r\n"
    assert write_ids(read(path), {2: "other"}) == 0


def test_a_csv_without_an_id_column_gets_one_first(tmp_path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("country,place\nAFG,Herat\n\nPAK,Torkham\n")
    write_ids(read(path), {2: "id-2", 4: "id-4"})
    assert path.read_text() == "id,country,place\nid-2,AFG,Herat\n\nid-4,PAK,Torkham\n"
    assert [r.cells["id"] for r in read(path).rows] == ["id-2", "id-4"]


def test_ids_are_written_into_an_xlsx_keeping_formulas(tmp_path) -> None:
    path = tmp_path / "s.xlsx"
    book = openpyxl.Workbook()
    ws = book.active
    ws.append(["country", "quantity", "double"])
    ws.append(["AFG", 2, "=B2*2"])
    book.save(path)
    assert write_ids(read(path), {2: "id-2"}) == 1
    reopened = openpyxl.load_workbook(path)
    assert [c.value for c in reopened.active[1]] == ["country", "quantity", "double", "id"]
    assert [c.value for c in reopened.active[2]] == ["AFG", 2, "=B2*2", "id-2"]


def test_templates_have_the_type_columns_and_a_guide(tmp_path) -> None:
    assert csv_template("price").startswith("id,observed_on,country,place,drug,market,price_typical")
    path = tmp_path / "training.xlsx"
    write_template("training", path)
    sheet = read(path)
    assert sheet.header[:2] == ["id", "course_id"]
    assert "participant.national_id" in sheet.header
    assert sheet.rows == []
    guide = read(path, "columns")
    assert {r.cells["column"] for r in guide.rows} >= {"id", "participant.full_name"}
    csv_path = tmp_path / "seizure.csv"
    write_template("seizure", csv_path)
    assert read(csv_path).header == csv_template("seizure").strip().split(",")
