"""Signing in to the console with a key."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import ConsoleStack, assert_accessible, screenshot, sign_in


def test_signing_in_keeps_the_key_out_of_the_browser_and_offers_the_roles_pages(
        page: Page, context: BrowserContext, console_stack: ConsoleStack, axe_source: str) -> None:
    page.goto(console_stack.console)
    assert_accessible(page, axe_source)
    screenshot(page, "sign-in")
    key = sign_in(page, console_stack, "analyst", name="Research team")
    expect(page.get_by_role("navigation", name="Pages").get_by_role("link")).to_have_text(
        ["Map", "Trends", "Fact sheet", "Operator"])
    cookies = context.cookies()
    assert [(c["name"], c["httpOnly"], c["sameSite"]) for c in cookies] == [("dmp_session", True, "Strict")]
    assert key not in cookies[0]["value"] and key not in page.url
    stored = page.evaluate("() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert key not in stored


def test_a_wrong_key_is_refused_beside_the_field(page: Page, console_stack: ConsoleStack, axe_source: str) -> None:
    page.goto(console_stack.console)
    page.get_by_label("API key").fill("dmp_000000000000_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#key-reason")).to_contain_text("not known")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, axe_source)


def test_the_console_is_used_by_keyboard_alone(page: Page, console_stack: ConsoleStack) -> None:
    key = console_stack.key("officer", ["AFG"])
    page.goto(console_stack.console)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.id") == "key"
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{console_stack.console}submit.html")
    page.get_by_label("Place").wait_for()
    page.locator("body").focus()
    reached = []
    for _ in range(6):  # from the top: the brand, then the page links
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.textContent"))
        if reached[-1] == "My submissions":
            break
    assert reached[-1] == "My submissions", reached
    assert page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle") != "none"  # focus shows
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{console_stack.console}mine.html")
