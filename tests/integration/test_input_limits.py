"""Input limits against a real server: the client refuses before it binds anything, and the
server refuses the same values from any caller (422) before it writes anything."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from tests.support.tokens import bearer

from herdsman import Tool, WorkflowValidationError
from herdsman.core.limits import InputLimits
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import HealthOut

if TYPE_CHECKING:
    from tests.conftest import RunningServer

pytestmark = pytest.mark.integration

DEFAULTS = InputLimits()
TOO_LONG_VALUE = "v" * (DEFAULTS.max_arg_value_bytes + 1)
TOO_LONG_ATTRIBUTE = "a" * (DEFAULTS.max_attribute_value_bytes + 1)


def _rows_of_tool(database_url: str, tool_name: str) -> dict[str, int]:
    """What exists of the tool's templates, nodes, workflows and tasks."""
    counts = {
        "task_template_version": (
            "SELECT COUNT(*) FROM task_template_version v JOIN task_template t "
            "ON t.id = v.task_template_id JOIN tool_version tv ON tv.id = t.tool_version_id "
            "JOIN tool ON tool.id = tv.tool_id WHERE tool.name = :tool"
        ),
        "node": (
            "SELECT COUNT(*) FROM node n JOIN task_template_version v "
            "ON v.id = n.task_template_version_id JOIN task_template t "
            "ON t.id = v.task_template_id JOIN tool_version tv ON tv.id = t.tool_version_id "
            "JOIN tool ON tool.id = tv.tool_id WHERE tool.name = :tool"
        ),
        "workflow": (
            "SELECT COUNT(*) FROM workflow w JOIN tool_version tv ON tv.id = w.tool_version_id "
            "JOIN tool ON tool.id = tv.tool_id WHERE tool.name = :tool"
        ),
        "task": (
            "SELECT COUNT(*) FROM task JOIN workflow w ON w.id = task.workflow_id "
            "JOIN tool_version tv ON tv.id = w.tool_version_id "
            "JOIN tool ON tool.id = tv.tool_id WHERE tool.name = :tool"
        ),
    }
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return {
                table: connection.execute(text(query), {"tool": tool_name}).scalar_one()
                for table, query in counts.items()
            }
    finally:
        engine.dispose()


# Each case: the arguments of the failing task (beside good ones), and what the error names.
CASES: dict[str, tuple[dict[str, Any], str]] = {
    "node arg too long": ({"node": TOO_LONG_VALUE}, "node arg 'node' is 10001 bytes"),
    "task arg too long": ({"task": TOO_LONG_VALUE}, "task arg 'task' is 10001 bytes"),
    "op arg too long": ({"op": TOO_LONG_VALUE}, "op arg 'op' is 10001 bytes"),
    "node arg with NUL": ({"node": "a\x00b"}, "node arg 'node' contains a NUL"),
    "task arg with NUL": ({"task": "a\x00b"}, "task arg 'task' contains a NUL"),
    "op arg with NUL": ({"op": "a\x00b"}, "op arg 'op' contains a NUL"),
    "command too long": (
        {"node": "n" * 9_000, "task": "t" * 9_000, "op": "o" * 9_000, "wide": "w" * 9_000},
        "command is",
    ),
    "attribute too long": ({"task_attributes": {"note": TOO_LONG_ATTRIBUTE}}, "attribute 'note'"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_client_refuses_before_anything_is_bound(
    server: RunningServer, requester: Requester, case: str
) -> None:
    arguments, named = CASES[case]
    tool_name = f"limits-{case}-{server.engine}-{time.time()}"
    tool = Tool(tool_name, requester=requester)
    tool.set_default_cluster_name("dummy")
    # Twelve copies of "wide" make a command of 12 * 9000 bytes: over the command limit.
    template = tool.get_task_template(
        "step",
        "run {node} {task} {op} " + " ".join(["{wide}"] * 12),
        node_args=["node"],
        task_args=["task"],
        op_args=["op", "wide"],
    )
    workflow = tool.create_workflow(workflow_args=case)
    good = template.create_task(name="good", node="1", task="t", op="o", wide="w")
    given = {"node": "2", "task": "t", "op": "o", "wide": "w", **arguments}
    attributes = given.pop("task_attributes", None)
    bad = template.create_task(name="bad", task_attributes=attributes, **given)
    workflow.add_tasks([good, bad])

    with pytest.raises(WorkflowValidationError) as refused:
        workflow.bind()

    assert "task 'bad'" in str(refused.value) and named in str(refused.value)
    assert _rows_of_tool(server.database_url, tool_name) == {
        "task_template_version": 0,
        "node": 0,
        "workflow": 0,
        "task": 0,
    }


def test_health_tells_clients_the_limits(requester: Requester) -> None:
    assert requester.get("/health", HealthOut).limits == DEFAULTS


def _tasks_body(**columns: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "node_ids": [1],
        "array_ids": [1],
        "names": ["t"],
        "commands": ["echo"],
        "task_args_hashes": [0],
        "task_arg_values": [[]],
        "cluster_ids": [1],
        "original_resources_ids": [1],
        "task_resources_ids": [1],
        "max_attempts": [1],
        "resource_scales": [""],
        "fallback_queues": [""],
    }
    body.update(columns)
    return body


SERVER_CASES: dict[str, tuple[str, dict[str, Any], str]] = {
    "node value too long": (
        "/nodes",
        {
            "task_template_version_id": 1,
            "arg_ids": [1],
            "node_args_hashes": [1],
            "values": [[TOO_LONG_VALUE]],
        },
        "values.0.0",
    ),
    "node value with NUL": (
        "/nodes",
        {
            "task_template_version_id": 1,
            "arg_ids": [1],
            "node_args_hashes": [1],
            "values": [["a\x00"]],
        },
        "values.0.0",
    ),
    "command too long": ("/workflows/1/tasks", _tasks_body(commands=["c" * 100_001]), "commands.0"),
    "command with NUL": ("/workflows/1/tasks", _tasks_body(commands=["echo \x00"]), "commands.0"),
    "task name with NUL": ("/workflows/1/tasks", _tasks_body(names=["a\x00"]), "names.0"),
    "task arg too long": (
        "/workflows/1/tasks",
        _tasks_body(task_arg_ids={"1": [1]}, task_arg_values=[[TOO_LONG_VALUE]]),
        "task_arg_values.0.0",
    ),
    "task attribute too long": (
        "/workflows/1/tasks",
        _tasks_body(attributes={"0": {"note": TOO_LONG_ATTRIBUTE}}),
        "attributes.0.note",
    ),
    "command template too long": (
        "/task_template_versions",
        {
            "task_template_id": 1,
            "command_template": "c" * 100_001,
            "node_args": [],
            "task_args": [],
            "op_args": [],
        },
        "command_template",
    ),
    "command template with a lone surrogate": (
        "/task_template_versions",
        {
            "task_template_id": 1,
            "command_template": "c\udc80",
            "node_args": [],
            "task_args": [],
            "op_args": [],
        },
        "command_template",
    ),
    "argument name too long": (
        "/task_template_versions",
        {
            "task_template_id": 1,
            "command_template": "c",
            "node_args": ["n" * 256],
            "task_args": [],
            "op_args": [],
        },
        "node_args",
    ),
    "workflow attribute too long": (
        "/workflows",
        {
            "tool_version_id": 1,
            "dag_id": 1,
            "workflow_args": "",
            "workflow_args_hash": "0" * 64,
            "task_hash": "0" * 64,
            "num_tasks": 0,
            "attributes": {"note": TOO_LONG_ATTRIBUTE},
        },
        "attributes.note",
    ),
    "tool name with NUL": ("/tools", {"name": "t\x00"}, "name"),
}


@pytest.mark.parametrize("case", list(SERVER_CASES))
def test_the_server_refuses_the_same_values_from_any_caller(
    server: RunningServer, case: str
) -> None:
    path, body, field = SERVER_CASES[case]
    # json.dumps keeps a lone surrogate as an escape, as a hand-written client might send it.
    response = httpx.put(
        f"{server.url}/api/v1{path}",
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json", **bearer()},
        timeout=30,
    )

    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "InvalidInputError"
    assert field in answer["message"]
