"""Every training rule of DOMAIN.md, on the pseudonymised form validate sees; the officer's form's schema."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import orjson
import pytest

from services.validate.decision import decide
from services.validate.rules import Accepted, Rejected, validate
from services.validate.rules.training import Training, TrainingSubmission
from shared.envelope import dumps
from shared.topics import Topics
from tests.factories import participant_data, received_event, training_data, training_submission_data


def problems(data: dict[str, Any] | None = None, **overrides: Any) -> dict[tuple[str | int, ...], str]:
    outcome = validate(received_event(data or training_data(**overrides), type_="training"))
    assert isinstance(outcome, Rejected), outcome
    return {tuple(e.loc): e.type for e in outcome.errors}


def accepted(**overrides: Any) -> dict[str, Any]:
    outcome = validate(received_event(training_data(**overrides), type_="training"))
    assert isinstance(outcome, Accepted), outcome
    assert outcome.schema_version == 1
    return outcome.data


def test_a_pseudonymised_participation_is_accepted_with_year_and_title_key() -> None:
    assert accepted() == {
        "course_id": "TRN-2024-014", "course_title": "Controlled  Delivery Techniques",
        "starts_on": "2024-04-08", "ends_on": "2024-04-12", "host_country": "KGZ",
        "programme": "Border Liaison Offices",
        "participant": {"pseudonym": "a" * 64, "agency": "Drug Control Agency", "country": "TJK",
                        "gender": "female", "role": "investigator"},
        "normalised": {"year": 2024, "title_key": "controlled delivery techniques", "submitted_schema_version": 1},
    }


def test_title_key_folds_case_width_ligatures_and_spacing() -> None:
    title = " Ｃｏｎｔｒｏｌｌｅｄ\u00a0DELIVERY\t\tStraße ﬁeld  work "
    assert accepted(course_title=title)["normalised"]["title_key"] == "controlled delivery strasse field work"


def test_year_is_the_year_the_course_starts() -> None:
    assert accepted(starts_on="2023-12-28", ends_on="2024-01-05")["normalised"]["year"] == 2023


def test_a_one_day_course_is_accepted() -> None:
    accepted(starts_on="2024-04-08", ends_on="2024-04-08")


def test_a_course_ending_before_it_starts_is_reported_on_the_end_date() -> None:
    assert problems(ends_on="2024-04-07") == {("data", "ends_on"): "date_order"}


def test_dates_are_not_compared_when_one_is_itself_wrong() -> None:
    assert problems(starts_on="2024-04-31", ends_on="2024-04-01") == {("data", "starts_on"): "date_invalid"}


@pytest.mark.parametrize(("field", "value", "code"), [
    ("course_id", "", "string_too_short"),
    ("course_id", "x" * 101, "string_too_long"),
    ("course_title", "", "string_too_short"),
    ("course_title", "x" * 201, "string_too_long"),
    ("starts_on", "08.04.2024", "date_format"),
    ("starts_on", "1989-04-08", "date_too_early"),
    ("ends_on", (date.today() + timedelta(days=3)).isoformat(), "date_in_future"),
    ("host_country", "kgz", "country_code"),
    ("programme", " ", "string_too_short"),
    ("programme", ..., "missing"),
    ("participant", ..., "missing"),
    ("participant", "a" * 64, "model_type"),
])
def test_each_course_rule_names_its_field(field: str, value: Any, code: str) -> None:
    assert problems(**{field: value}) == {("data", field): code}


@pytest.mark.parametrize(("field", "value", "code"), [
    ("pseudonym", "A" * 64, "string_pattern_mismatch"),
    ("pseudonym", "a" * 63, "string_pattern_mismatch"),
    ("pseudonym", "a" * 64 + "\n", "string_pattern_mismatch"),
    ("pseudonym", ..., "missing"),
    ("agency", "", "string_too_short"),
    ("country", "TJ", "country_code"),
    ("gender", "f", "literal_error"),
    ("gender", ..., "missing"),
    ("role", "x" * 201, "string_too_long"),
])
def test_each_participant_rule_names_its_field(field: str, value: Any, code: str) -> None:
    assert problems(participant=participant_data(**{field: value})) == {("data", "participant", field): code}


@pytest.mark.parametrize("gender", ["female", "male", "other", "unknown"])
def test_every_gender_of_the_list_is_accepted(gender: str) -> None:
    assert accepted(participant=participant_data(gender=gender))["participant"]["gender"] == gender


def test_a_raw_identity_is_refused_because_ingest_must_have_pseudonymised_it() -> None:
    assert problems(training_submission_data()) == {
        ("data", "participant", "national_id"): "extra_forbidden",
        ("data", "participant", "full_name"): "extra_forbidden",
        ("data", "participant", "pseudonym"): "missing"}


def test_a_rejected_raw_identity_is_not_repeated_in_the_rejected_event() -> None:
    event = received_event(training_submission_data(), type_="training")
    out = decide(dumps(event), b"9a1b", {}, partition=0, offset=7, topics=Topics())
    assert not out.accepted
    assert b"A1234567" not in out.value and b"Rakhimova" not in out.value
    participant = orjson.loads(out.value)["original"]["data"]["participant"]
    assert participant["national_id"] == participant["full_name"] == "[redacted]"
    assert participant["agency"] == "Drug Control Agency"


def test_every_training_problem_is_reported_at_once() -> None:
    assert problems(course_title="", ends_on="2024-04-01", host_country="XXX",
                    participant=participant_data(gender="f", pseudonym=...)) == {
        ("data", "course_title"): "string_too_short", ("data", "ends_on"): "date_order",
        ("data", "host_country"): "country_code", ("data", "participant", "gender"): "literal_error",
        ("data", "participant", "pseudonym"): "missing"}


def test_the_officers_form_carries_identity_and_the_validated_form_a_pseudonym() -> None:
    TrainingSubmission.model_validate(training_submission_data())
    submitted = TrainingSubmission.model_json_schema()["$defs"]["ParticipantSubmission"]
    validated = Training.model_json_schema()["$defs"]["Participant"]
    assert {"national_id", "full_name"} <= set(submitted["required"])
    assert "pseudonym" not in submitted["properties"]
    assert "pseudonym" in validated["required"]
    assert not {"national_id", "full_name"} & set(validated["properties"])
    assert "Ingest de-identifies" in (TrainingSubmission.__doc__ or "")
