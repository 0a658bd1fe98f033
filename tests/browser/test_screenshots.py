"""Screenshots of every GUI page, as docs/gui.md shows them.

Each run takes them (a page that cannot be drawn fails here); they are kept only where
``HERDSMAN_SCREENSHOTS_DIR`` points: ``scripts/gui-screenshots`` sets it to docs/images.
"""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Browser
from tests.browser.conftest import VIEWPORT, Ran, Watched
from tests.conftest import RunningServer


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
    }
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
