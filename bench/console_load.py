"""How long the console's pages take to load in Debian's headless Chromium, against the scale benchmark's stack.

One browser profile per role signs in once through the console's form, at 1280×800. Each timing opens a page
afresh and reads, from the browser's own Performance API once the network has been idle, when the last
response the page asked for (its data included) ended, counted from the start of the navigation: the page's
own script draws what arrived in the same task. The operator page is not timed: what it shows does not grow
with stored submissions.

Playwright's synchronous API runs its own event loop, so the browser lives in one thread of its own
(`ConsolePages`), and the benchmark's loop awaits each step there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from infra.browser import ensure_chromium

PAGES: dict[str, tuple[str, str]] = {
    "console map": ("analyst", "map.html"),
    "console trends": ("analyst", "trends.html"),
    "console fact sheet": ("analyst", "factsheet.html?country=AFG&year=2020"),
    "console my submissions": ("officer", "mine.html"),
    "console submit": ("officer", "submit.html"),
    "console audit": ("admin", "audit.html"),
}
"""Name → (role that opens it, path under /console/)."""
LAST_RESPONSE = """() => Math.max(performance.getEntriesByType('navigation')[0].responseEnd,
    ...performance.getEntriesByType('resource').map((entry) => entry.responseEnd))"""

T = TypeVar("T")


class ConsolePages:
    """Signed-in browser tabs, one per role, in a thread of their own."""

    def __init__(self, aggregate_url: str, keys: Mapping[str, str]) -> None:
        self.console = f"{aggregate_url}/console/"
        self.keys = keys
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
        self._playwright: Any = None
        self._browser: Any = None
        self._tabs: dict[str, Any] = {}

    async def _run(self, step: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, step)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        from playwright.sync_api import sync_playwright  # only this stage of the benchmark drives a browser

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=str(ensure_chromium()),
                                                         args=["--no-sandbox", "--disable-dev-shm-usage"])
        for role in sorted({role for role, _ in PAGES.values()}):
            tab = self._browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
            tab.set_default_timeout(60_000)
            tab.goto(self.console)
            tab.get_by_label("API key").fill(self.keys[role])
            tab.get_by_role("button", name="Sign in").click()
            tab.get_by_role("button", name="Sign out").wait_for()
            self._tabs[role] = tab

    async def load_ms(self, name: str) -> float:
        """Open page `name` afresh: milliseconds from navigating to it to the end of its last response."""
        role, path = PAGES[name]

        def load() -> float:
            tab = self._tabs[role]
            tab.goto(self.console + path, wait_until="networkidle")
            return float(tab.evaluate(LAST_RESPONSE))

        return await self._run(load)

    async def close(self) -> None:
        def close() -> None:
            if self._browser is not None:
                self._browser.close()
            if self._playwright is not None:
                self._playwright.stop()

        try:
            await self._run(close)
        finally:
            self._thread.shutdown(wait=True)
