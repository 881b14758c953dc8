"""The operator page follows the services' own health; the admin page shows the audit trail."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import ConsoleStack, assert_accessible, screenshot, sign_in


def test_the_operator_page_shows_a_stopped_service_failing_and_healthy_again_after(
        page: Page, console_stack: ConsoleStack, axe_source: str) -> None:
    sign_in(page, console_stack, "operator")
    expect(page).to_have_url(f"{console_stack.console}operator.html")
    validate = page.locator("#svc-validate")
    expect(page.locator("#status")).to_contain_text("All services ready")
    expect(validate).to_have_attribute("data-state", "ok")
    lag = page.locator("#lag-table tbody")
    expect(lag).to_contain_text("aggregate")
    expect(lag).to_contain_text(f"{console_stack.namespace}.dmp.submissions.received.v1")
    assert_accessible(page, axe_source)
    screenshot(page, "operator")

    console_stack.kill("validate")
    try:
        expect(validate).to_have_attribute("data-state", "failing")
        expect(validate).to_contain_text("not answering")
        expect(page.locator("#runbook-table")).to_contain_text("validate")
        expect(page.locator("#svc-ingest")).to_have_attribute("data-state", "ok")
        assert_accessible(page, axe_source)
        screenshot(page, "operator-failing")
    finally:
        console_stack.start("validate")
    expect(validate).to_have_attribute("data-state", "ok", timeout=30_000)
    expect(page.locator("#status")).to_contain_text("All services ready")


def test_the_admin_page_shows_the_audit_trail_filtered_by_action(page: Page, console_stack: ConsoleStack,
                                                                 axe_source: str) -> None:
    exported = httpx.get(f"{console_stack.url('aggregate')}/v1/views/seizures", params={"format": "csv"},
                         headers=console_stack.analyst, timeout=10)
    assert exported.status_code == 200
    sign_in(page, console_stack, "admin")
    page.get_by_role("link", name="Audit").click()
    page.get_by_label("Action").select_option("exported")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("#audit-table tbody tr")
    expect(rows.first).to_contain_text("exported")
    assert all("exported" in row for row in rows.all_inner_texts())
    assert_accessible(page, axe_source)
    screenshot(page, "audit")
