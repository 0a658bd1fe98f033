"""What a run says when it ends, through the real path: why it ended and what to run next.

Each run goes through the real server, a distributor process and its multiprocess pool; the
summary is read from stderr as the person who ran the script would read it.
"""

from __future__ import annotations

import getpass
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import pytest
from sqlalchemy.exc import SQLAlchemyError
from tests.e2e.conftest import query_rows

from herdsman import Tool
from herdsman.client.control import stop_workflow
from herdsman.client.workflow import Workflow
from herdsman.core.constants import TaskStatus
from herdsman.core.errors import DistributorNotAlive, RunTimedOutError
from herdsman.core.requester import Requester

pytestmark = pytest.mark.e2e

WAIT_SECONDS = 120.0  # only keeps a broken run from hanging the suite


@pytest.fixture
def tool(requester: Requester, request: pytest.FixtureRequest, fast_cluster: str) -> Tool:
    tool = Tool(f"said-{request.node.name}-{time.time()}", requester=requester)
    tool.set_default_cluster_name(fast_cluster)
    return tool


def _workflow(tool: Tool, name: str) -> Workflow:
    return tool.create_workflow(name=name, workflow_args=f"{tool.name}-{name}")


def _in_background(action: Callable[[], bool]) -> threading.Thread:
    """Call ``action`` every 0.1 s from a thread until it returns True."""

    def loop() -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline and not _attempt(action):
            time.sleep(0.1)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _attempt(action: Callable[[], bool]) -> bool:
    """``action``'s answer; False when the database is busy with the run, so the thread
    tries again."""
    try:
        return action()
    except SQLAlchemyError:
        return False


def _command_line(process: psutil.Process) -> list[str]:
    """The process's command line; empty for one that exited (or is a zombie left by an
    earlier test of this worker), which the search then passes over."""
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _running_tasks(database_url: str, workflow: Workflow) -> int:
    if workflow.workflow_id is None:
        return 0
    rows = query_rows(
        database_url,
        "SELECT count(*) FROM task WHERE workflow_id = :w AND status = 'R'",
        w=workflow.workflow_id,
    )
    return int(rows[0][0])


def test_a_failed_run_names_its_failed_tasks_with_their_stderr_and_the_next_commands(
    tool: Tool, server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    template = tool.get_task_template(
        "step", "{command} # {label}", node_args=["label"], op_args=["command"]
    )
    ok = template.create_task(label="ok", command="true")
    broken = template.create_task(
        label="reduce",
        command="echo \"can't open file 'reduce_typo.py'\" >&2; exit 2",
        max_attempts=2,
        upstream_tasks=[ok],
    )
    after = template.create_task(label="report", command="true", upstream_tasks=[broken])
    workflow = _workflow(tool, "failing")
    workflow.add_tasks([ok, broken, after])

    assert workflow.run() == "E"

    said = capsys.readouterr().err
    wid = workflow.workflow_id
    assert f"herdsman: workflow {wid} (failing): run " in said and "ended error (E)" in said
    assert "tasks: 1 done, 1 failed, 1 not started (of 3)" in said
    assert "1 task failed after using all attempts; 1 task behind them never ran" in said
    assert f"task {broken.task_id} step_label-reduce (2 attempts): exit code 2" in said
    assert "| can't open file 'reduce_typo.py'" in said
    assert f"herdsman workflow errors -w {wid}" in said
    assert f"herdsman workflow resume -w {wid}" in said
    # Task ids follow the order the script created the tasks in.
    assert ok.task_id is not None and broken.task_id == ok.task_id + 1


def test_a_timeout_is_named_and_jobs_it_left_unstarted_are_not_called_lost(
    tool: Tool, server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # More sleepers than the pool has processes: some wait in the pool's queue at the timeout.
    sleeper = tool.get_task_template("sleeper", "sleep {s}", node_args=["s"])
    workflow = _workflow(tool, "timeout")
    workflow.add_tasks([sleeper.create_task(s=60 + i) for i in range(5)])

    # Jobmon's run() raises RuntimeError on a timeout; so does ours, once the run has ended.
    with pytest.raises(RuntimeError, match="seconds_until_timeout=3") as raised:
        workflow.run(seconds_until_timeout=3)
    assert isinstance(raised.value, RunTimedOutError)
    assert raised.value.details["status"] == "E"
    assert workflow.last_workflow_run_id == raised.value.details["workflow_run_id"]
    assert {task.final_status for task in workflow.tasks.values()} <= {
        TaskStatus.QUEUED,
        TaskStatus.INSTANTIATING,
        TaskStatus.LAUNCHED,
        TaskStatus.RUNNING,
    }

    said = capsys.readouterr().err
    assert "why: seconds_until_timeout=3 was reached after" in said
    assert "5 tasks unfinished" in said
    assert f"herdsman workflow resume -w {workflow.workflow_id}" in said
    messages = [
        row[0]
        for row in query_rows(
            server.database_url,
            "SELECT e.description FROM task_instance_error_log e "
            "JOIN task_instance ti ON ti.id = e.task_instance_id "
            "JOIN task t ON t.id = ti.task_id WHERE t.workflow_id = :w",
            w=workflow.workflow_id,
        )
    ]
    assert not any("did its node fail" in message for message in messages), messages
    dropped = [m for m in messages if "had not started when the run ended" in m]
    assert dropped, messages  # the pool had 3 processes for 5 jobs


def test_fail_fast_names_the_task_it_stopped_on(
    tool: Tool, server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    crash = tool.get_task_template("crash", "echo 'bad input' >&2; exit 3", node_args=[])
    sleeper = tool.get_task_template("sleeper", "sleep {s}", node_args=["s"])
    failing = crash.create_task(max_attempts=1)
    workflow = _workflow(tool, "fail-fast")
    workflow.add_tasks([failing, sleeper.create_task(s=30)])

    assert workflow.run(fail_fast=True) == "E"

    said = capsys.readouterr().err
    assert f"why: fail_fast is set and task {failing.task_id} (crash) failed" in said
    assert "| bad input" in said


def test_a_distributor_killed_with_sigkill_is_named_with_its_last_log_lines(
    tool: Tool, server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sleeper = tool.get_task_template("sleeper", "sleep {s}", node_args=["s"])
    workflow = _workflow(tool, "lost-distributor")
    workflow.add_tasks([sleeper.create_task(s=60)])
    killed: list[int] = []

    def kill_the_distributor() -> bool:
        if _running_tasks(server.database_url, workflow) < 1:
            return False
        for child in psutil.Process(os.getpid()).children():
            if "herdsman.distributor" in " ".join(_command_line(child)):
                os.kill(child.pid, signal.SIGKILL)
                killed.append(child.pid)
                return True
        return False

    thread = _in_background(kill_the_distributor)
    with pytest.raises(DistributorNotAlive):
        workflow.run()
    thread.join()

    said = capsys.readouterr().err
    assert killed, "the distributor was never found"
    assert f"pid {killed[0]} died (killed by signal 9 (SIGKILL))" in said
    assert "its last log lines (" in said
    # Its log in the human format; it was ready before the task it runs could start.
    assert f"herdsman info: distributor ready (pid={killed[0]})" in said
    assert f"herdsman workflow resume -w {workflow.workflow_id}" in said


def test_a_run_stopped_from_elsewhere_returns_s_and_says_who_stopped_it(
    tool: Tool, server: Any, requester: Requester, capsys: pytest.CaptureFixture[str]
) -> None:
    sleeper = tool.get_task_template("sleeper", "sleep {s}", node_args=["s"])
    workflow = _workflow(tool, "stopped")
    workflow.add_tasks([sleeper.create_task(s=60)])

    def stop() -> bool:
        if _running_tasks(server.database_url, workflow) < 1:
            return False
        assert workflow.workflow_id is not None
        stop_workflow(requester, workflow.workflow_id)
        return True

    thread = _in_background(stop)
    assert workflow.run(workflow_run_heartbeat_interval=1.0) == "S"
    thread.join()

    said = capsys.readouterr().err
    assert "ended stopped (S)" in said
    assert f"why: the run was stopped by {getpass.getuser()}; its running jobs were killed" in said
