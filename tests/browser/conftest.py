"""The console in a real headless Chromium (Debian's), against the whole stack on free ports.

Every request a page makes is recorded; one addressed anywhere but this machine is refused on the
spot and fails the test, as does a Content-Security-Policy violation. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, expect, sync_playwright

from infra import browser as tools
from infra import services
from infra.proc import VAR, free_port
from shared.roles import Role
from tests.conftest import Infra, Stack, all_services

expect.set_options(timeout=15_000)  # a loaded two-core machine is slower than a browser expects
SCREENSHOTS = VAR / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class ConsoleStack(Stack):
    """The stack with its ports chosen first, so that aggregate's console knows where ingest and validate are
    and every service accepts the console's origin."""

    ports: dict[str, int] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        console = f"http://127.0.0.1:{self.ports['aggregate']}"
        return {**super().env, "DMP_CONSOLE_ORIGINS": f'["{console}"]',
                "AGGREGATE_CONSOLE_INGEST_URL": f"http://127.0.0.1:{self.ports['ingest']}",
                "AGGREGATE_CONSOLE_VALIDATE_URL": f"http://127.0.0.1:{self.ports['validate']}"}

    @property
    def console(self) -> str:
        return f"{self.url('aggregate')}/console/"

    def start(self, name: str, port: int | None = None) -> services.Service:
        return super().start(name, port or self.ports[name])


@pytest.fixture(scope="session")
def console_stack(infra: Infra) -> Iterator[ConsoleStack]:
    namespace = f"t{uuid.uuid4().hex[:10]}"
    base = VAR / "test" / "stacks" / namespace
    stack = ConsoleStack(infra, namespace, f"dmp_{namespace}", base, {},
                         ports={name: free_port() for name in services.SERVICES})
    try:
        with all_services(stack) as started:
            yield started
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def playwright(console_stack: ConsoleStack) -> Iterator[Playwright]:
    """Playwright's driver. Its sync API keeps an event loop running in this thread while it is started, so it
    starts after the stack (whose start-up runs loops of its own) and stops with each module, before the
    asynchronous tests of other folders run."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=str(tools.ensure_chromium()),
                                         args=["--no-sandbox", "--disable-dev-shm-usage"])
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def axe_source() -> str:
    return tools.ensure_axe().read_text(encoding="utf-8")


@dataclass
class Recorder:
    """Every URL the browser asked for, those refused for leaving the machine, and CSP violations."""

    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        self.requests.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob") or parts.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            self.refused.append(url)
            route.abort("blockedbyclient")

    def console(self, message: Any) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.violations.append(message.text)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def context(chromium: Browser, recorder: Recorder) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) at 1280×800 that refuses and records requests leaving the machine."""
    context = chromium.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(20_000)
    context.route("**/*", recorder.route)
    context.on("console", recorder.console)
    yield context
    context.close()
    assert recorder.requests, "the browser made no request at all: the recorder is not recording"
    assert recorder.refused == [], f"requests left the machine: {recorder.refused}"
    assert recorder.violations == [], f"Content-Security-Policy violations: {recorder.violations}"


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def sign_in(page: Page, stack: ConsoleStack, role: Role, countries: list[str] | None = None,
            name: str = "console test") -> str:
    """Make a key, sign in with it through the form; the key."""
    key = stack.key(role, countries, name)
    page.goto(stack.console)
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()
    return key


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_accessible(page: Page, axe_source: str) -> None:
    """axe-core on the page as it stands: no serious or critical violation."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source)
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    bad = [(v["id"], v["impact"], v["help"], [n["target"] for n in v["nodes"]][:5])
           for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], f"accessibility violations on {page.url}: {bad}"
