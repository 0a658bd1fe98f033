"""Browser tests: the GUI in Debian's Chromium, driven by Playwright, against a real server.

Chromium is the system's (``/usr/bin/chromium``, installed by ``.ci/run``), launched by path:
Playwright never downloads a browser here. Without it the tests skip, saying why, unless
``HERDSMAN_REQUIRE_BROWSER=1`` (set by CI), when they fail instead.

The server and its data are those of tests/integration/test_gui_pages.py (a workflow that
ran for real, one only bound). Every page is opened signed in through the real sign-in
form; each test's page records console errors, uncaught exceptions and failed requests, and
:meth:`Watched.assert_clean` says which there were.
"""

from __future__ import annotations

import getpass
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.conftest import RunningServer
from tests.integration.test_gui_pages import Logged, Ran, logged, ran
from tests.support.tokens import user_token

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request

__all__ = ["OWNER", "Logged", "Ran", "Watched", "logged", "ran"]

OWNER = getpass.getuser()
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1366, "height": 860}
TIMEOUT_MS = 15_000


def _chromium() -> Path:
    """Chromium's path, or a skip (a failure where a browser is required) saying why not."""
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "playwright is not installed (pip install -e '.[test]')"
    if missing is None and not (CHROMIUM.exists() or shutil.which("chromium")):
        missing = f"{CHROMIUM} is not installed (apt-get install chromium)"
    if missing is None:
        return CHROMIUM if CHROMIUM.exists() else Path(shutil.which("chromium") or CHROMIUM)
    if os.environ.get("HERDSMAN_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests need Chromium, and HERDSMAN_REQUIRE_BROWSER=1: {missing}")
    pytest.skip(f"browser tests need Chromium: {missing}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module. Not for the session: Playwright's sync API keeps an
    event loop running in the main thread while it is started, and tests of other modules
    that run on the same worker afterwards call asyncio.run, which refuses to run then."""
    path = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(path))
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watched:
    """A signed-in page and what went wrong in it so far."""

    page: Page
    base_url: str
    problems: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        answer = self.page.goto(self.base_url + path)
        assert answer is not None and answer.ok, (path, answer and answer.status)
        self.page.wait_for_load_state("networkidle")  # htmx and live streams are up

    def assert_clean(self) -> None:
        assert self.problems == [], "the page reported problems"


def _failed(request: Request) -> str | None:
    failure = request.failure or ""
    # A live stream ends when the page goes away or the tab is hidden: that is no failure.
    if "ERR_ABORTED" in failure and "/live" in request.url:
        return None
    return f"request failed: {request.method} {request.url}: {failure}"


def open_page(browser: Browser, server: RunningServer, token: str) -> Watched:
    """A fresh browser context signed in through the sign-in form with ``token``."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    watched = Watched(page=page, base_url=server.url)
    page.on(
        "console",
        lambda message: (
            watched.problems.append(f"console {message.type}: {message.text}")
            if message.type in ("error", "warning")
            else None
        ),
    )
    page.on("pageerror", lambda error: watched.problems.append(f"uncaught: {error}"))
    page.on(
        "requestfailed",
        lambda request: watched.problems.append(problem) if (problem := _failed(request)) else None,
    )
    page.on(
        "response",
        lambda response: (
            watched.problems.append(f"HTTP {response.status}: {response.url}")
            if response.status >= 400
            else None
        ),
    )
    page.goto(server.url + "/sign-in")
    page.fill("#token", token)
    page.click("#sign-in button[type=submit]")
    page.wait_for_url(server.url + "/")
    return watched


@pytest.fixture
def owner_page(browser: Browser, server: RunningServer, ran: Ran) -> Iterator[Watched]:
    """The owner of ``ran``'s workflows, signed in, on the workflows page."""
    watched = open_page(browser, server, user_token(OWNER))
    try:
        yield watched
    finally:
        watched.page.context.close()
