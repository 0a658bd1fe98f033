"""Screenshots of every GUI page, as docs/gui.md shows them.

Each run takes them (a page that cannot be drawn fails here); they are kept only where
``HERDSMAN_SCREENSHOTS_DIR`` points: ``scripts/gui-screenshots`` sets it to docs/images.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import cast

from playwright.sync_api import Browser
from tests.browser.conftest import OWNER, VIEWPORT, Logged, Ran, Watched, open_page
from tests.conftest import RunningServer
from tests.support.tokens import user_token


def _target(tmp_path: Path) -> Path:
    wanted = os.environ.get("HERDSMAN_SCREENSHOTS_DIR")
    target = Path(wanted) if wanted else tmp_path
    target.mkdir(parents=True, exist_ok=True)
    return target


def test_screenshots_of_every_page(
    owner_page: Watched, browser: Browser, server: RunningServer, ran: Ran, tmp_path: Path
) -> None:
    target = _target(tmp_path)
    pages = {
        "workflows": "/",
        "workflow": f"/workflows/{ran.workflow_id}",
        "tasks": f"/workflows/{ran.workflow_id}/tasks",
        "errors": f"/workflows/{ran.workflow_id}/errors",
        "task": f"/tasks/{ran.failing_id}",
        "task-waiting": f"/tasks/{ran.after_id}",
        "resources": f"/workflows/{ran.workflow_id}/resources/{{work}}",
    }
    owner_page.goto(pages["workflow"])
    work = owner_page.page.locator('#templates-table tr[data-template="work"]')
    pages["resources"] = pages["resources"].format(work=work.get_attribute("data-array-id"))
    for name, path in pages.items():
        owner_page.goto(path)
        if name == "task":
            owner_page.page.locator("#attempts-table tr.tails summary").first.click()
        shot = target / f"gui-{name}.png"
        owner_page.page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 10_000, f"{shot} is nearly empty"
    owner_page.assert_clean()

    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    try:
        page = context.new_page()
        page.goto(server.url + "/sign-in")
        page.screenshot(path=target / "gui-sign-in.png", full_page=True)
    finally:
        context.close()


def test_screenshot_of_the_log_viewer(browser: Browser, logged: Logged, tmp_path: Path) -> None:
    watched = open_page(browser, cast(RunningServer, logged), user_token(OWNER))
    try:
        watched.goto(f"/tasks/{logged.inside}")
        watched.page.locator("#attempts-table a.log-link").first.click()
        watched.page.wait_for_load_state("networkidle")
        watched.page.fill("#log-search-text", "needle")
        watched.page.click("#log-search button[type=submit]")
        watched.page.locator("#log-search-results li").first.wait_for()
        shot = _target(tmp_path) / "gui-log.png"
        watched.page.screenshot(path=shot, full_page=True)
        assert shot.stat().st_size > 10_000, f"{shot} is nearly empty"
        watched.assert_clean()
    finally:
        watched.page.context.close()
