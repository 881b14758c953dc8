"""Sheet columns ↔ submission fields, per type: flattening, typed conversion, and problem locations back to columns."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from cli.columns import ABSENT, TYPES, CellProblem, column_for, convert, row_to_data, shown, value_at
from services.validate.rules import SUBMITTED_MODELS
from shared.envelope import SCHEMA_VERSIONS


@pytest.mark.parametrize("type_", list(TYPES))
def test_every_type_is_mapped_at_its_latest_schema_version_with_a_column_for_every_field(type_: str) -> None:
    spec = TYPES[type_]
    assert spec.schema_version == SCHEMA_VERSIONS[type_][-1]
    model = SUBMITTED_MODELS[(type_, spec.schema_version)]
    top_level = {c.path[0] for c in spec.columns}
    assert top_level == set(model.model_fields)
    assert spec.names[0] == "id"


def test_seizure_row_becomes_v2_data_with_coordinates_and_a_transit_list() -> None:
    cells = {"seized_on": "2025-03-14", "country": "AFG", "place": "Islam Qala", "lat": "34.66", "lon": "61.06",
             "drug": "heroin", "quantity": "12.5", "unit": "kg", "cases": "2", "persons_arrested": "",
             "transport": "land", "route": "balkan", "transit": "IRN; TUR", "agency": "  ", "id": "x"}
    converted = row_to_data(TYPES["seizure"], cells)
    assert converted.problems == {}
    assert converted.data == {
        "seized_on": "2025-03-14", "country": "AFG", "place": "Islam Qala", "coordinates": {"lat": 34.66, "lon": 61.06},
        "drug": "heroin", "quantity": 12.5, "unit": "kg", "cases": 2, "transport": "land", "route": "balkan",
        "transit": ["IRN", "TUR"]}


def test_empty_cells_are_absent_not_empty_strings() -> None:
    converted = row_to_data(TYPES["seizure"], {"country": "AFG", "lat": None, "lon": "", "agency": " "})
    assert converted.data == {"country": "AFG"}


def test_treatment_facility_services_and_one_column_per_drug() -> None:
    cells = {"facility_id": "KAZ-ALM-007", "period": datetime(2025, 3, 1), "services": "detox;outpatient",
             "capacity": 120.0, "in_treatment.heroin": "85", "in_treatment.opium": 12, "in_treatment.cocaine": None,
             "In_Treatment.Tramadol ": "0"}
    converted = row_to_data(TYPES["treatment_facility"], cells)
    assert converted.data == {"facility_id": "KAZ-ALM-007", "period": "2025-03", "services": ["detox", "outpatient"],
                              "capacity": 120, "in_treatment": {"heroin": 85, "opium": 12, "tramadol": 0}}


def test_an_unknown_drug_column_is_sent_so_the_rules_can_name_it() -> None:
    converted = row_to_data(TYPES["treatment_facility"], {"in_treatment.hroin": "3"})
    assert converted.data == {"in_treatment": {"hroin": 3}}
    assert column_for("treatment_facility", ["data", "in_treatment", "hroin"]) == ("in_treatment.hroin", "")


def test_training_participant_columns_become_one_object() -> None:
    cells = {"course_id": "TRN-1", "participant.national_id": "A123", "participant.full_name": "N. R.",
             "participant.country": "TJK", "participant.gender": "", "starts_on": date(2025, 4, 7)}
    converted = row_to_data(TYPES["training"], cells)
    assert converted.data == {"course_id": "TRN-1", "starts_on": "2025-04-07",
                              "participant": {"national_id": "A123", "full_name": "N. R.", "country": "TJK"}}


def test_price_and_financial_case_numbers() -> None:
    price = row_to_data(TYPES["price"], {"price_typical": "9000", "price_min": "8000.50", "purity_pct": 45.5})
    assert price.data == {"price_typical": 9000, "price_min": 8000.5, "purity_pct": 45.5}
    case = row_to_data(TYPES["financial_case"], {"amount": "2.5e5", "persons_charged": "3.0"})
    assert case.data == {"amount": 250000, "persons_charged": 3}


@pytest.mark.parametrize(("kind", "cell", "expected"), [
    ("number", "12.5", 12.5), ("number", " 7 ", 7), ("number", 3, 3), ("number", -0.5, -0.5),
    ("integer", "4", 4), ("integer", 4.0, 4), ("integer", "4.00", 4),
    ("text", 123.0, "123"), ("text", " Herat ", "Herat"), ("date", datetime(2025, 1, 2, 0, 0), "2025-01-02"),
    ("date", "14/03/2025", "14/03/2025"), ("period", 2024, "2024"), ("list", "a, b;;c", ["a", "b", "c"]),
])
def test_cells_convert_to_their_fields_type(kind, cell, expected) -> None:
    assert convert(kind, cell) == expected


@pytest.mark.parametrize(("kind", "cell", "code"), [
    ("number", "1,500", "number_parsing"), ("number", "12 kg", "number_parsing"), ("number", float("nan"),
                                                                                  "number_parsing"),
    ("integer", "3.5", "int_parsing"), ("integer", 3.5, "int_parsing"), ("integer", "two", "int_parsing"),
])
def test_unreadable_numbers_are_problems_that_quote_the_cell(kind, cell, code) -> None:
    problem = convert(kind, cell)
    assert isinstance(problem, CellProblem)
    assert problem.code == code


@pytest.mark.parametrize("cell", [None, "", "   ", " ; "])
def test_empty_cells_are_absent(cell) -> None:
    assert convert("list", cell) is ABSENT


@pytest.mark.parametrize(("type_", "loc", "column"), [
    ("seizure", ["data", "quantity"], ("quantity", "")),
    ("seizure", ["data", "coordinates", "lat"], ("lat", "")),
    ("seizure", ["data", "coordinates"], ("lat / lon", "")),
    ("seizure", ["data", "transit", 1], ("transit", "item 2")),
    ("treatment_facility", ["data", "services", 0], ("services", "item 1")),
    ("treatment_facility", ["data", "in_treatment", "heroin"], ("in_treatment.heroin", "")),
    ("training", ["body", "data", "participant", "national_id"], ("participant.national_id", "")),
    ("training", ["data", "participant", "country"], ("participant.country", "")),
    ("price", ["data"], ("(row)", "")),
])
def test_problem_locations_map_to_the_flattened_column(type_, loc, column) -> None:
    assert column_for(type_, loc) == column


def test_values_at_a_location_and_identity_is_never_shown() -> None:
    data = {"transit": ["IRN", "XXY"], "participant": {"national_id": "A123"}}
    assert value_at(data, ["data", "transit", 1]) == "XXY"
    assert value_at(data, ["data", "nothing"]) is None
    assert shown("participant.national_id", value_at(data, ["data", "participant", "national_id"])) == "[hidden]"
    assert shown("transit", ["IRN", "TUR"]) == "IRN;TUR"
