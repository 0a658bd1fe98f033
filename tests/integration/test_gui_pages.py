"""The web GUI's pages against a real server process, after a real run.

A small workflow runs on the multiprocess cluster (tasks done, one failing for good, one
behind it never started) and another is only bound, so the pages show real attempts, errors
and output. The tests read the pages' stable ids and ``data-`` attributes, as browser tests
will, and check content, filters round-tripping through the URL, paging, CSV, the sign-in
flow, redirects and refusals (a second server on the same database keeps reading to owners).
"""

from __future__ import annotations

import contextlib
import csv
import getpass
import io
import json
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import create_engine, text
from tests.conftest import ProcessRegistry, RunningServer, start_server_process
from tests.integration.test_gui_steering import api
from tests.support.tokens import admin_token, run_token, user_token

import herdsman
from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas import distributor as ds
from herdsman.core.schemas import swarm as ss
from herdsman.core.schemas import worker as ws
from herdsman.core.schemas.queries import StatisticsOut
from herdsman.core.suggestions import suggested_runtime
from herdsman.server.api.app import create_app
from herdsman.server.gui.routes import PAGE_RULES
from herdsman.server.gui.session import COOKIE

pytestmark = pytest.mark.integration

OWNER = getpass.getuser()
INTRUDER = "gui-intruder"


@dataclass(frozen=True)
class Ran:
    """A workflow that ran (E): prep (2 done) -> work (2 done, 1 fatal) -> after (1 blocked),
    and one that is only bound."""

    workflow_id: int
    tool: str
    prep_ids: list[int]
    work_ids: list[int]
    failing_id: int
    after_id: int
    run_output: str
    bound_workflow_id: int
    bound_first_id: int
    bound_second_id: int

    @property
    def all_ids(self) -> list[int]:
        return sorted([*self.prep_ids, *self.work_ids, self.after_id])


@pytest.fixture(scope="module")
def ran(server: RunningServer) -> Ran:
    stamp = time.time_ns()
    with Requester(server.url, token=user_token(OWNER), timeout=60, retries=3) as owner:
        tool = Tool(f"gui-{stamp}", requester=owner)
        tool.set_default_cluster_name("multiprocess")
        prep = tool.get_task_template("prep", "echo prep {n}", node_args=["n"])
        work = tool.get_task_template(
            "work", "{command} # {label}", node_args=["label"], op_args=["command"]
        )
        after = tool.get_task_template("after", "true {n}", node_args=["n"])
        preps = [prep.create_task(n=i) for i in range(2)]
        works = [
            work.create_task(label=f"ok{i}", command="echo fine", upstream_tasks=preps)
            for i in range(2)
        ]
        failing = work.create_task(
            label="bad",
            command="echo '<b>not markup</b>'; echo oops-from-stderr >&2; exit 7",
            max_attempts=2,
            upstream_tasks=preps,
        )
        blocked = after.create_task(n=1, upstream_tasks=[*works, failing])
        workflow = tool.create_workflow(workflow_args=f"gui-ran-{stamp}", name=f"gui-ran-{stamp}")
        workflow.add_tasks([*preps, *works, failing, blocked])
        captured = io.StringIO()
        with contextlib.redirect_stderr(captured):
            assert workflow.run(progress=False) == "E"
        bound = tool.create_workflow(workflow_args=f"gui-bound-{stamp}", name=f"gui-bound-{stamp}")
        first = prep.create_task(n=100)
        second = after.create_task(n=100, upstream_tasks=[first])
        bound.add_tasks([first, second])
        bound_id = bound.bind()
    assert workflow.workflow_id is not None
    ids = [t.task_id for t in (*preps, *works, failing, blocked, first, second)]
    assert all(i is not None for i in ids)
    return Ran(
        workflow_id=workflow.workflow_id,
        tool=tool.name,
        prep_ids=[t.task_id for t in preps if t.task_id is not None],
        work_ids=sorted(t.task_id for t in (*works, failing) if t.task_id is not None),
        failing_id=failing.task_id or 0,
        after_id=blocked.task_id or 0,
        run_output=captured.getvalue(),
        bound_workflow_id=bound_id,
        bound_first_id=first.task_id or 0,
        bound_second_id=second.task_id or 0,
    )


def browser(url: str, token: str | None) -> httpx.Client:
    """A client that holds the sign-in cookie the way a browser would, or none."""
    client = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
    if token is not None:
        client.cookies.set(COOKIE, token)
    return client


@pytest.fixture
def owner(server: RunningServer) -> Iterator[httpx.Client]:
    with browser(server.url, user_token(OWNER)) as client:
        yield client


def page(client: httpx.Client, path: str, status: int = 200) -> str:
    answer = client.get(path)
    assert answer.status_code == status, (path, answer.status_code, answer.text[-2000:])
    return answer.text


def rows(html: str, table_id: str) -> list[str]:
    """The rows of the table with ``table_id``, as HTML."""
    match = re.search(rf'<table id="{table_id}".*?</table>', html, re.S)
    assert match is not None, f"no table {table_id}"
    return re.findall(r"<tr\b[^>]*data-[^>]*>.*?</tr>", match.group(0), re.S)


def attribute_values(html: str, name: str) -> list[str]:
    return re.findall(rf'{name}="([^"]*)"', html)


def task_ids(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr id="task-(\d+)"', html)]


# --- signing in -------------------------------------------------------------------------------


def gui_routes() -> list[APIRoute]:
    app = create_app("sqlite://", key=b"k" * 32, upgrade_schema=False)
    found = []
    for included in app.routes:
        router = getattr(included, "original_router", None)
        for route in router.routes if router is not None else [included]:
            if isinstance(route, APIRoute) and route.endpoint.__module__.startswith(
                "herdsman.server.gui"
            ):
                found.append(route)
    return found


def concrete(path: str, ran: Ran) -> str:
    return (
        path.replace("{workflow_id}", str(ran.workflow_id))
        .replace("{task_id}", str(ran.after_id))
        .replace("{direction}", "upstream")
        .replace("{array_id}", "1")
        .replace("{attempt_id}", "1")
        .replace("{stream}", "stdout")
    )


def test_every_page_without_a_cookie_redirects_to_sign_in(server: RunningServer, ran: Ran) -> None:
    pages = [
        r
        for r in gui_routes()
        if r.path not in ("/sign-in", "/sign-out")
        and r.endpoint.__module__ != "herdsman.server.gui.steering"
    ]
    assert {r.path for r in pages} == set(PAGE_RULES), "a GUI page without an access rule"
    with browser(server.url, None) as anonymous:
        for route in pages:
            path = concrete(route.path, ran) + "?status=D"
            answer = anonymous.get(path)
            assert answer.status_code == 303, (path, answer.status_code)
            target = urlsplit(answer.headers["location"])
            assert target.path == "/sign-in"
            assert parse_qs(target.query)["next"] == [path]
        # A fragment asked for by htmx: the whole page goes to sign in.
        fragment = anonymous.get(
            concrete("/tasks/{task_id}/upstream", ran), headers={"HX-Request": "true"}
        )
        assert fragment.status_code == 401 and fragment.headers["HX-Redirect"].startswith(
            "/sign-in"
        )
        # Static files and the sign-in form need no sign-in.
        assert anonymous.get("/static/vendor/htmx/htmx.min.js").status_code == 200
        assert anonymous.get("/static/herdsman.css").status_code == 200
        assert anonymous.get("/sign-in").status_code == 200


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_clears_it(
    server: RunningServer, ran: Ran
) -> None:
    with browser(server.url, None) as client:
        form = page(client, f"/sign-in?next=/workflows/{ran.workflow_id}")
        assert "herdsman login" in form and "herdsman server token issue" in form
        assert f'name="next" value="/workflows/{ran.workflow_id}"' in form

        answer = client.post(
            "/sign-in", data={"token": user_token(OWNER), "next": f"/workflows/{ran.workflow_id}"}
        )
        assert answer.status_code == 303
        assert answer.headers["location"] == f"/workflows/{ran.workflow_id}"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert "Secure" not in cookie  # plain http here; https requests get Secure
        signed_in = page(client, f"/workflows/{ran.workflow_id}")
        assert f'data-user="{OWNER}"' in signed_in

        out = client.post("/sign-out")
        assert out.status_code == 303 and out.headers["location"] == "/sign-in"
        assert (
            f'{COOKIE}=""' in out.headers["set-cookie"] or "Max-Age=0" in out.headers["set-cookie"]
        )
        assert client.get("/").status_code == 303


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
def test_sign_in_never_sends_anyone_to_another_site(server: RunningServer, target: str) -> None:
    with browser(server.url, None) as client:
        answer = client.post("/sign-in", data={"token": user_token(OWNER), "next": target})
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        assert 'name="next" value="/"' in page(client, "/sign-in?next=" + target)


def test_bad_and_run_tokens_do_not_sign_in(server: RunningServer, ran: Ran) -> None:
    with browser(server.url, None) as client:
        for token, words in [
            ("not-a-token", "token"),
            (run_token(1, ran.workflow_id), "workflow run"),
        ]:
            answer = client.post("/sign-in", data={"token": token, "next": "/"})
            assert answer.status_code == 401, token
            assert 'id="sign-in-error"' in answer.text and words in answer.text
            assert "set-cookie" not in answer.headers
    # A run's token in the cookie is no sign-in either.
    with browser(server.url, run_token(1, ran.workflow_id)) as client:
        assert client.get(f"/workflows/{ran.workflow_id}").status_code == 303


def test_a_form_from_another_site_is_refused(server: RunningServer) -> None:
    with browser(server.url, None) as client:
        answer = client.post(
            "/sign-in",
            data={"token": user_token(OWNER), "next": "/"},
            headers={"Origin": "https://evil.example"},
        )
        assert answer.status_code == 403 and "set-cookie" not in answer.headers


# --- access ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def owners_only_server(
    server: RunningServer, processes: ProcessRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A second server on the same database where only owners (and admins) may read."""
    process, info = start_server_process(
        processes,
        database_url=server.database_url,
        state_dir=tmp_path_factory.mktemp("owners-only"),
        extra_env={"HERDSMAN_AUTH__READERS": "owners", "HERDSMAN_REAPER__ENABLED": "false"},
    )
    try:
        yield info.url
    finally:
        processes.stop(process)


def workflow_pages(ran: Ran) -> list[str]:
    w, t = ran.workflow_id, ran.after_id
    return [
        f"/workflows/{w}",
        f"/workflows/{w}/tasks",
        f"/workflows/{w}/tasks.csv",
        f"/workflows/{w}/errors",
        f"/tasks/{t}",
        f"/tasks/{t}/upstream",
        f"/tasks/{t}/downstream",
    ]


def test_where_only_owners_read_another_user_is_refused_every_page(
    owners_only_server: str, ran: Ran
) -> None:
    with browser(owners_only_server, user_token(INTRUDER)) as intruder:
        for path in workflow_pages(ran):
            answer = intruder.get(path)
            assert answer.status_code == 403, (path, answer.status_code)
            assert f"you are {INTRUDER}" in answer.text
        # The listing shows only their own workflows, whatever the filter asks for.
        listing = page(intruder, f"/?user={OWNER}&tool={ran.tool}")
        assert rows(listing, "workflows-table") == []
    for token in (user_token(OWNER), admin_token("someone-else")):
        with browser(owners_only_server, token) as reader:
            for path in workflow_pages(ran):
                assert reader.get(path).status_code == 200, path
            assert f'id="workflow-{ran.workflow_id}"' in page(reader, f"/?user={OWNER}")


def test_any_signed_in_user_reads_by_default(server: RunningServer, ran: Ran) -> None:
    with browser(server.url, user_token(INTRUDER)) as other:
        for path in workflow_pages(ran):
            assert other.get(path).status_code == 200, path
        # "mine" by default: not the owner's workflows, until the user filter is cleared.
        assert f'id="workflow-{ran.workflow_id}"' not in page(other, "/")
        assert f'id="workflow-{ran.workflow_id}"' in page(other, f"/?user=&tool={ran.tool}")


def test_missing_things_are_404_pages_and_bad_input_422(owner: httpx.Client, ran: Ran) -> None:
    for path in ("/workflows/987654321", "/tasks/987654321", "/workflows/987654321/errors"):
        answer = owner.get(path)
        assert answer.status_code == 404, path
        assert "does not exist" in answer.text and "<html" in answer.text
    wrong_sort = owner.get(f"/workflows/{ran.workflow_id}/tasks?sort=colour")
    assert wrong_sort.status_code == 422 and "is not one of id, runtime" in wrong_sort.text
    assert owner.get("/?submitted_from=yesterday").status_code == 422
    bad_cursor = owner.get(f"/workflows/{ran.workflow_id}/tasks?sort=runtime&after=soon:1")
    assert bad_cursor.status_code == 422 and "start again from the first page" in bad_cursor.text


# --- pages -------------------------------------------------------------------------------------


def test_run_prints_the_workflow_page(server: RunningServer, ran: Ran) -> None:
    assert f"{server.url}/workflows/{ran.workflow_id}" in ran.run_output


def test_workflows_page_lists_filters_and_pages(owner: httpx.Client, ran: Ran) -> None:
    listing = page(owner, f"/?tool={ran.tool}")
    found = rows(listing, "workflows-table")
    assert [int(i) for i in attribute_values("".join(found), "data-workflow-id")] == sorted(
        [ran.workflow_id, ran.bound_workflow_id], reverse=True
    )
    ran_row = next(r for r in found if f'data-workflow-id="{ran.workflow_id}"' in r)
    assert 'data-status="F"' in ran_row and "gui-ran-" in ran_row and ran.tool in ran_row
    counts = dict(re.findall(r'data-bucket="(\w+)" data-count="(\d+)"', ran_row))
    assert counts == {"done": "4", "fatal": "1", "pending": "1"}
    # Filters are kept in the URL and shown back in the form.
    by_name = page(owner, f"/?tool={ran.tool}&name=GUI-BOUND")
    assert attribute_values("".join(rows(by_name, "workflows-table")), "data-workflow-id") == [
        str(ran.bound_workflow_id)
    ]
    assert 'name="name" value="GUI-BOUND"' in by_name
    by_status = page(owner, f"/?tool={ran.tool}&status=F")
    assert attribute_values("".join(rows(by_status, "workflows-table")), "data-workflow-id") == [
        str(ran.workflow_id)
    ]
    assert '<option value="F" selected>' in by_status
    by_id = page(owner, f"/?id={ran.workflow_id}")
    assert len(rows(by_id, "workflows-table")) == 1
    future = page(owner, f"/?tool={ran.tool}&submitted_from=2999-01-01")
    assert rows(future, "workflows-table") == []
    # Paging: one a page, the next page's link keeps the filters.
    first = page(owner, f"/?tool={ran.tool}&limit=1")
    assert attribute_values("".join(rows(first, "workflows-table")), "data-workflow-id") == [
        str(ran.bound_workflow_id)
    ]
    next_url = re.search(r'<a href="([^"]+)" id="next-page"', first)
    assert next_url is not None
    second = page(owner, next_url.group(1).replace("&amp;", "&"))
    assert attribute_values("".join(rows(second, "workflows-table")), "data-workflow-id") == [
        str(ran.workflow_id)
    ]
    assert 'id="next-page"' not in second


def test_workflow_page_shows_header_health_templates_dag_and_history(
    owner: httpx.Client, ran: Ran
) -> None:
    html = page(owner, f"/workflows/{ran.workflow_id}")
    assert "gui-ran-" in html and ran.tool in html and OWNER in html
    assert re.search(r'id="health" class="banner warning" data-level="warning"', html)
    assert "not running" in html
    templates = {
        re.search(r'data-template="([^"]+)"', r).group(1): r  # type: ignore[union-attr]
        for r in rows(html, "templates-table")
    }
    assert list(templates) == ["prep", "work", "after"]
    work = dict(re.findall(r'class="num c-(\w+)" data-bucket="\w+">(\d+)<', templates["work"]))
    assert work == {
        "pending": "0",
        "queued": "0",
        "running": "0",
        "done": "2",
        "error": "0",
        "fatal": "1",
    }
    assert ">4<" in templates["work"]  # attempts: 1 + 1 + 2
    # The template DAG: nodes by template, edges summed by template.
    nodes = dict(
        re.findall(
            r'class="dag-node" data-array-id="\d+" data-template="(\w+)" data-tasks="(\d+)"', html
        )
    )
    assert nodes == {"prep": "2", "work": "3", "after": "1"}
    edges = re.findall(r'data-from="(\d+)" data-to="(\d+)" data-edges="(\d+)"', html)
    assert sorted(int(e[2]) for e in edges) == [3, 6]  # prep->work 2x3, work->after 3
    runs = rows(html, "runs-table")
    assert len(runs) == 1 and 'data-status="E"' in runs[0]
    history = rows(html, "history-table")
    assert any("POST /api/v1/workflows/" in r and "/runs" in r for r in history)

    never = page(owner, f"/workflows/{ran.bound_workflow_id}")
    assert 'data-level="warning"' in never and "never run" in never


def test_usage_totals_add_up_every_measured_attempt(
    server: RunningServer, owner: httpx.Client, ran: Ran
) -> None:
    html = page(owner, f"/workflows/{ran.workflow_id}")
    assert f'hx-get="/workflows/{ran.workflow_id}/usage-totals"' in html
    totals = api(server, "GET", f"/workflows/{ran.workflow_id}/usage_totals")
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as connection:
            count, cpu, memory_used = connection.execute(
                text(
                    "SELECT COUNT(*), SUM(ti.cpu_time), SUM(ti.wall_time * ti.max_rss) "
                    "FROM task_instance ti JOIN workflow_run r ON r.id = ti.workflow_run_id "
                    "WHERE r.workflow_id = :w AND ti.wall_time IS NOT NULL"
                ),
                {"w": ran.workflow_id},
            ).one()
    finally:
        engine.dispose()
    assert totals["attempts"] == count > 0
    assert totals["core_hours_used"] == pytest.approx(float(cpu) / 3600)
    assert totals["memory_gib_hours_used"] == pytest.approx(float(memory_used) / 1024**3 / 3600)
    fragment = page(owner, f"/workflows/{ran.workflow_id}/usage-totals")
    assert f'id="usage-totals" class="grid" data-attempts="{count}"' in fragment
    assert "Core-hours" in fragment and "Memory GiB-hours" in fragment
    page(owner, "/workflows/999999/usage-totals", status=404)


def test_tasks_page_filters_sorts_and_pages(owner: httpx.Client, ran: Ran) -> None:
    base = f"/workflows/{ran.workflow_id}/tasks"
    html = page(owner, base)
    assert task_ids(html) == ran.all_ids
    assert 'id="tasks-table"' in html
    assert task_ids(page(owner, base + "?status=F")) == [ran.failing_id]
    assert task_ids(page(owner, base + "?status=D&status=F")) == sorted(
        [*ran.prep_ids, *ran.work_ids]
    )
    by_template = page(owner, base + "?template=work")
    assert task_ids(by_template) == ran.work_ids
    assert '<option value="work" selected>' in by_template
    assert task_ids(page(owner, base + "?name=BAD")) == [ran.failing_id]
    assert task_ids(page(owner, base + "?attempts=2")) == [ran.failing_id]
    by_attempts = task_ids(page(owner, base + "?sort=attempts"))
    assert by_attempts[0] == ran.failing_id and ran.after_id == by_attempts[-1]
    by_runtime = task_ids(page(owner, base + "?sort=runtime"))
    assert sorted(by_runtime) == ran.all_ids and by_runtime[-1] == ran.after_id
    failing_row = next(
        r for r in rows(html, "tasks-table") if f'data-task-id="{ran.failing_id}"' in r
    )
    assert 'data-status="F"' in failing_row and "2/2" in failing_row

    # Keyset paging, two a page, for every sort: the pages hold every task once.
    for sort in ("id", "attempts", "runtime", "memory"):
        seen: list[int] = []
        url: str | None = f"{base}?sort={sort}&limit=2"
        first = True
        while url is not None:
            answer = owner.get(url, headers={} if first else {"HX-Request": "true"})
            assert answer.status_code == 200, answer.text[-1000:]
            if not first:
                assert "<html" not in answer.text  # htmx gets the rows alone
            seen.extend(task_ids(answer.text))
            found = re.search(r'id="next-page" rel="next" hx-get="([^"]+)"', answer.text)
            url = found.group(1).replace("&amp;", "&") if found else None
            first = False
        assert sorted(seen) == ran.all_ids and len(seen) == len(ran.all_ids), sort


def test_tasks_csv_holds_every_matching_task(owner: httpx.Client, ran: Ran) -> None:
    html = page(owner, f"/workflows/{ran.workflow_id}/tasks?template=work&sort=attempts")
    link = re.search(r'id="tasks-csv" href="([^"]+)"', html)
    assert link is not None
    answer = owner.get(link.group(1).replace("&amp;", "&"))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert int(table[0]["id"]) == ran.failing_id
    assert sorted(int(row["id"]) for row in table) == ran.work_ids
    failing = next(row for row in table if int(row["id"]) == ran.failing_id)
    assert (failing["status"], failing["status_name"], failing["attempts"]) == (
        "F",
        "error fatal",
        "2",
    )
    assert failing["template"] == "work"
    everything = owner.get(f"/workflows/{ran.workflow_id}/tasks.csv")
    assert len(list(csv.DictReader(io.StringIO(everything.text)))) == len(ran.all_ids)


def test_errors_page_groups_errors_and_links_to_tasks(owner: httpx.Client, ran: Ran) -> None:
    html = page(owner, f"/workflows/{ran.workflow_id}/errors")
    groups = re.findall(r'<section class="error-group".*?</section>', html, re.S)
    assert len(groups) == 1
    group = groups[0]
    assert 'data-errors="2" data-tasks="1"' in group
    assert "oops-from-stderr" in group
    assert f'data-task-id="{ran.failing_id}"' in group
    assert "&lt;b&gt;not markup&lt;/b&gt;" in group or "<b>not markup</b>" not in group
    signature = re.search(r'data-signature="([^"]+)"', group)
    assert signature is not None
    link = re.search(r'href="(/workflows/\d+/tasks\?signature=[^"]+)"', group)
    assert link is not None
    assert task_ids(page(owner, link.group(1).replace("&amp;", "&"))) == [ran.failing_id]
    by_template = rows(html, "errors-by-template")
    assert len(by_template) == 1 and 'data-template="work"' in by_template[0]
    assert (
        len(
            re.findall(
                r'class="error-group"',
                page(owner, f"/workflows/{ran.workflow_id}/errors?template=work"),
            )
        )
        == 1
    )
    assert 'class="error-group"' not in page(
        owner, f"/workflows/{ran.workflow_id}/errors?template=prep"
    )


def test_task_page_shows_attempts_neighbours_and_why_it_is_not_running(
    owner: httpx.Client, ran: Ran
) -> None:
    failing = page(owner, f"/tasks/{ran.failing_id}")
    attempts = rows(failing, "attempts-table")
    main_rows = [r for r in attempts if 'id="attempt-' in r]
    assert len(main_rows) == 2
    assert all('data-status="E"' in r or 'data-status="F"' in r for r in main_rows)
    assert all(re.search(r'<td class="num">7</td>', r) for r in main_rows)
    assert "oops-from-stderr" in failing
    assert "&lt;b&gt;not markup&lt;/b&gt;" in failing and "<b>not markup</b>" not in failing
    assert "failed for good after 2 of 2 attempts" in failing
    upstream = rows(failing, "upstream-table")
    assert (
        sorted(int(i) for i in attribute_values("".join(upstream), "data-task-id")) == ran.prep_ids
    )
    downstream = rows(failing, "downstream-table")
    assert attribute_values("".join(downstream), "data-task-id") == [str(ran.after_id)]

    blocked = page(owner, f"/tasks/{ran.after_id}")
    assert 'id="why-not-running"' in blocked
    assert "1 upstream task is not done" in blocked
    blocking = rows(blocked, "blocking-upstream")
    assert attribute_values("".join(blocking), "data-task-id") == [str(ran.failing_id)]
    assert "not running" in blocked  # the run ended

    never = page(owner, f"/tasks/{ran.bound_second_id}")
    assert "the workflow has never run" in never and "1 upstream task is not done" in never

    # Neighbours page by htmx, one at a time.
    seen: list[int] = []
    url: str | None = f"/tasks/{ran.work_ids[0]}/upstream?limit=1"
    while url is not None:
        fragment = page(owner, url)
        assert "<html" not in fragment
        seen.extend(int(i) for i in re.findall(r'<tr data-task-id="(\d+)"', fragment))
        found = re.search(r'hx-get="([^"]+)"', fragment)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert seen == ran.prep_ids


# --- resources of a template ------------------------------------------------------------------


def array_ids(html: str) -> dict[str, int]:
    """Template name -> array id, from the workflow page's template table."""
    found = re.findall(r'data-template="(\w+)" data-array-id="(\d+)"', html)
    return {name: int(array_id) for name, array_id in found}


def test_resources_page_agrees_with_the_cli_figures(
    server: RunningServer, owner: httpx.Client, ran: Ran
) -> None:
    overview = page(owner, f"/workflows/{ran.workflow_id}")
    arrays = array_ids(overview)
    assert f'href="/workflows/{ran.workflow_id}/resources/{arrays["work"]}"' in overview
    html = page(owner, f"/workflows/{ran.workflow_id}/resources/{arrays['work']}?headroom=50")
    assert 'data-template="work"' in html
    facts = re.search(r'<dl id="resources-facts".*?</dl>', html, re.S)
    assert facts is not None and 'data-value="2"' in facts.group(0)  # the two done attempts
    assert re.search(r'id="killed-memory" data-value="0"', html)
    # Histograms: counted on the server; each series holds every done attempt once.
    for figure in ("runtime-histogram",):
        svg = re.search(rf'<figure id="{figure}".*?</figure>', html, re.S)
        assert svg is not None, figure
        used = [int(c) for c in re.findall(r'data-series="used" data-count="(\d+)"', svg[0])]
        assert sum(used) == 2
    # The suggestion is the CLI's: the statistic of GET /resource_usage plus the headroom.
    usage = httpx.get(
        server.url + "/api/v1/resource_usage",
        params={"task_template": "work", "workflow_id": ran.workflow_id},
        headers={"authorization": f"Bearer {user_token(OWNER)}"},
    ).json()
    (entry,) = usage["templates"]
    expected = suggested_runtime(
        StatisticsOut.model_validate(entry["runtime"]), "max", headroom=0.5
    )
    assert re.search(rf'data-resource="runtime".*?data-seconds="{expected}"', html, re.S)
    assert 'id="resources-yaml"' in html and "task_template_resources" in html
    assert f"runtime: {expected}" in html
    # Bad choices are refused; another workflow's array is not found.
    page(owner, f"/workflows/{ran.workflow_id}/resources/{arrays['work']}?memory=p50", 422)
    page(owner, f"/workflows/{ran.bound_workflow_id}/resources/{arrays['work']}", 404)


# --- the log viewer ---------------------------------------------------------------------------

LONG_LINES = 20_000  # ~ 600 KB of stdout: several 64 KB parts


@dataclass(frozen=True)
class Logged:
    """A run whose tasks wrote output files: one inside the allowed directory, the others
    where the viewer must not read (``..`` out of it, a symlink out of it, elsewhere), and a
    second server on the same database allowed to read that directory only."""

    url: str
    workflow_id: int
    inside: int
    dotdot: int
    symlink: int
    elsewhere: int
    secret: Path
    root: Path


@pytest.fixture(scope="module")
def logged(
    server: RunningServer, processes: ProcessRegistry, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Logged]:
    base = tmp_path_factory.mktemp("gui-logs")
    root, outside = base / "allowed", base / "outside"
    (root / "out").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    secret = outside / "secret.txt"
    secret.write_text("not for the gui\n")
    stamp = time.time_ns()
    script = base / "write_output.py"
    script.write_text(
        "import sys\n"
        f"for i in range({LONG_LINES}):\n"
        "    print(f'line {i} of the output')\n"
        "print('needle-in-the-haystack')\n"
        "print('last line of stdout')\n"
        "print('oops-on-stderr', file=sys.stderr)\n"
    )
    command = f"{sys.executable} {script} {{n}}"
    with Requester(server.url, token=user_token(OWNER), timeout=60, retries=3) as owner:
        tool = Tool(f"gui-logs-{stamp}", requester=owner)
        tool.set_default_cluster_name("sequential")
        writer = tool.get_task_template("writer", command, node_args=["n"])
        tasks = {
            where: writer.create_task(
                n=where, compute_resources={"stdout": str(directory), "stderr": str(directory)}
            )
            for where, directory in (
                ("inside", root / "out"),
                ("dotdot", root / "out" / ".." / ".." / "outside"),
                ("symlink", root / "escape"),
                ("elsewhere", outside),
            )
        }
        workflow = tool.create_workflow(workflow_args=f"gui-logs-{stamp}")
        workflow.add_tasks(list(tasks.values()))
        assert workflow.run(progress=False) == "D"
    process, info = start_server_process(
        processes,
        database_url=server.database_url,
        state_dir=base / "server",
        extra_env={
            "HERDSMAN_GUI__LOG_ROOTS": json.dumps([str(root)]),
            "HERDSMAN_REAPER__ENABLED": "false",
        },
    )
    try:
        ids = {where: task.task_id or 0 for where, task in tasks.items()}
        yield Logged(info.url, workflow.workflow_id or 0, secret=secret, root=root, **ids)
    finally:
        processes.stop(process)


def attempt_of(client: httpx.Client, task_id: int) -> int:
    html = page(client, f"/tasks/{task_id}")
    found = re.search(rf'href="/tasks/{task_id}/attempts/(\d+)/stdout"', html)
    assert found is not None, "no log viewer link on the task page"
    return int(found.group(1))


def test_log_viewer_shows_the_end_earlier_parts_search_and_download(logged: Logged) -> None:
    with browser(logged.url, user_token(OWNER)) as owner:
        attempt = attempt_of(owner, logged.inside)
        base = f"/tasks/{logged.inside}/attempts/{attempt}/stdout"
        html = page(owner, base)
        assert 'id="log-viewer"' in html and "last line of stdout" in html
        size = int(re.search(r'data-size="(\d+)"', html)[1])  # type: ignore[index]
        start = int(re.search(r'data-start="(\d+)"', html)[1])  # type: ignore[index]
        assert size > 4 * 64 * 1024 and size - start <= 64 * 1024
        assert 'id="log-tail"' in html  # the stored tail, too
        # Earlier parts join up to the whole file, each starting at a line.
        parts, before = [], start
        while before > 0:
            piece = owner.get(base + "/bytes", params={"before": before}).json()
            assert piece["end"] == before and before - piece["start"] <= 64 * 1024
            assert piece["start"] == 0 or piece["text"].startswith("line ")
            parts.append(piece["text"])
            before = piece["start"]
        last = owner.get(base + "/bytes").json()
        downloaded = owner.get(base + "/download")
        assert downloaded.status_code == 200
        assert "attachment" in downloaded.headers["content-disposition"]
        assert "".join(reversed(parts)) + last["text"] == downloaded.text
        assert len(downloaded.content) == size
        # Nothing after the end; the search reads the whole file on the server.
        assert owner.get(base + "/bytes", params={"after": size}).json()["text"] == ""
        found = owner.get(base + "/search", params={"q": "NEEDLE-in"}).json()
        assert found["complete"] and [m["line"] for m in found["matches"]] == [LONG_LINES + 1]
        assert found["matches"][0]["text"] == "needle-in-the-haystack"
        offset = found["matches"][0]["offset"]
        assert downloaded.content[offset:].startswith(b"needle-in-the-haystack")
        stderr = page(owner, f"/tasks/{logged.inside}/attempts/{attempt}/stderr")
        assert "oops-on-stderr" in stderr
        assert owner.get(base + "/search", params={"q": ""}).status_code == 422
        assert owner.get(base + "/search", params={"q": "x" * 201}).status_code == 422


def test_log_viewer_refuses_files_outside_the_allowed_directories(
    server: RunningServer, logged: Logged
) -> None:
    with browser(logged.url, user_token(OWNER)) as owner:
        for task_id in (logged.dotdot, logged.symlink, logged.elsewhere):
            attempt = attempt_of(owner, task_id)
            base = f"/tasks/{task_id}/attempts/{attempt}/stdout"
            html = page(owner, base)
            assert 'id="log-file-refused"' in html and "gui.log_roots" in html
            assert 'id="log-viewer"' not in html
            assert "last line of stdout" in html  # the stored tail is still shown
            for suffix in ("/bytes", "/search?q=line", "/download"):
                answer = owner.get(base + suffix)
                assert answer.status_code == 403, (task_id, suffix, answer.status_code)
                assert "line 1 of the output" not in answer.text
        # An attempt of another task (here, one whose file is refused) is not found through a
        # task the caller may read.
        inside = attempt_of(owner, logged.inside)
        page(owner, f"/tasks/{logged.dotdot}/attempts/{inside}/stdout", 404)
        page(owner, f"/tasks/{logged.inside}/attempts/{inside}/secret", 422)
    # The server without allowed directories shows only the stored tails.
    with browser(server.url, user_token(OWNER)) as owner:
        attempt = attempt_of(owner, logged.inside)
        html = page(owner, f"/tasks/{logged.inside}/attempts/{attempt}/stdout")
        assert 'id="log-file-refused"' in html and "only the output tails" in html
        answer = owner.get(f"/tasks/{logged.inside}/attempts/{attempt}/stdout/download")
        assert answer.status_code == 403


def test_log_viewer_follows_the_task_pages_access_rules(
    owners_only_server: str, logged: Logged
) -> None:
    with browser(logged.url, user_token(OWNER)) as owner:
        attempt = attempt_of(owner, logged.inside)
    paths = [
        f"/tasks/{logged.inside}/attempts/{attempt}/stdout{suffix}"
        for suffix in ("", "/bytes", "/search?q=line", "/download")
    ]
    with browser(owners_only_server, user_token(INTRUDER)) as intruder:
        for path in paths:
            assert intruder.get(path).status_code == 403, path
    with browser(owners_only_server, admin_token("someone-else")) as admin:
        for path in paths:
            assert admin.get(path).status_code in (200, 403), path  # 403: no log roots there
            assert admin.get(path).status_code != 404


def test_resources_page_counts_kills_waste_and_requests(server: RunningServer) -> None:
    """Attempts reported by hand: one done using half of what it asked, one killed for memory,
    one for time; the page's counts, shares, waste and bins follow from them."""
    stamp = time.time_ns()
    with Requester(server.url, token=admin_token(), timeout=60, retries=3) as admin:
        tool = Tool(f"gui-kills-{stamp}", requester=admin)
        tool.set_default_cluster_name("multiprocess")
        greedy = tool.get_task_template("greedy", "echo {n}", node_args=["n"])
        tasks = greedy.create_tasks(n=range(3), compute_resources={"memory": "1G", "runtime": 60})
        workflow = tool.create_workflow(workflow_args=f"gui-kills-{stamp}")
        workflow.add_tasks(tasks)
        workflow_id = workflow.bind()
        run = admin.post(f"/workflows/{workflow_id}/runs", ss.WorkflowRunIn(), ss.WorkflowRunOut)
        for status in "IOR":
            admin.put(
                f"/workflow_runs/{run.workflow_run_id}/status",
                ss.RunStatusIn(status=status),
                ss.RunStatusOut,
            )
        admin.post(
            f"/workflow_runs/{run.workflow_run_id}/queue",
            ss.QueueTasksIn(task_ids=[t.task_id for t in tasks if t.task_id]),
            ss.TaskStatusesOut,
        )
        claimed = admin.post(
            f"/workflow_runs/{run.workflow_run_id}/claim", ds.ClaimIn(), ds.ClaimedOut
        )
        done, oom, late = sorted(i.task_instance_id for i in claimed.instances)
        for instance_id in (done, oom, late):
            admin.post(
                f"/task_instances/{instance_id}/running",
                ws.InstanceRunningIn(
                    host="node1",
                    pid=1,
                    herdsman_version=herdsman.__version__,
                    next_report_seconds=600,
                ),
                ws.InstanceRunningOut,
            )
        half = ws.Usage(wall_time=30.0, max_rss=512 * 1024**2)
        admin.post(
            f"/task_instances/{done}/done", ws.InstanceDoneIn(usage=half), ws.InstanceStatusOut
        )
        for instance_id, message in ((oom, "out of memory"), (late, "runtime limit reached")):
            admin.post(
                f"/task_instances/{instance_id}/error",
                ws.InstanceErrorIn(status="Z", message=message),
                ws.InstanceStatusOut,
            )
    with browser(server.url, admin_token()) as reader:
        (array_id,) = array_ids(page(reader, f"/workflows/{workflow_id}")).values()
        html = page(reader, f"/workflows/{workflow_id}/resources/{array_id}")
    assert re.search(r'id="killed-memory" data-value="1"', html)
    assert re.search(r'id="killed-time" data-value="1"', html)
    assert re.search(r'id="used-memory">50 %', html) and re.search(r'id="used-runtime">50 %', html)
    assert re.search(r'id="wasted">0.00417 GiB·hours', html)
    memory = re.search(r'<figure id="memory-histogram".*?</figure>', html, re.S)
    assert memory is not None
    bars = re.findall(r'data-series="(\w+)" data-count="(\d+)" x="([\d.]+)"', memory[0])
    assert [(series, count) for series, count, _ in bars] == [("used", "1"), ("requested", "1")]
    # 1 GiB asked lands in the last of 20 bins, 512 MiB used in the 11th (bin 10 from 0).
    assert float(bars[1][2]) > float(bars[0][2])
