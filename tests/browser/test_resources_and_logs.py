"""The resources page and the log viewer in Chromium: they load cleanly, the viewer shows the
end of a real attempt's output, loads earlier parts and finds a line through the server."""

from __future__ import annotations

import os
import time
from typing import cast

from playwright.sync_api import Browser, expect
from tests.browser.conftest import OWNER, Logged, Ran, Watched, open_page
from tests.conftest import RunningServer
from tests.integration.test_gui_pages import LONG_LINES
from tests.support.tokens import admin_token, user_token

import herdsman
from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import swarm as sschemas
from herdsman.core.schemas import worker as w


def test_resources_page_draws_both_histograms_and_the_yaml(owner_page: Watched, ran: Ran) -> None:
    page = owner_page.page
    owner_page.goto(f"/workflows/{ran.workflow_id}")
    page.locator('#templates-table tr[data-template="prep"] a.resources-link').click()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#resources-title")).to_contain_text("prep")
    expect(page.locator("#runtime-histogram svg rect.bin.used")).not_to_have_count(0)
    expect(page.locator("#resources-yaml")).to_contain_text("task_template_resources")
    page.select_option("select[name=runtime]", "p95")
    page.click("#suggestion-form button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert "runtime=p95" in page.url
    owner_page.assert_clean()


def open_viewer(browser: Browser, logged: Logged) -> Watched:
    """The log viewer of the task whose output lies in the allowed directory."""
    watched = open_page(browser, cast(RunningServer, logged), user_token(OWNER))
    watched.goto(f"/tasks/{logged.inside}")
    watched.page.locator("#attempts-table a.log-link").first.click()
    watched.page.wait_for_load_state("networkidle")
    return watched


def test_log_viewer_shows_the_end_loads_earlier_parts_and_searches(
    browser: Browser, logged: Logged
) -> None:
    watched = open_viewer(browser, logged)
    page = watched.page
    try:
        text = page.locator("#log-text")
        expect(text).to_contain_text("last line of stdout")
        expect(text).not_to_contain_text("line 0 of the output")
        first = int(page.locator("#log-viewer").get_attribute("data-start") or 0)
        page.click("#log-earlier")
        expect(page.locator("#log-range")).not_to_contain_text(f"bytes {first} to")
        page.fill("#log-search-text", "NEEDLE")
        page.click("#log-search button[type=submit]")
        matches = page.locator("#log-search-results li")
        expect(matches).to_have_count(1)
        expect(matches.first).to_have_attribute("data-line", str(LONG_LINES + 1))
        expect(matches.first).to_contain_text("needle-in-the-haystack")
        with page.expect_download() as download:
            page.click("#log-download")
        assert download.value.suggested_filename.startswith("writer")
        watched.assert_clean()
    finally:
        page.context.close()


def test_log_viewer_without_an_allowed_directory_shows_the_stored_tail(
    owner_page: Watched, server: RunningServer, logged: Logged
) -> None:
    del server
    page = owner_page.page
    owner_page.goto(f"/tasks/{logged.inside}")
    page.locator("#attempts-table a.log-link").first.click()
    page.wait_for_load_state("networkidle")
    expect(page.locator("#log-file-refused")).to_contain_text("only the output tails")
    expect(page.locator("#log-tail")).to_contain_text("last line of stdout")
    owner_page.assert_clean()


def test_log_viewer_follows_a_running_attempts_file(
    browser: Browser, server: RunningServer, logged: Logged
) -> None:
    """An attempt that reported running: the server records the files its worker writes, and
    the open viewer adds what is written to them while the tab is visible."""
    folder = logged.root / "live"
    folder.mkdir(exist_ok=True)
    with Requester(server.url, token=admin_token(), timeout=60, retries=3) as admin:
        stamp = time.time_ns()
        tool = Tool(f"gui-live-log-{stamp}", requester=admin)
        tool.set_default_cluster_name("multiprocess")
        template = tool.get_task_template("follow", "echo {n}", node_args=["n"])
        task = template.create_task(n=1, compute_resources={"stdout": str(folder)})
        workflow = tool.create_workflow(workflow_args=f"gui-live-log-{stamp}")
        workflow.add_tasks([task])
        run_id, instance_id = claim_only_task(admin, workflow.bind(), task.task_id or 0)
        answer = admin.post(
            f"/task_instances/{instance_id}/running",
            w.InstanceRunningIn(
                host="node1",
                pid=os.getpid(),
                distributor_id=f"77{stamp % 1000}",
                herdsman_version=herdsman.__version__,
                next_report_seconds=600,
            ),
            w.InstanceRunningOut,
        )
        assert answer.status == "R", run_id
    output = folder / f"{task.name}.o77{stamp % 1000}"
    output.write_text("first line\n")
    watched = open_page(browser, cast(RunningServer, logged), user_token(OWNER))
    try:
        watched.goto(f"/tasks/{task.task_id}/attempts/{instance_id}/stdout")
        page = watched.page
        expect(page.locator("#log-text")).to_contain_text("first line")
        expect(page.locator("#log-live")).to_be_visible()
        with output.open("a") as stream:
            stream.write("written while the page was open\n")
        expect(page.locator("#log-text")).to_contain_text("written while the page was open")
        watched.assert_clean()
    finally:
        watched.page.context.close()


def claim_only_task(requester: Requester, workflow_id: int, task_id: int) -> tuple[int, int]:
    """Start a run of the workflow and claim its one task's instance, as a distributor would;
    (run id, instance id)."""
    run = requester.post(
        f"/workflows/{workflow_id}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut
    )
    for status in "IOR":
        requester.put(
            f"/workflow_runs/{run.workflow_run_id}/status",
            sschemas.RunStatusIn(status=status),
            sschemas.RunStatusOut,
        )
    requester.post(
        f"/workflow_runs/{run.workflow_run_id}/queue",
        sschemas.QueueTasksIn(task_ids=[task_id]),
        sschemas.TaskStatusesOut,
    )
    claimed = requester.post(
        f"/workflow_runs/{run.workflow_run_id}/claim", dschemas.ClaimIn(), dschemas.ClaimedOut
    )
    (instance,) = claimed.instances
    return run.workflow_run_id, instance.task_instance_id
