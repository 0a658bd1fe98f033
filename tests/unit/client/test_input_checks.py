"""Workflow.validate() applies the server's input limits, naming the task and the argument."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.client.conftest import FakeClusterRequester

from herdsman import Tool, Workflow, WorkflowValidationError
from herdsman.core.limits import InputLimits
from herdsman.core.schemas.client import HealthOut

LIMITS = InputLimits(
    max_command_bytes=2_000, max_arg_value_bytes=200, max_attribute_value_bytes=300
)


@pytest.fixture
def limited(requester: FakeClusterRequester) -> FakeClusterRequester:
    requester.limits = LIMITS
    return requester


@pytest.fixture
def template_tool(tool: Tool, limited: FakeClusterRequester) -> Tool:
    tool.set_default_cluster_name("dummy")
    return tool


def _workflow_with(tool: Tool, **values: Any) -> Workflow:
    """One task of a template with a node, a task and an op arg, given ``values``."""
    template = tool.get_task_template(
        "step",
        "run {node} {task} {op}",
        node_args=["node"],
        task_args=["task"],
        op_args=["op"],
    )
    arguments = {"node": "n", "task": "t", "op": "o", **values}
    attributes = arguments.pop("task_attributes", None)
    workflow = tool.create_workflow(workflow_args="limits")
    workflow.add_task(
        template.create_task(name="the-task", task_attributes=attributes, **arguments)
    )
    return workflow


@pytest.mark.parametrize("kind", ["node", "task", "op"])
def test_an_argument_value_over_the_limit_is_refused_naming_task_and_argument(
    template_tool: Tool, kind: str
) -> None:
    workflow = _workflow_with(template_tool, **{kind: "v" * 201})

    with pytest.raises(WorkflowValidationError) as refused:
        workflow.validate()

    message = str(refused.value)
    assert f"task 'the-task': {kind} arg '{kind}'" in message
    assert "201 bytes long; the limit is 200" in message
    assert "limits.max_arg_value_bytes" in message


@pytest.mark.parametrize("kind", ["node", "task", "op"])
def test_a_nul_character_is_refused_naming_task_and_argument(
    template_tool: Tool, kind: str
) -> None:
    workflow = _workflow_with(template_tool, **{kind: "a\x00b"})

    with pytest.raises(WorkflowValidationError, match=rf"'the-task': {kind} arg '{kind}'.*NUL"):
        workflow.validate()


def test_a_lone_surrogate_is_refused(template_tool: Tool) -> None:
    workflow = _workflow_with(template_tool, node="bad\udc80name")

    with pytest.raises(WorkflowValidationError, match="node arg 'node' contains a lone surrogate"):
        workflow.validate()


def test_values_are_counted_in_utf8_bytes(template_tool: Tool) -> None:
    fits = _workflow_with(template_tool, node="é" * 100)  # 200 bytes
    too_long = _workflow_with(template_tool, node="é" * 101)

    fits.validate()
    with pytest.raises(WorkflowValidationError, match="202 bytes long"):
        too_long.validate()


def test_a_command_over_the_limit_is_refused(template_tool: Tool) -> None:
    template = template_tool.get_task_template(
        "wide",
        "run " + " ".join(f"{{a{i}}}" for i in range(15)),
        node_args=[f"a{i}" for i in range(15)],
    )
    workflow = template_tool.create_workflow(workflow_args="wide")
    workflow.add_task(template.create_task(name="wide", **{f"a{i}": "x" * 150 for i in range(15)}))

    with pytest.raises(WorkflowValidationError, match="task 'wide': command is 2268 bytes"):
        workflow.validate()


def test_a_command_template_over_the_limit_is_refused(template_tool: Tool) -> None:
    template = template_tool.get_task_template("long", "echo {x} " + "y" * 2_000, node_args=["x"])
    workflow = template_tool.create_workflow(workflow_args="long")
    workflow.add_task(template.create_task(x=1))

    with pytest.raises(WorkflowValidationError, match="template 'long': command template is"):
        workflow.validate()


def test_an_attribute_value_over_the_limit_is_refused(template_tool: Tool) -> None:
    workflow = _workflow_with(template_tool, task_attributes={"note": "n" * 301})

    with pytest.raises(WorkflowValidationError, match="task 'the-task': attribute 'note' is 301"):
        workflow.validate()


def test_a_workflow_attribute_with_a_nul_is_refused(template_tool: Tool) -> None:
    workflow = _workflow_with(template_tool)
    workflow.workflow_attributes["bad"] = "a\x00"

    with pytest.raises(WorkflowValidationError, match="attribute 'bad' contains a NUL"):
        workflow.validate()


def test_a_workflow_name_too_long_for_its_column_is_refused(template_tool: Tool) -> None:
    workflow = _workflow_with(template_tool)
    workflow.name = "w" * 256

    with pytest.raises(WorkflowValidationError, match="name is 256 characters long; at most 255"):
        workflow.validate()


def test_an_argument_name_with_a_nul_is_refused(template_tool: Tool) -> None:
    template = template_tool.get_task_template("odd", "echo {a\x00b}", node_args=["a\x00b"])
    workflow = template_tool.create_workflow(workflow_args="odd")
    workflow.add_task(template.create_task(**{"a\x00b": 1}))

    with pytest.raises(WorkflowValidationError, match="template 'odd': argument name"):
        workflow.validate()


def test_values_within_the_limits_pass(template_tool: Tool) -> None:
    workflow = _workflow_with(
        template_tool, node="n" * 200, task="t" * 200, task_attributes={"a": "v" * 300}
    )

    workflow.validate()


def test_the_limits_come_from_the_server(
    template_tool: Tool, limited: FakeClusterRequester
) -> None:
    limited.limits = InputLimits(max_arg_value_bytes=5_000)
    workflow = _workflow_with(template_tool, node="v" * 4_000)

    workflow.validate()

    assert workflow.limits() == limited.limits
    assert HealthOut(status="ok", version="x", database="y").limits == InputLimits()


def test_a_task_name_with_a_lone_surrogate_is_refused(template_tool: Tool) -> None:
    template = template_tool.get_task_template("named", "echo {x}", node_args=["x"])

    with pytest.raises(WorkflowValidationError, match="lone surrogate"):
        template.create_task(name="bad\ud800", x=1)
