"""Every GUI page in Chromium: it loads cleanly, filters live in the URL, htmx pages on, the
task page shows output tails, and a live page follows a status change made elsewhere."""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import Browser, expect
from tests.browser.conftest import OWNER, Ran, Watched
from tests.conftest import RunningServer
from tests.integration.test_gui_live import bound_workflow
from tests.support.tokens import user_token

from herdsman import Tool
from herdsman.core.requester import Requester

LIVE_DEADLINE_MS = 20_000


def _pages(ran: Ran) -> dict[str, tuple[str, str]]:
    """Page name -> (path, an element it must show)."""
    return {
        "workflows": ("/", f"#workflow-{ran.workflow_id}"),
        "workflow": (f"/workflows/{ran.workflow_id}", "#templates-table"),
        "tasks": (f"/workflows/{ran.workflow_id}/tasks", f"#task-{ran.failing_id}"),
        "errors": (f"/workflows/{ran.workflow_id}/errors", "main table"),
        "task": (f"/tasks/{ran.failing_id}", "#attempts-table"),
    }


@pytest.mark.parametrize("name", ["workflows", "workflow", "tasks", "errors", "task"])
def test_page_loads_without_errors(owner_page: Watched, ran: Ran, name: str) -> None:
    path, shown = _pages(ran)[name]
    owner_page.goto(path)
    expect(owner_page.page.locator(shown).first).to_be_visible()
    assert _overflow(owner_page) == 0
    owner_page.assert_clean()


def _overflow(watched: Watched) -> int:
    """How many pixels the page is wider than the window (0: no sideways scrolling)."""
    return int(
        watched.page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
    )


def test_long_names_args_and_commands_wrap_instead_of_overflowing(
    owner_page: Watched, server: RunningServer
) -> None:
    stamp = time.time_ns()
    long = "x" * 40 + "-" + "long_" * 40
    with Requester(server.url, token=user_token(OWNER), timeout=60, retries=3) as owner:
        tool = Tool(f"long-{stamp}", requester=owner)
        tool.set_default_cluster_name("multiprocess")
        template = tool.get_task_template(f"template_{long}", "echo {arg}", node_args=["arg"])
        task = template.create_task(arg=long * 3, name=f"task_{long}")
        workflow = tool.create_workflow(workflow_args=f"args-{long}-{stamp}", name=f"name-{long}")
        workflow.add_tasks([task])
        workflow_id = workflow.bind()
    for path in (
        f"/?id={workflow_id}",
        f"/workflows/{workflow_id}",
        f"/workflows/{workflow_id}/tasks",
        f"/tasks/{task.task_id}",
    ):
        owner_page.goto(path)
        wide = owner_page.page.evaluate(
            "() => [...document.querySelectorAll('main *')]"
            ".filter(e => e.getBoundingClientRect().right > innerWidth + 1)"
            ".slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)"
        )
        assert _overflow(owner_page) == 0, (path, wide)
    owner_page.assert_clean()


def test_sign_in_page_loads_and_refuses_a_wrong_token(
    browser: Browser, server: RunningServer
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: errors.append(message.text) if message.type == "error" else None,
        )
        page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
        page.goto(server.url + "/workflows/1")  # sent to sign in, and back afterwards
        expect(page).to_have_url(re.compile(r"/sign-in\?next="))
        expect(page.locator("#token")).to_be_visible()
        assert errors == []
        page.fill("#token", "not-a-token")
        page.click("#sign-in button[type=submit]")
        expect(page.locator("#sign-in-error")).to_be_visible()
    finally:
        context.close()


def test_workflow_filters_round_trip_through_the_url(owner_page: Watched, ran: Ran) -> None:
    page = owner_page.page
    owner_page.goto("/")
    page.fill("#workflow-filters input[name=tool]", ran.tool)
    ran_status = page.locator(f"#workflow-{ran.workflow_id}").get_attribute("data-status")
    assert ran_status is not None and ran_status != "G"  # the bound one is G
    page.select_option("#workflow-filters select[name=status]", [ran_status])
    page.click("#workflow-filters button[type=submit]")
    expect(page).to_have_url(re.compile(rf"tool={ran.tool}.*status={ran_status}"))
    expect(page.locator(f"#workflow-{ran.workflow_id}")).to_be_visible()
    expect(page.locator(f"#workflow-{ran.bound_workflow_id}")).to_have_count(0)
    page.reload()
    expect(page.locator("#workflow-filters input[name=tool]")).to_have_value(ran.tool)
    expect(page.locator("#workflow-filters select[name=status]")).to_have_values([ran_status])
    expect(page.locator(f"#workflow-{ran.bound_workflow_id}")).to_have_count(0)
    owner_page.assert_clean()


def test_task_filters_round_trip_through_the_url(owner_page: Watched, ran: Ran) -> None:
    page = owner_page.page
    owner_page.goto(f"/workflows/{ran.workflow_id}/tasks")
    page.select_option("#task-filters select[name=status]", ["F"])
    page.select_option("#task-filters select[name=template]", "work")
    page.click("#task-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"status=F.*template=work"))
    rows = page.locator("#task-rows tr[data-task-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-task-id", str(ran.failing_id))
    page.reload()
    expect(page.locator("#task-filters select[name=status]")).to_have_values(["F"])
    expect(page.locator("#task-filters select[name=template]")).to_have_value("work")
    expect(rows).to_have_count(1)
    owner_page.assert_clean()


def test_keyset_paging_loads_the_next_rows_through_htmx(owner_page: Watched, ran: Ran) -> None:
    page = owner_page.page
    path = f"/workflows/{ran.workflow_id}/tasks?limit=2"
    owner_page.goto(path)
    rows = page.locator("#task-rows tr[data-task-id]")
    expect(rows).to_have_count(2)
    for shown in (4, 6):
        with page.expect_response(re.compile(r"/tasks\?.*after=")) as fragment:
            page.click("#tasks-more a")
        assert fragment.value.request.headers.get("hx-request") == "true"
        expect(rows).to_have_count(shown)
    expect(page.locator("#tasks-more")).to_have_count(0)  # the last page says so
    assert page.url == owner_page.base_url + path  # rows added in place, no navigation
    ids = [int(i) for i in rows.evaluate_all("rows => rows.map(r => r.dataset.taskId)")]
    assert ids == ran.all_ids
    owner_page.assert_clean()


def test_task_page_shows_the_stored_output_tails(owner_page: Watched, ran: Ran) -> None:
    page = owner_page.page
    owner_page.goto(f"/tasks/{ran.failing_id}")
    tails = page.locator("#attempts-table tr.tails")
    expect(tails).to_have_count(2)  # two attempts, each with its output
    first = tails.first
    first.locator("summary").click()
    expect(first.locator("pre.stderr")).to_contain_text("oops-from-stderr")
    expect(first.locator("pre.stdout")).to_contain_text("<b>not markup</b>")  # text, not HTML
    owner_page.assert_clean()


def _set_done(server: RunningServer, workflow_id: int, task_id: int) -> None:
    """Mark a task done through the JSON API, as its owner would."""
    answer = httpx.post(
        f"{server.url}/api/v1/workflows/{workflow_id}/task_updates",
        json={"task_ids": [task_id], "status": "D"},
        headers={"authorization": f"Bearer {user_token(OWNER)}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed_task_ids"] == [task_id]


def test_open_workflow_page_shows_a_status_change_made_through_the_api(
    owner_page: Watched, server: RunningServer
) -> None:
    workflow_id, task_ids = bound_workflow(server, "browser-workflow")
    page = owner_page.page
    owner_page.goto(f"/workflows/{workflow_id}")
    done = page.locator('#workflow-header [data-bucket="done"]')
    expect(done).to_have_count(0)
    _set_done(server, workflow_id, task_ids[0])
    expect(done).to_have_attribute("data-count", "1", timeout=LIVE_DEADLINE_MS)
    row = page.locator('#templates-table tr[data-template="step"] td[data-bucket="done"]')
    expect(row).to_have_text("1", timeout=LIVE_DEADLINE_MS)
    # The timeline, empty before the change, is drawn by the same live update.
    line = page.locator('#timeline polyline[data-series="done"]')
    expect(line).to_have_attribute("data-last", "1", timeout=LIVE_DEADLINE_MS)
    owner_page.assert_clean()


def test_workflow_page_draws_the_timeline(owner_page: Watched, ran: Ran) -> None:
    owner_page.goto(f"/workflows/{ran.workflow_id}")
    page = owner_page.page
    expect(page.locator('#timeline svg[data-plot="states"]')).to_be_visible()
    expect(
        page.locator('#timeline svg[data-plot="running"] polyline[data-series="running"]')
    ).to_have_count(1)
    expect(page.locator('#timeline polyline[data-series="done"]')).not_to_have_attribute(
        "data-last", "0"
    )
    assert _overflow(owner_page) == 0
    owner_page.assert_clean()


def test_open_workflows_and_task_pages_show_a_status_change(
    owner_page: Watched, server: RunningServer
) -> None:
    workflow_id, task_ids = bound_workflow(server, "browser-rows")
    page = owner_page.page
    owner_page.goto(f"/?id={workflow_id}")
    done = page.locator(f'#workflow-{workflow_id} [data-bucket="done"]')
    expect(done).to_have_count(0)
    task_page = page.context.new_page()
    task_page.goto(f"{server.url}/tasks/{task_ids[0]}")
    task_page.wait_for_load_state("networkidle")
    expect(task_page.locator("#task-title")).to_have_attribute("data-status", "G")
    _set_done(server, workflow_id, task_ids[0])
    expect(done).to_have_attribute("data-count", "1", timeout=LIVE_DEADLINE_MS)
    expect(task_page.locator("#task-title")).to_have_attribute(
        "data-status", "D", timeout=LIVE_DEADLINE_MS
    )
    owner_page.assert_clean()


def test_hidden_tab_closes_its_stream_and_reopens_it_when_shown(
    owner_page: Watched, ran: Ran
) -> None:
    page = owner_page.page
    owner_page.goto(f"/tasks/{ran.after_id}")
    expect(page.locator("#live")).to_have_attribute("sse-connect", f"/tasks/{ran.after_id}/live")
    hide = (
        "hidden => { Object.defineProperty(document, 'hidden', {value: hidden, configurable:"
        " true}); document.dispatchEvent(new Event('visibilitychange')); }"
    )
    with page.expect_event("requestfailed", lambda r: "/live" in r.url):  # the stream ends
        page.evaluate(hide, True)
    expect(page.locator("#live")).not_to_have_attribute("sse-connect", re.compile(".*"))
    with page.expect_request(lambda r: r.url.endswith(f"/tasks/{ran.after_id}/live")):
        page.evaluate(hide, False)
    expect(page.locator("#live")).to_have_attribute("sse-connect", f"/tasks/{ran.after_id}/live")
    owner_page.assert_clean()
