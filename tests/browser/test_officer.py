"""An officer submits through the console's form, sees the verdict, the reasons beside the fields, and amends."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import ConsoleStack, assert_accessible, screenshot, sign_in
from tests.conftest import eventually
from tests.factories import envelope
from tests.keys import bearer

SEIZURE = {"seized_on": "2025-03-14", "country": "AFG", "place": "Islam Qala", "drug": "heroin",
           "quantity": "12.5", "unit": "kg", "transport": "land", "route": "balkan"}


def fill_seizure(page: Page, **fields: str) -> None:
    for name, value in {**SEIZURE, **fields}.items():
        control = page.locator(f"#f-{name}")
        if control.evaluate("node => node.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)


def status_of(stack: ConsoleStack, submission_id: str) -> dict[str, object]:
    response = httpx.get(f"{stack.url('aggregate')}/v1/submissions/{submission_id}", headers=stack.analyst, timeout=5)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def submitted_id(page: Page) -> str:
    text = page.locator("#status").inner_text()
    return next(word for word in text.split() if word.count("-") == 4)


def test_a_seizure_submitted_through_the_form_is_validated(page: Page, console_stack: ConsoleStack,
                                                           axe_source: str) -> None:
    sign_in(page, console_stack, "officer", ["AFG", "PAK"])
    expect(page).to_have_url(f"{console_stack.console}submit.html")
    fill_seizure(page)
    assert_accessible(page, axe_source)
    screenshot(page, "submit")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#status")).to_contain_text("Validated", timeout=30_000)
    status = status_of(console_stack, submitted_id(page))
    assert status["status"] == "validated" and status["type"] == "seizure"


def test_a_bad_seizure_shows_the_reason_beside_the_field_and_is_amended(page: Page, console_stack: ConsoleStack,
                                                                         axe_source: str) -> None:
    sign_in(page, console_stack, "officer", ["AFG"])
    fill_seizure(page, unit="l")  # litres do not suit heroin, a solid
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#status")).to_contain_text("Rejected", timeout=30_000)
    reason = page.locator("#f-unit-reason")
    submission_id = page.url and page.evaluate("() => Object.keys(sessionStorage)[0].slice(9)")
    assert status_of(console_stack, submission_id)["status"] == "rejected"
    expect(reason).to_contain_text("heroin")
    expect(page.locator("#f-unit")).to_have_attribute("aria-invalid", "true")
    assert page.locator(".reason:not(:empty)").count() == 1  # only the unit is wrong
    assert_accessible(page, axe_source)
    screenshot(page, "submit-rejected")

    page.locator("#f-unit").select_option("kg")
    page.get_by_role("button", name="Amend").click()
    expect(page.locator("#status")).to_contain_text("Validated", timeout=30_000)
    expect(reason).to_be_empty()
    status = status_of(console_stack, submission_id)
    assert submitted_id(page) == submission_id
    assert status["status"] == "validated" and status["version"] == 2
    history = status["history"]
    assert isinstance(history, list) and [h["status"] for h in history][-2:] == ["rejected", "validated"]


def test_my_submissions_lists_what_the_officer_sent_with_its_history(page: Page, console_stack: ConsoleStack,
                                                                     axe_source: str) -> None:
    key = sign_in(page, console_stack, "officer", ["PAK"])
    fill_seizure(page, country="PAK", place="Torkham", quantity="3")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#status")).to_contain_text("Validated", timeout=30_000)
    submission_id = submitted_id(page)
    page.get_by_role("link", name="My submissions").click()
    row = page.locator("#submissions tbody tr", has_text="PAK")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("validated")
    page.get_by_role("button", name=f"Details of {submission_id}").click()
    expect(page.locator("#detail")).to_contain_text(submission_id)
    assert_accessible(page, axe_source)
    screenshot(page, "my-submissions")
    own = httpx.get(f"{console_stack.url('aggregate')}/v1/submissions/{submission_id}", headers=bearer(key), timeout=5)
    assert own.status_code == 200 and own.json()["status"] == "validated"


def test_my_submissions_shows_a_page_at_a_time_and_more_on_request(page: Page, console_stack: ConsoleStack) -> None:
    key = sign_in(page, console_stack, "officer", ["IRN"])
    sent = [envelope(country="IRN", place=f"Mirjaveh {n}") for n in range(130)]
    answer = httpx.post(f"{console_stack.url('ingest')}/v1/submissions/batch", json=sent, headers=bearer(key),
                        timeout=30)
    assert answer.status_code == 207, answer.text

    def all_listed() -> bool:
        listed = httpx.get(f"{console_stack.url('aggregate')}/v1/submissions", headers=bearer(key),
                           params={"submitted_by": "me", "limit": 1000}, timeout=10).json()
        return {item["id"] for item in listed["items"]} == {s["id"] for s in sent}

    eventually(all_listed, timeout=60, what="the officer's 130 submissions listed")
    page.get_by_role("link", name="My submissions").click()
    rows = page.locator("#submissions tbody tr")
    expect(rows).to_have_count(100)
    page.get_by_role("button", name="Show more").click()
    expect(rows).to_have_count(len(sent))
    expect(page.get_by_role("button", name="Show more")).to_have_count(0)
    shown = {page.locator(f"button[aria-label='Details of {s['id']}']").count() for s in sent}
    assert shown == {1}


def test_every_type_has_a_form_and_a_facility_report_with_lists_is_validated(page: Page, console_stack: ConsoleStack,
                                                                            axe_source: str) -> None:
    sign_in(page, console_stack, "officer", ["KAZ"])
    first_fields = {"price": "#f-observed_on", "financial_case": "#f-case_type",
                    "training": "#f-participant-national_id", "treatment_facility": "#f-in_treatment"}
    for type_, field in first_fields.items():
        page.get_by_label("Type", exact=True).select_option(type_)
        expect(page.locator(field)).to_be_visible()
        assert_accessible(page, axe_source)
    page.locator("#f-facility_id").fill("KAZ-ALM-007")
    page.locator("#f-name").fill("Almaty Regional Narcology Centre")
    page.locator("#f-period").fill("2025-03")
    page.get_by_label("Detox").check()
    page.get_by_label("Opioid agonist").check()
    page.locator("#f-capacity").fill("120")
    page.locator("#f-in_treatment").fill("heroin=85; methamphetamine=30")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#status")).to_contain_text("Validated", timeout=30_000)
    sheet = httpx.get(f"{console_stack.url('aggregate')}/v1/views/fact-sheet", params={"country": "KAZ", "year": 2025},
                      headers=console_stack.analyst, timeout=10).json()
    assert sheet["treatment"]["capacity"] == 120 and sheet["treatment"]["in_treatment"] == 85 + 30


def test_a_training_participant_is_submitted_and_the_tab_keeps_no_identity(page: Page, console_stack: ConsoleStack,
                                                                           axe_source: str) -> None:
    sign_in(page, console_stack, "officer", ["KGZ"])
    page.get_by_label("Type", exact=True).select_option("training")
    fields = {"course_id": "TRN-2025-014", "course_title": "Controlled Delivery Techniques",
              "starts_on": "2025-04-08", "ends_on": "2025-04-12", "host_country": "KGZ",
              "programme": "Border Liaison Offices", "participant-national_id": "A1234567",
              "participant-full_name": "Nigora Rakhimova", "participant-agency": "Drug Control Agency",
              "participant-country": "TJK", "participant-role": "investigator"}
    for name, value in fields.items():
        page.locator(f"#f-{name}").fill(value)
    page.locator("#f-participant-gender").select_option("female")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#status")).to_contain_text("Validated", timeout=30_000)
    kept = page.evaluate("() => JSON.stringify({...sessionStorage})")
    assert "TRN-2025-014" in kept and "A1234567" not in kept and "Rakhimova" not in kept
    assert_accessible(page, axe_source)
