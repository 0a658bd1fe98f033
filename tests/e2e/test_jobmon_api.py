"""Jobmon's names that need a server: after a real run (final statuses, errors, usage, the
status functions) and attributes added after binding."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from tests.e2e.conftest import query_rows
from tests.support.tokens import user_token

from herdsman.client.api import (
    Tool,
    add_task_attributes,
    task_status,
    workflow_status,
    workflow_tasks,
)
from herdsman.client.tool import InvalidToolVersionError
from herdsman.core.constants import TaskStatus
from herdsman.core.errors import PermissionDeniedError
from herdsman.core.exceptions import WorkflowAlreadyExists
from herdsman.core.requester import Requester

pytestmark = pytest.mark.e2e


@pytest.fixture
def tool(requester: Requester, request: pytest.FixtureRequest, fast_cluster: str) -> Tool:
    tool = Tool(f"jobmon-{request.node.name}-{time.time()}", requester=requester)
    tool.set_default_cluster_name(fast_cluster)
    return tool


def test_after_a_run_tasks_and_workflow_answer_jobmons_questions(
    tool: Tool, requester: Requester
) -> None:
    echo = tool.get_task_template("echo", "echo {word} $JOBMON_TASK_ID", node_args=["word"])
    crash = tool.get_task_template("crash", "echo 'bad input' >&2; exit 3", node_args=[])
    ok = echo.create_task(word="hello")
    failing = crash.create_task(max_attempts=1)
    workflow = tool.create_workflow(f"{tool.name}-args", "jobmon-run")
    workflow.add_tasks([ok, failing])

    assert workflow.run() == "E"

    assert (ok.final_status, failing.final_status) == (TaskStatus.DONE, TaskStatus.ERROR_FATAL)
    assert (workflow._num_newly_completed, workflow._num_previously_completed) == (1, 0)
    assert isinstance(workflow.last_workflow_run_id, int)

    errors = failing.get_errors()
    assert errors is not None and errors["error_log"]
    assert errors["error_log"][0]["exit_code"] == 3
    assert workflow.task_errors == {failing.name: errors}
    ok_errors = ok.get_errors()
    assert ok_errors is not None and ok_errors["error_log"] == []

    usage = ok.resource_usage()
    assert usage["num_attempts"] == 1
    assert usage["nodename"] and usage["runtime"] is not None
    assert echo.resource_usage() is not None
    assert echo.resource_usage(workflows=[workflow.workflow_id])["num_tasks"] == 1  # type: ignore[index]

    wid = workflow.workflow_id
    assert wid is not None
    rows = workflow_status(workflow_id=[wid], requester=requester)
    assert [row["id"] for row in rows] == [wid]  # type: ignore[index]
    fatal = workflow_tasks(wid, status=["FATAL"], requester=requester)
    assert [row["id"] for row in fatal] == [failing.task_id]  # type: ignore[index]
    attempts = json.loads(str(task_status([failing.task_id or 0], json=True, requester=requester)))
    assert [row["exit_code"] for row in attempts] == [3]
    assert task_status([ok.task_id or 0], status=["FATAL"], requester=requester) == []


def _attributes(database_url: str, table: str, column: str, row_id: int) -> dict[str, str]:
    rows = query_rows(
        database_url, f"SELECT name, value FROM {table} WHERE {column} = :i", i=row_id
    )
    return {name: value for name, value in rows}


def test_attributes_added_after_binding_reach_the_server(
    tool: Tool, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    echo = tool.get_task_template("echo", "echo {word}", node_args=["word"])
    task = echo.create_task(word="hi", task_attributes={"stage": "1"})
    workflow = tool.create_workflow(f"{tool.name}-attrs", workflow_attributes={"release": "15"})
    workflow.add_task(task)
    workflow.bind()
    assert workflow.workflow_id is not None and task.task_id is not None

    workflow.add_attributes({"release": 16, "note": "rerun"})
    task.add_attribute("stage", 2)
    add_task_attributes({"loss": 0.5}, task_id=task.task_id, requester=tool.requester)
    monkeypatch.setenv("JOBMON_TASK_ID", str(task.task_id))
    add_task_attributes({"from_env": "yes"}, requester=tool.requester)

    assert _attributes(
        server.database_url, "workflow_attribute", "workflow_id", workflow.workflow_id
    ) == {
        "release": "16",
        "note": "rerun",
    }
    assert _attributes(server.database_url, "task_attribute", "task_id", task.task_id) == {
        "stage": "2",
        "loss": "0.5",
        "from_env": "yes",
    }


def test_only_the_owner_adds_attributes(tool: Tool, server: Any) -> None:
    echo = tool.get_task_template("echo", "echo {word}", node_args=["word"])
    task = echo.create_task(word="hi")
    workflow = tool.create_workflow(f"{tool.name}-owner")
    workflow.add_task(task)
    workflow.bind()
    assert task.task_id is not None

    with (
        Requester(server.url, token=user_token("someone-else"), retries=0) as intruder,
        pytest.raises(PermissionDeniedError),
    ):
        add_task_attributes({"x": 1}, task_id=task.task_id, requester=intruder)


def test_an_unknown_tool_version_and_clashing_workflow_args_raise_jobmons_errors(
    tool: Tool, requester: Requester
) -> None:
    with pytest.raises(InvalidToolVersionError, match="has no version 999999"):
        _ = Tool(tool.name, active_tool_version_id=999999, requester=requester).id

    echo = tool.get_task_template("echo", "echo {word}", node_args=["word"])
    first = tool.create_workflow(f"{tool.name}-same-args")
    first.add_task(echo.create_task(word="a"))
    first.bind()
    second = tool.create_workflow(f"{tool.name}-same-args")
    second.add_task(echo.create_task(word="b"))
    with pytest.raises(WorkflowAlreadyExists):
        second.bind()
