"""The browser: Debian's headless Chromium, driven by Playwright, against the pages the local stack
serves. Every page a test opens records its console errors and is saved as a screenshot. A plugin
of tests/conftest.py, as tests/live_stack.py is (a conftest here would shadow the end-to-end
tests' `conftest` module when both directories are collected)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, ConsoleMessage, Page, sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("PULSE_CHROMIUM", "/usr/bin/chromium"))
# Where the screenshots go; `make screenshots` copies them into docs/images/.
ARTIFACTS = Path(os.environ.get("PULSE_TEST_ARTIFACTS", REPO / "test-results")) / "browser"
# Chromium reaches for its vendor's services at start-up; this machine's network refuses them.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}


@dataclass
class Tab:
    """A page and what went wrong on it."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def open(self, url: str) -> Page:
        response = self.page.goto(url, wait_until="load")
        assert response is not None, f"{url}: no response"
        assert response.ok, f"{url}: HTTP {response.status}"
        return self.page

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=path)
        return path


# Per module: a live Playwright keeps its event loop marked running, which would break the async
# tests collected after this directory.
@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"no Chromium at {CHROMIUM}: `make chromium` installs Debian's package")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"),  # a new, empty profile
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def tab(browser: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Tab]:
    """A new page; on the way out its screenshot is saved under the test's name."""
    tab = Tab(browser.new_page())

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            tab.errors.append(f"console: {message.text} ({message.location.get('url')})")

    tab.page.on("console", on_console)
    tab.page.on("pageerror", lambda error: tab.errors.append(f"uncaught: {error}"))
    try:
        yield tab
    finally:
        tab.screenshot(request.node.name.removeprefix("test_"))
        tab.page.close()
