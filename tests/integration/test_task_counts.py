"""The task counts kept on write equal a count over the task table at every step.

A real workflow is bound, run with retries and failures on the sequential cluster, changed by
a status change by filter from the GUI, and resumed; after each step the kept counts (tasks,
attempts and retries per array and status) are compared with a ``GROUP BY`` over its tasks
(those a resume removed are out of the workflow, and out of both), and the JSON routes' counts
with both. The history of changes adds up too: for every status, what entered minus what left
equals the tasks that have it, less those bound in it (a removed task left its status).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from tests.conftest import RunningServer
from tests.integration.test_gui_steering import OWNER, api, preview, signed_in
from tests.support.tokens import user_token

from herdsman import Tool
from herdsman.client.workflow import Workflow
from herdsman.core.requester import Requester
from herdsman.server.database.engine import Database, make_database

pytestmark = pytest.mark.integration

# Fails on its first attempt (leaving a marker behind), succeeds on the next.
_FLAKY = (
    f'{sys.executable} -c \'import os, sys; p = "{{marker}}"; '
    'sys.exit(0) if os.path.exists(p) else (open(p, "w").close(), sys.exit(3))\''
)

_KEPT = (
    "SELECT array_id, status, num, attempts, retries FROM task_status_count "
    "WHERE workflow_id = :w AND (num <> 0 OR attempts <> 0 OR retries <> 0)"
)
_COUNTED = (
    "SELECT array_id, status, COUNT(*), SUM(num_attempts), "
    "SUM(CASE WHEN num_attempts > 1 THEN num_attempts - 1 ELSE 0 END) FROM task "
    "WHERE workflow_id = :w AND removed_date IS NULL GROUP BY array_id, status"
)
_REMOVED = "SELECT COUNT(*) FROM task WHERE workflow_id = :w AND removed_date IS NOT NULL"
_HISTORY = (
    "SELECT status, SUM(entered) - SUM(exited) FROM task_status_history "
    "WHERE workflow_id = :w GROUP BY status"
)


@pytest.fixture
def database(server: RunningServer) -> Iterator[Database]:
    found = make_database(server.database_url)
    try:
        yield found
    finally:
        found.dispose()


def _rows(database: Database, query: str, workflow_id: int) -> set[tuple[int, ...]]:
    with database.write_engine.connect() as connection:
        return {
            tuple(int(value) if not isinstance(value, str) else value for value in row)
            for row in connection.execute(text(query), {"w": workflow_id})
        }


def assert_counts_agree(server: RunningServer, database: Database, workflow_id: int) -> None:
    kept = _rows(database, _KEPT, workflow_id)
    counted = _rows(database, _COUNTED, workflow_id)
    assert kept == counted
    by_status: dict[str, int] = {}
    for _, status, number, _, _ in counted:
        by_status[status] = by_status.get(status, 0) + number
    detail = api(server, "GET", f"/workflows/{workflow_id}")["task_status_counts"]
    assert {s: n for s, n in detail.items() if n} == by_status
    summary = api(server, "GET", f"/workflow_summaries?workflow_id={workflow_id}")
    assert summary["workflows"][0]["task_status_counts"] == by_status
    retries = sum(row[4] for row in counted)
    assert summary["workflows"][0]["retries"] == retries
    # Every task was bound registering (G): the history's net changes make up the rest. A
    # removed task left the status it had (and so, in all, left G).
    net = {status: int(n) for status, n in _rows(database, _HISTORY, workflow_id) if n}
    ((removed,),) = _rows(database, _REMOVED, workflow_id)
    tasks = sum(by_status.values()) + removed
    expected = {s: n for s, n in by_status.items() if s != "G"}
    if by_status.get("G", 0) != tasks:
        expected["G"] = by_status.get("G", 0) - tasks
    assert net == {s: n for s, n in expected.items() if n}


def test_counts_follow_bind_run_filter_change_and_resume(
    server: RunningServer, database: Database, tmp_path: Path
) -> None:
    stamp = time.time_ns()
    with Requester(server.url, token=user_token(OWNER), timeout=120, retries=3) as requester:
        tool = Tool(f"counts-{stamp}", requester=requester)
        tool.set_default_cluster_name("sequential")
        good = tool.get_task_template("good", "echo {n}", node_args=["n"])
        flaky = tool.get_task_template("flaky", _FLAKY, node_args=["marker"])
        bad = tool.get_task_template("bad", "exit {n}", node_args=["n"])
        goods = good.create_tasks(n=range(4))
        flakies = [
            flaky.create_task(marker=str(tmp_path / f"flaky-{i}"), max_attempts=3) for i in range(3)
        ]
        bads = [bad.create_task(n=n, max_attempts=2) for n in (5, 6)]
        after_bad = good.create_task(n=99, upstream_tasks=bads)
        workflow = tool.create_workflow(workflow_args=f"counts-{stamp}")
        workflow.add_tasks([*goods, *flakies, *bads, after_bad])
        workflow_id = workflow.bind()
        assert_counts_agree(server, database, workflow_id)

        assert workflow.run(progress=False) == "E"
        assert_counts_agree(server, database, workflow_id)
        detail = api(server, "GET", f"/workflows/{workflow_id}")["task_status_counts"]
        assert {s: n for s, n in detail.items() if n} == {"D": 7, "F": 2, "G": 1}

        # The owner resets the failed tasks from the GUI, then resumes.
        with signed_in(server, user_token(OWNER)) as owner:
            reset = preview(owner, workflow_id, "status=F&target=G")
            assert reset["changing"] == 2  # the failed two (the task after them is G)
            answer = owner.post(f"/workflows/{workflow_id}/status-change", data=reset["fields"])
            assert answer.status_code == 303, answer.text[-1000:]
        assert_counts_agree(server, database, workflow_id)

        assert workflow.run(resume=True, progress=False) == "E"
        assert_counts_agree(server, database, workflow_id)


def test_a_task_update_of_tasks_with_spent_attempts_keeps_attempts_right(
    server: RunningServer, database: Database
) -> None:
    """A reset gives attempts back even to tasks already registering: counts follow."""
    stamp = time.time_ns()
    with Requester(server.url, token=user_token(OWNER), timeout=120, retries=3) as requester:
        tool = Tool(f"counts-update-{stamp}", requester=requester)
        tool.set_default_cluster_name("sequential")
        bad = tool.get_task_template("bad", "exit {n}", node_args=["n"])
        tasks = [bad.create_task(n=n, max_attempts=2) for n in (1, 2)]
        workflow = tool.create_workflow(workflow_args=f"counts-update-{stamp}")
        workflow.add_tasks(tasks)
        assert workflow.run(progress=False) == "E"
        workflow_id = workflow.workflow_id
        assert workflow_id is not None
        assert_counts_agree(server, database, workflow_id)
        api(server, "POST", f"/workflows/{workflow_id}/reset", {"partial": False})
        assert_counts_agree(server, database, workflow_id)
        ids = [task.task_id for task in tasks]
        api(
            server,
            "POST",
            f"/workflows/{workflow_id}/task_updates",
            {"task_ids": ids, "status": "D"},
        )
        assert_counts_agree(server, database, workflow_id)


def test_counts_of_workflow_summaries_need_no_task_rows(
    server: RunningServer, database: Database
) -> None:
    """The counts come from the kept rows: changing one (as no real write would) shows."""
    stamp = time.time_ns()
    with Requester(server.url, token=user_token(OWNER), timeout=120, retries=3) as requester:
        tool = Tool(f"counts-read-{stamp}", requester=requester)
        tool.set_default_cluster_name("dummy")
        tpl = tool.get_task_template("t", "echo {n}", node_args=["n"])
        workflow = tool.create_workflow(workflow_args=f"counts-read-{stamp}")
        workflow.add_tasks(tpl.create_tasks(n=range(5)))
        workflow_id = workflow.bind()
    with database.write_engine.begin() as connection:
        connection.execute(
            text("UPDATE task_status_count SET num = 1234 WHERE workflow_id = :w"),
            {"w": workflow_id},
        )
    detail = api(server, "GET", f"/workflows/{workflow_id}")["task_status_counts"]
    assert detail == {"G": 1234}
    assert httpx.get(server.url + "/api/v1/health", timeout=10).status_code == 200


def test_counts_follow_a_resume_that_changes_a_template_and_adds_tasks(
    server: RunningServer, database: Database
) -> None:
    """A resume moves tasks to the new template version's array, reruns changed done tasks
    and their downstream, and binds new tasks; the counts follow all three."""
    stamp = time.time_ns()

    def script(requester: Requester, command: str, extra: int) -> tuple[Tool, int]:
        tool = Tool(f"recount-{stamp}", requester=requester)
        tool.set_default_cluster_name("sequential")
        step = tool.get_task_template("step", command, node_args=["n"])
        after = tool.get_task_template("after", "echo after {n}", node_args=["n"])
        steps = step.create_tasks(n=range(3 + extra))
        ends = [after.create_task(n=n, upstream_tasks=[steps[n]]) for n in range(3)]
        workflow = tool.create_workflow(workflow_args=f"recount-{stamp}")
        workflow.add_tasks([*steps, *ends])
        if extra:  # counted at bind, then after the run
            assert_counts_agree(server, database, workflow.bind(resume=True))
        assert workflow.run(resume=bool(extra), progress=False) == "D"
        assert workflow.workflow_id is not None
        return tool, workflow.workflow_id

    with Requester(server.url, token=user_token(OWNER), timeout=120, retries=3) as requester:
        _, first = script(requester, "echo step {n}", 0)
        assert_counts_agree(server, database, first)
        _, second = script(requester, "echo step again {n}", 2)
    assert second == first
    assert_counts_agree(server, database, first)
    detail = api(server, "GET", f"/workflows/{first}")["task_status_counts"]
    assert {s: n for s, n in detail.items() if n} == {"D": 8}


def test_counts_follow_a_resume_that_removes_tasks(
    server: RunningServer, database: Database
) -> None:
    """A resume whose script lacks a done, a failed and a waiting task removes them: they
    leave the counts (and their statuses, in the history); a later resume brings one back."""
    stamp = time.time_ns()

    def script(requester: Requester, keep: set[str]) -> Workflow:
        tool = Tool(f"counts-remove-{stamp}", requester=requester)
        tool.set_default_cluster_name("sequential")
        good = tool.get_task_template("good", "echo {n}", node_args=["n"])
        bad = tool.get_task_template("bad", "exit {n}", node_args=["n"])
        goods = {f"good_{n}": good.create_task(n=n, name=f"good_{n}") for n in range(3)}
        bads = {f"bad_{n}": bad.create_task(n=n, name=f"bad_{n}", max_attempts=1) for n in (5, 6)}
        upstream = [bads[name] for name in ("bad_5", "bad_6") if name in keep]
        waiting = good.create_task(n=99, name="good_99", upstream_tasks=upstream)
        tasks = {**goods, **bads, "good_99": waiting}
        workflow = tool.create_workflow(workflow_args=f"counts-remove-{stamp}")
        workflow.add_tasks([task for name, task in tasks.items() if name in keep])
        return workflow

    everything = {"good_0", "good_1", "good_2", "bad_5", "bad_6", "good_99"}
    with Requester(server.url, token=user_token(OWNER), timeout=120, retries=3) as requester:
        first = script(requester, everything)
        assert first.run(progress=False) == "E"
        workflow_id = first.workflow_id
        assert workflow_id is not None
        assert_counts_agree(server, database, workflow_id)

        fewer = script(requester, everything - {"good_0", "bad_5", "good_99"})
        assert fewer.bind(resume=True) == workflow_id
        assert_counts_agree(server, database, workflow_id)
        detail = api(server, "GET", f"/workflows/{workflow_id}")["task_status_counts"]
        assert {s: n for s, n in detail.items() if n} == {"D": 2, "F": 1}

        back = script(requester, everything - {"bad_5", "good_99"})
        assert back.bind(resume=True) == workflow_id
        assert_counts_agree(server, database, workflow_id)
        detail = api(server, "GET", f"/workflows/{workflow_id}")["task_status_counts"]
        assert {s: n for s, n in detail.items() if n} == {"D": 3, "F": 1}
