"""An analyst's map, trends and fact sheet show what the API answers for the same filters."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ConsoleStack, assert_accessible, screenshot, sign_in
from tests.conftest import eventually

YEAR = 2023
SEIZURES = [  # (country, place, lat, lon, quantity kg, cases, persons arrested, route)
    ("TJK", "Panj", 37.24, 69.1, 12.5, 1, 2, "northern"),
    ("TJK", "Dushanbe", 38.56, 68.78, 4.0, 2, 1, "northern"),
    ("TJK", "Khorog", 37.49, 71.55, 0.75, 1, 0, "northern"),
    ("UZB", "Termez", 37.22, 67.28, 30.0, 1, 3, "southern"),
]


def seizure(country: str, place: str, lat: float, lon: float, quantity: float, cases: int, arrested: int,
            route: str, month: int) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "type": "seizure", "schema_version": 2, "data": {
        "seized_on": f"{YEAR}-{month:02d}-15", "country": country, "place": place, "drug": "opium",
        "quantity": quantity, "unit": "kg", "cases": cases, "persons_arrested": arrested, "transport": "land",
        "route": route, "coordinates": {"lat": lat, "lon": lon}}}


def api(stack: ConsoleStack, path: str, **params: Any) -> Any:
    response = httpx.get(f"{stack.url('aggregate')}{path}", params=params, headers=stack.analyst, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture(scope="module")
def seeded(console_stack: ConsoleStack) -> list[dict[str, Any]]:
    bodies = [seizure(*row, month=n + 1) for n, row in enumerate(SEIZURES)]
    response = httpx.post(f"{console_stack.url('ingest')}/v1/submissions/batch", json=bodies,
                          headers=console_stack.officer, timeout=30)
    assert response.status_code == 207, response.text
    eventually(lambda: len(api(console_stack, "/v1/views/map", drug="opium", **{"from": f"{YEAR}-01-01",
                                                                                 "to": f"{YEAR}-12-31"})["features"])
               == len(bodies), what="the seeded seizures on the map")
    return bodies


def test_the_map_shows_as_many_points_as_the_map_api_returns(page: Page, console_stack: ConsoleStack,
                                                            seeded: list[dict[str, Any]], axe_source: str) -> None:
    sign_in(page, console_stack, "analyst")
    page.goto(f"{console_stack.console}map.html")
    page.get_by_label("Drug").fill("opium")
    page.get_by_label("Year").fill(str(YEAR))
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#status")).to_contain_text(f"{len(seeded)} seizures with coordinates")
    features = api(console_stack, "/v1/views/map", drug="opium", **{"from": f"{YEAR}-01-01", "to": f"{YEAR}-12-31"})
    expect(page.locator("#map circle.seizure-point")).to_have_count(len(features["features"]))
    assert len(features["features"]) == len(seeded)
    shaded = page.locator("#map path.country[data-iso3='TJK']").get_attribute("fill")
    unshaded = page.locator("#map path.country[data-iso3='FRA']").get_attribute("fill")
    assert shaded != unshaded  # Tajikistan seized opium this year, France did not
    page.get_by_label("Route").select_option("southern")
    page.get_by_role("button", name="Show").click()
    southern = api(console_stack, "/v1/views/map", drug="opium", route="southern",
                   **{"from": f"{YEAR}-01-01", "to": f"{YEAR}-12-31"})["features"]
    assert len(southern) == sum(row[7] == "southern" for row in SEIZURES) == 1
    expect(page.locator("#map circle.seizure-point")).to_have_count(len(southern))
    expect(page.locator("#map-points tbody tr")).to_contain_text(["Termez"])
    page.get_by_label("Route").select_option("")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#map circle.seizure-point")).to_have_count(len(seeded))
    assert_accessible(page, axe_source)
    screenshot(page, "map")


def test_a_fact_sheet_figure_equals_the_api_figure(page: Page, console_stack: ConsoleStack,
                                                   seeded: list[dict[str, Any]], axe_source: str) -> None:
    sign_in(page, console_stack, "analyst")
    page.goto(f"{console_stack.console}factsheet.html?country=TJK&year={YEAR}")
    cases = page.locator("#fig-seizure-cases")
    expected_cases = sum(row[5] for row in SEIZURES if row[0] == "TJK")
    expected_arrested = sum(row[6] for row in SEIZURES if row[0] == "TJK")
    sheet = api(console_stack, "/v1/views/fact-sheet", country="TJK", year=YEAR)
    assert sum(r["cases"] for r in sheet["seizures"]) == expected_cases
    expect(cases).to_have_attribute("data-value", str(expected_cases))
    expect(page.locator("#fig-persons-arrested")).to_have_attribute("data-value", str(expected_arrested))
    quantity = page.locator("#sheet-seizures td[data-field='quantity']").inner_text()
    assert float(quantity) == sum(r["quantity"] for r in sheet["seizures"]) == sum(
        row[4] for row in SEIZURES if row[0] == "TJK")
    csv = page.get_by_role("link", name="seizures (CSV)")
    with page.expect_download() as download:
        csv.click()
    assert "TJK" in download.value.path().read_text()
    assert_accessible(page, axe_source)
    screenshot(page, "fact-sheet")


def test_trends_chart_the_route_series(page: Page, console_stack: ConsoleStack, seeded: list[dict[str, Any]],
                                      axe_source: str) -> None:
    sign_in(page, console_stack, "analyst")
    page.goto(f"{console_stack.console}trends.html")
    page.get_by_label("Drug").fill("opium")
    page.get_by_role("button", name="Show").click()
    rows = api(console_stack, "/v1/views/routes", drug="opium")["items"]
    expect(page.locator("#routes-table tbody tr")).to_have_count(len(rows))
    assert len(rows) == len(SEIZURES)  # one month each
    expect(page.locator("#routes figcaption > span")).to_have_text(["northern", "southern"])
    assert_accessible(page, axe_source)
    screenshot(page, "trends")
