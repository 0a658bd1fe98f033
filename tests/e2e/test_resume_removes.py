"""A resume whose script has fewer tasks: the tasks it no longer has leave the workflow.

Every run is real: the server, the database, a multiprocess distributor and its workers. The
removed tasks stay in the database for the record, but never run again, are not counted, and
are not waited on; a removed task that is running is killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import kill_processes_mentioning
from tests.e2e.conftest import query_rows
from tests.integration.test_gui_steering import signed_in
from tests.support.tokens import admin_token

from herdsman import Tool
from herdsman.client.workflow import Workflow
from herdsman.core.errors import WorkflowAlreadyExists
from herdsman.core.requester import Requester
from herdsman.core.schemas.queries import (
    ErrorGroupsOut,
    TaskDetailOut,
    TasksPageOut,
    UsageTotalsOut,
    WorkflowDetailOut,
)

pytestmark = pytest.mark.e2e

ALL = frozenset({"prep_0", "prep_1", "prep_2", "side", "side_after", "bad_a", "bad_b", "report"})
_NOT_BEFORE_REPORT = frozenset({"side", "side_after", "report"})


@pytest.fixture
def tool_name(request: pytest.FixtureRequest) -> str:
    return f"resume-removes-{request.node.name}-{time.time_ns()}"


def _study(
    tool_name: str, requester: Requester, workdir: Path, keep: frozenset[str], fixed: bool
) -> Workflow:
    """prep 0-2; side, and side_after after it; bad_a and bad_b fail (bad_b succeeds once
    ``fixed``); report after every prep and both bads. Only the tasks in ``keep`` are added,
    and a dependency only where both ends are."""
    tool = Tool(tool_name, requester=requester)
    tool.set_default_cluster_name("multiprocess")
    log = str(workdir)

    def template(name: str, command: str, node_args: list[str]) -> Any:
        return tool.get_task_template(name, command, node_args=node_args, op_args=["log"])

    prep = template("prep", "echo prep {i} >> {log}/prep.log", ["i"])
    side = template("side", "echo side {s} >> {log}/side.log", ["s"])
    bad = template("bad", "echo bad {b} >> {log}/bad.log; exit {code}", ["b", "code"])
    report = template("report", "echo report >> {log}/report.log", [])
    tasks: dict[str, Any] = {
        f"prep_{i}": prep.create_task(i=i, log=log, name=f"prep_{i}") for i in range(3)
    }
    tasks["side"] = side.create_task(s="first", log=log, name="side")
    tasks["side_after"] = side.create_task(s="after", log=log, name="side_after")
    tasks["bad_a"] = bad.create_task(b="a", code=3, log=log, name="bad_a", max_attempts=1)
    # bad_b keeps its identity when fixed: its exit code is an op arg.
    fix = tool.get_task_template(
        "fixable",
        "echo bad {b} >> {log}/bad.log; exit {code}",
        node_args=["b"],
        op_args=["log", "code"],
    )
    tasks["bad_b"] = fix.create_task(
        b="b", code=0 if fixed else 3, log=log, name="bad_b", max_attempts=1
    )
    tasks["report"] = report.create_task(log=log, name="report")
    edges = [("side", "side_after"), *((name, "report") for name in ALL - _NOT_BEFORE_REPORT)]
    for up, down in edges:
        if up in keep and down in keep:
            tasks[down].add_upstream(tasks[up])
    workflow = tool.create_workflow(workflow_args=tool_name)
    workflow.add_tasks([task for name, task in tasks.items() if name in keep])
    return workflow


def _attempts(database_url: str, workflow_id: int) -> dict[str, int]:
    """Task name -> attempts over all runs, removed tasks too."""
    rows = query_rows(
        database_url,
        "SELECT t.name, COUNT(ti.id) FROM task t LEFT JOIN task_instance ti ON ti.task_id = t.id "
        "WHERE t.workflow_id = :w GROUP BY t.name",
        w=workflow_id,
    )
    return {name: count for name, count in rows}


def test_a_resume_without_some_tasks_removes_them_and_runs_the_rest_to_done(
    tool_name: str,
    requester: Requester,
    server: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = _study(tool_name, requester, tmp_path, ALL, fixed=False)
    assert first.run(progress=False) == "E"
    workflow_id = first.workflow_id
    assert workflow_id is not None
    before = _attempts(server.database_url, workflow_id)
    assert before == {name: 0 if name == "report" else 1 for name in ALL}
    groups = requester.get(f"/workflows/{workflow_id}/error_groups", ErrorGroupsOut)
    assert (groups.count, groups.tasks) == (2, 2)  # bad_a's error and bad_b's
    usage = requester.get(f"/workflows/{workflow_id}/usage_totals", UsageTotalsOut)
    assert usage.attempts == 7  # every attempt but report's, which did not run
    ((first_dag,),) = query_rows(
        server.database_url, "SELECT dag_id FROM workflow WHERE id = :w", w=workflow_id
    )

    # Dropped: bad_a (failed, with report downstream) and side (done, with side_after
    # downstream); bad_b is fixed.
    keep = ALL - {"bad_a", "side"}
    fewer = _study(tool_name, requester, tmp_path, keep, fixed=True)
    with pytest.raises(
        WorkflowAlreadyExists, match="8 tasks where the script has 6 \\(at least 2 tasks removed"
    ):
        fewer.bind()
    plan = fewer.plan()
    assert plan.workflow_id == workflow_id
    # bad_b is not done (so it runs, with its new command), report waited on the failed.
    assert plan.counts == {"reuse": 4, "new": 0, "changed": 0, "unfinished": 2, "downstream": 0}
    assert plan.removed == 2
    assert sorted(plan.removed_names) == ["bad_a", "side"]
    assert "       2 removed (stored tasks not in the script)" in plan.summary()
    assert "  remove     bad_a (not in the script)" in plan.details()
    assert "  remove     side (not in the script)" in plan.details()

    capsys.readouterr()
    assert fewer.run(resume=True, progress=False) == "D"
    said = capsys.readouterr().err
    assert (
        "resume: 4 of 6 tasks are done and kept; 2 to run; 2 removed, not in the script" in said
    ), said
    assert fewer.workflow_id == workflow_id

    # What ran is what the plan said: bad_b and report; the removed tasks never again.
    after = _attempts(server.database_url, workflow_id)
    ran = {name for name in ALL if after[name] != before[name]}
    assert ran == {"bad_b", "report"}
    assert len(ran) == plan.to_run
    assert after["bad_a"] == 1 and after["side"] == 1
    assert (tmp_path / "report.log").read_text() == "report\n"  # it no longer waits on bad_a
    # Kept for the record, out of the workflow: its counts, its listing, its status.
    removed = query_rows(
        server.database_url,
        "SELECT name, status, removed_from_dag_id FROM task WHERE workflow_id = :w "
        "AND removed_date IS NOT NULL ORDER BY name",
        w=workflow_id,
    )
    assert [tuple(row) for row in removed] == [("bad_a", "F", first_dag), ("side", "D", first_dag)]
    detail = requester.get(f"/workflows/{workflow_id}", WorkflowDetailOut)
    assert {s: n for s, n in detail.task_status_counts.items() if n} == {"D": 6}
    # Their errors and usage leave the workflow's error groups and totals with them.
    bad_a_id, bad_b_id = (
        query_rows(
            server.database_url,
            "SELECT id FROM task WHERE workflow_id = :w AND name = :n",
            w=workflow_id,
            n=name,
        )[0][0]
        for name in ("bad_a", "bad_b")
    )
    groups = requester.get(f"/workflows/{workflow_id}/error_groups", ErrorGroupsOut)
    assert (groups.count, groups.tasks, groups.group_count) == (1, 1, 1)
    assert [group.task_ids for group in groups.groups] == [[bad_b_id]]
    usage = requester.get(f"/workflows/{workflow_id}/usage_totals", UsageTotalsOut)
    assert usage.attempts == 7 - 2 + 2  # less bad_a's and side's; with bad_b's and report's
    assert detail.status == "D"
    listed = requester.get(f"/workflows/{workflow_id}/tasks", TasksPageOut)
    assert listed.count == 6
    assert {task.name for task in listed.tasks} == keep
    herdsman = str(Path(sys.executable).parent / "herdsman")
    shown = subprocess.run(
        [herdsman, "workflow", "tasks", "-w", str(workflow_id)],
        env={**os.environ, "HERDSMAN_SERVER_URL": server.url},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "6 of 6 tasks shown" in shown and "bad_a" not in shown
    # The GUI's task table and its CSV leave them out too, whatever the order.
    removed_ids = [
        row[0]
        for row in query_rows(
            server.database_url,
            "SELECT id FROM task WHERE workflow_id = :w AND removed_date IS NOT NULL",
            w=workflow_id,
        )
    ]
    with signed_in(server, admin_token()) as browser:
        for query in ("", "?sort=runtime", "?status=F", "?attempts=1"):
            page = browser.get(f"/workflows/{workflow_id}/tasks{query}").text
            assert not [i for i in removed_ids if f'id="task-{i}"' in page], query
        csv_rows = browser.get(f"/workflows/{workflow_id}/tasks.csv").text.splitlines()
        assert len(csv_rows) == 1 + 6 and not any(",bad_a," in row for row in csv_rows)
        # Its own page says what happened to it; a kept task's page says nothing of the kind.
        assert 'id="task-removed"' in browser.get(f"/tasks/{removed_ids[0]}").text
        kept_id = listed.tasks[0].id
        assert 'id="task-removed"' not in browser.get(f"/tasks/{kept_id}").text
    assert requester.get(f"/tasks/{removed_ids[0]}", TaskDetailOut).removed_date is not None
    assert requester.get(f"/tasks/{kept_id}", TaskDetailOut).removed_date is None

    # The same script again: nothing to plan or remove.
    again = _study(tool_name, requester, tmp_path, keep, fixed=True)
    assert again.plan().counts["reuse"] == 6
    assert again.plan().removed == 0

    # A script that has them again brings them back, with their errors and usage.
    _study(tool_name, requester, tmp_path, ALL, fixed=True).bind(resume=True)
    groups = requester.get(f"/workflows/{workflow_id}/error_groups", ErrorGroupsOut)
    assert (groups.count, groups.tasks) == (2, 2)
    assert sorted(groups.groups[0].task_ids) == sorted([bad_a_id, bad_b_id])
    assert requester.get(f"/workflows/{workflow_id}/usage_totals", UsageTotalsOut).attempts == 9


# --- a removed task that is running ---------------------------------------------------------------

FLOW = """
import sys
from herdsman import Tool


def build(tool_name, cluster, workdir, labels):
    tool = Tool(tool_name)
    tool.set_default_cluster_name(cluster)
    wait = tool.get_task_template(
        "wait",
        "echo $$ > {dir}/{label}.pid; while [ ! -e {dir}/go ]; do sleep 0.1; done; "
        "echo finished >> {dir}/{label}.log",
        node_args=["label"],
        op_args=["dir"],
    )
    workflow = tool.create_workflow(workflow_args=tool_name)
    workflow.add_tasks([wait.create_task(label=label, name=label, dir=workdir) for label in labels])
    return workflow


if __name__ == "__main__":
    tool_name, cluster, workdir = sys.argv[1:4]
    build(tool_name, cluster, workdir, ["slow", "gate"]).run(workflow_run_heartbeat_interval=1.0)
"""


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


@pytest.fixture
def first_process(
    processes: Any,
    server: Any,
    fast_cluster: str,
    tmp_path: Path,
    tool_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[subprocess.Popen[bytes]]:
    """The user's script running [slow, gate] in a process of its own."""
    monkeypatch.setenv("HERDSMAN_SERVER_URL", server.url)
    script = tmp_path / "flow.py"
    script.write_text(FLOW)
    process: subprocess.Popen[bytes] = processes.spawn(
        [sys.executable, str(script), tool_name, fast_cluster, str(tmp_path)],
        env={**os.environ, "HERDSMAN_SERVER_URL": server.url},
        stdin=subprocess.DEVNULL,
        stdout=(tmp_path / "first-run.log").open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        processes.stop(process)
        kill_processes_mentioning(fast_cluster)


def test_a_removed_task_that_is_running_is_killed(
    first_process: subprocess.Popen[bytes],
    tool_name: str,
    server: Any,
    fast_cluster: str,
    tmp_path: Path,
) -> None:
    def status_of(name: str) -> list[str]:
        rows = query_rows(
            server.database_url,
            "SELECT ti.status FROM task_instance ti JOIN task t ON t.id = ti.task_id "
            "WHERE t.name = :n AND t.command LIKE :d ORDER BY ti.id",
            n=name,
            d=f"%{tmp_path}/%",
        )
        return [row[0] for row in rows]

    _wait_for(lambda: status_of("slow") == ["R"] and status_of("gate") == ["R"], "both to run")
    namespace: dict[str, Any] = {}
    exec(compile(FLOW, "flow.py", "exec"), namespace)
    fewer: Workflow = namespace["build"](tool_name, fast_cluster, str(tmp_path), ["gate"])

    # The bind of the resume removes slow and tells its running attempt to die at once.
    workflow_id = fewer.bind(resume=True)
    assert status_of("slow") in (["K"], ["F"])  # told to die (and perhaps dead already)
    assert status_of("gate") == ["R"]  # the run the resume takes over is not stopped yet
    _wait_for(lambda: status_of("slow") == ["F"], "the removed task's kill to be confirmed")

    # The resume kills gate's job of the run it takes over and runs gate again: let that one
    # finish.
    def open_the_gate() -> None:
        _wait_for(lambda: len(status_of("gate")) == 2, "gate's second attempt")
        (tmp_path / "go").touch()

    opener = threading.Thread(target=open_the_gate, daemon=True)
    opener.start()
    assert fewer.run(resume=True, resume_timeout=60, progress=False) == "D"
    opener.join(10)
    assert not (tmp_path / "slow.log").exists()  # killed: it never finished
    assert (tmp_path / "gate.log").exists()
    ((message,),) = query_rows(
        server.database_url,
        "SELECT l.description FROM task_instance_error_log l "
        "JOIN task_instance ti ON ti.id = l.task_instance_id JOIN task t ON t.id = ti.task_id "
        "WHERE t.workflow_id = :w AND t.name = 'slow'",
        w=workflow_id,
    )
    assert "removed its task" in message
    # The kill's error came after slow left the workflow: it is in no error group. (gate's
    # first attempt, killed with the run the resume took over, is.)
    ((gate_id,),) = query_rows(
        server.database_url,
        "SELECT id FROM task WHERE workflow_id = :w AND name = 'gate'",
        w=workflow_id,
    )
    with Requester(server.url, token=admin_token()) as requester:
        groups = requester.get(f"/workflows/{workflow_id}/error_groups", ErrorGroupsOut)
    assert (groups.count, groups.tasks) == (1, 1)
    assert [group.task_ids for group in groups.groups] == [[gate_id]]
    counts = query_rows(
        server.database_url,
        "SELECT status, num FROM task_status_count WHERE workflow_id = :w AND num <> 0",
        w=workflow_id,
    )
    assert [tuple(row) for row in counts] == [("D", 1)]
