"""What a key may not see stays out of every page; no page asks anything of another machine."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Browser, Page, expect

from shared.roles import Role
from tests.browser.conftest import LOCAL_HOSTS, ConsoleStack, Recorder, assert_accessible, screenshot, sign_in
from tests.conftest import eventually
from tests.keys import bearer

PAGES = ["submit.html", "mine.html", "map.html", "trends.html", "factsheet.html", "operator.html", "audit.html"]


def test_a_scoped_officer_never_sees_another_countrys_data(page: Page, console_stack: ConsoleStack,
                                                            axe_source: str) -> None:
    place = f"Osh market {uuid.uuid4().hex[:6]}"
    other: dict[str, Any] = {"id": str(uuid.uuid4()), "type": "seizure", "schema_version": 2, "data": {
        "seized_on": "2025-06-01", "country": "KGZ", "place": place, "drug": "heroin", "quantity": 2, "unit": "kg",
        "transport": "land", "route": "northern", "coordinates": {"lat": 40.53, "lon": 72.8}}}
    response = httpx.post(f"{console_stack.url('ingest')}/v1/submissions", json=other,
                          headers=bearer(console_stack.key("officer", ["KGZ"])), timeout=15)
    assert response.status_code == 202, response.text
    eventually(lambda: httpx.get(f"{console_stack.url('aggregate')}/v1/submissions/{other['id']}",
                                 headers=console_stack.analyst, timeout=5).json().get("status") == "validated",
               what="the other officer's seizure validated")

    sign_in(page, console_stack, "officer", ["KAZ"])
    country = page.locator("#f-country")
    expect(country.locator("option")).to_have_text(["KAZ"])  # the form offers only the key's countries
    for name in PAGES:
        page.goto(f"{console_stack.console}{name}")
        page.locator("#top .who").wait_for()
        page.wait_for_load_state("networkidle")
        body = page.locator("body").inner_text()
        assert place not in body and other["id"] not in body and "KGZ" not in body, name
        if name not in ("submit.html", "mine.html"):
            expect(page.get_by_role("alert")).to_contain_text("This page is for")
    page.goto(f"{console_stack.console}submit.html?amend={other['id']}")
    page.locator("#f-place").wait_for()
    assert page.locator("#f-place").input_value() == "" and place not in page.locator("body").inner_text()
    refused = page.evaluate("async () => (await fetch('/v1/views/map', {credentials: 'include'})).status")
    assert refused == 403  # the session gives the officer no more than its key
    page.goto(f"{console_stack.console}map.html")
    assert_accessible(page, axe_source)


def test_no_page_asks_another_machine_for_anything(chromium: Browser, console_stack: ConsoleStack,
                                                   axe_source: str) -> None:
    viewports: list[tuple[Role, int, int]] = [("analyst", 1280, 800), ("officer", 390, 844), ("admin", 390, 844)]
    for role, width, height in viewports:
        recorder = Recorder()
        context = chromium.new_context(viewport={"width": width, "height": height})
        context.route("**/*", recorder.route)
        context.on("console", recorder.console)
        try:
            page = context.new_page()
            sign_in(page, console_stack, role)
            for name in PAGES:
                page.goto(f"{console_stack.console}{name}")
                page.locator("#top .who").wait_for()
                page.wait_for_load_state("networkidle")
                assert_accessible(page, axe_source)
                if width < 500 and name in ("submit.html", "operator.html"):
                    screenshot(page, f"phone-{name.removesuffix('.html')}")
        finally:
            context.close()
        hosts = {urlsplit(url).hostname for url in recorder.requests if not url.startswith("data:")}
        assert hosts <= LOCAL_HOSTS and recorder.requests, hosts
        assert recorder.refused == [] and recorder.violations == []
        ports = {urlsplit(url).port for url in recorder.requests if not url.startswith("data:")}
        assert console_stack.ports["aggregate"] in ports
