"""Workflow: adding tasks and arrays, look-ups, concurrency limits and validate()."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from herdsman import (
    InvalidResourceError,
    Task,
    TaskTemplate,
    Tool,
    Workflow,
    WorkflowValidationError,
)
from herdsman.core.limits import UNLIMITED


@pytest.fixture
def echo(tool: Tool) -> TaskTemplate:
    return tool.get_task_template(
        "echo",
        "echo {n} {extra}",
        node_args=["n"],
        task_args=["extra"],
        default_cluster_name="dummy",
    )


@pytest.fixture
def pair(tool: Tool) -> TaskTemplate:
    return tool.get_task_template(
        "pair", "pair {x} {y}", node_args=["x", "y"], default_cluster_name="dummy"
    )


def chain(template: TaskTemplate, count: int) -> list[Task]:
    """``count`` tasks, each depending on the one before."""
    tasks = [template.create_task(n=i, extra="") for i in range(count)]
    for before, after in itertools.pairwise(tasks):
        after.add_upstream(before)
    return tasks


# --- construction -----------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [-1, True, 1.5, "10"])
def test_a_bad_workflow_concurrency_limit_is_refused(tool: Tool, limit: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="max_concurrently_running"):
        tool.create_workflow(max_concurrently_running=limit)


def test_workflows_without_workflow_args_are_unique(tool: Tool) -> None:
    assert tool.create_workflow().workflow_args != tool.create_workflow().workflow_args


def test_workflow_args_are_kept(tool: Tool) -> None:
    assert tool.create_workflow(workflow_args="run-2024").workflow_args == "run-2024"


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [(None, {}), ({"round": 7}, {"round": "7"}), (["final"], {"final": ""})],
    ids=["none", "dict", "list"],
)
def test_workflow_attributes(tool: Tool, attributes: Any, expected: dict[str, str]) -> None:
    assert tool.create_workflow(workflow_attributes=attributes).workflow_attributes == expected


def test_workflow_attributes_as_a_string_are_refused(tool: Tool) -> None:
    with pytest.raises(WorkflowValidationError, match="workflow_attributes"):
        tool.create_workflow(workflow_attributes="final")


@pytest.mark.parametrize("attempts", [0, -2, True])
def test_a_bad_workflow_default_max_attempts_is_refused(tool: Tool, attempts: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="max_attempts"):
        tool.create_workflow(default_max_attempts=attempts)


# --- adding tasks -----------------------------------------------------------------------------


def test_add_task_keys_tasks_by_template_version_and_node_args(
    workflow: Workflow, echo: TaskTemplate
) -> None:
    task = echo.create_task(n=1, extra="x")

    assert workflow.add_task(task) is task
    assert workflow.tasks == {(echo.active_version, ("1",)): task}


def test_add_task_refuses_non_tasks(workflow: Workflow) -> None:
    with pytest.raises(WorkflowValidationError, match="add_task takes a Task, not str"):
        workflow.add_task("echo 1")  # type: ignore[arg-type]


@pytest.mark.parametrize("extra", ["same", "different"])
def test_two_tasks_with_the_same_node_args_are_duplicates(
    workflow: Workflow, echo: TaskTemplate, extra: str
) -> None:
    first = echo.create_task(n=1, extra="same")
    second = echo.create_task(n=1, extra=extra, name="second")
    workflow.add_task(first)

    with pytest.raises(WorkflowValidationError) as caught:
        workflow.add_task(second)

    message = str(caught.value)
    assert "duplicate task" in message
    assert "'second'" in message
    assert "'echo_n-1'" in message
    assert workflow.tasks[first.key] is first


def test_adding_the_same_task_twice_is_harmless(workflow: Workflow, echo: TaskTemplate) -> None:
    task = echo.create_task(n=1, extra="")

    workflow.add_task(task)
    workflow.add_task(task)
    workflow.add_tasks([task, task])

    assert list(workflow.tasks.values()) == [task]


def test_equal_node_args_of_different_templates_are_different_tasks(
    workflow: Workflow, echo: TaskTemplate, tool: Tool
) -> None:
    other = tool.get_task_template("other", "other {n}", node_args=["n"])

    workflow.add_tasks([echo.create_task(n=1, extra=""), other.create_task(n=1)])

    assert len(workflow.tasks) == 2


def test_add_tasks_adds_them_all(workflow: Workflow, echo: TaskTemplate) -> None:
    tasks = echo.create_tasks(n=range(5), extra="")

    workflow.add_tasks(tasks)

    assert list(workflow.tasks.values()) == tasks


# --- get_tasks_by_node_args -------------------------------------------------------------------


@pytest.fixture
def grid_workflow(workflow: Workflow, pair: TaskTemplate, echo: TaskTemplate) -> Workflow:
    workflow.add_tasks(pair.create_tasks(x=[1, 2], y=["a", "b"]))
    workflow.add_tasks(echo.create_tasks(n=[1, 2], extra=""))
    return workflow


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"x": 1}, [("1", "a"), ("1", "b")]),
        ({"x": "1"}, [("1", "a"), ("1", "b")]),
        ({"y": "b"}, [("1", "b"), ("2", "b")]),
        ({"x": 2, "y": "a"}, [("2", "a")]),
        ({"x": 3}, []),
        ({}, [("1", "a"), ("1", "b"), ("2", "a"), ("2", "b")]),
    ],
    ids=["one-arg-int", "one-arg-str", "other-arg", "both-args", "no-match", "no-filter"],
)
def test_get_tasks_by_node_args_matches_the_given_values(
    grid_workflow: Workflow, query: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    found = grid_workflow.get_tasks_by_node_args("pair", **query)

    assert [task.node_values for task in found] == expected
    assert all(task.template_version.template.name == "pair" for task in found)


def test_get_tasks_by_node_args_refuses_unknown_args(grid_workflow: Workflow) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        grid_workflow.get_tasks_by_node_args("pair", z=1)

    assert "no node args ['z']" in str(caught.value)
    assert "['x', 'y']" in str(caught.value)


def test_get_tasks_by_node_args_of_an_absent_template_is_refused(grid_workflow: Workflow) -> None:
    with pytest.raises(WorkflowValidationError, match="no tasks of template 'absent'"):
        grid_workflow.get_tasks_by_node_args("absent", x=1)


# --- concurrency limits and arrays ------------------------------------------------------------


def test_a_template_has_no_limit_of_its_own_by_default(tool: Tool, echo: TaskTemplate) -> None:
    workflow = tool.create_workflow(max_concurrently_running=42)

    # Only the workflow's limit binds its tasks; raising it raises theirs.
    assert workflow.array_limit(echo.active_version) == UNLIMITED == 2**31 - 1


def test_the_workflow_limit_defaults_to_unlimited(tool: Tool) -> None:
    assert tool.create_workflow().max_concurrently_running == UNLIMITED


def test_set_task_template_max_concurrency_limit(workflow: Workflow, echo: TaskTemplate) -> None:
    workflow.set_task_template_max_concurrency_limit("echo", 3)

    assert workflow.array_limit(echo.active_version) == 3


def test_a_template_limit_applies_to_every_version(
    workflow: Workflow, tool: Tool, echo: TaskTemplate
) -> None:
    first = echo.active_version
    tool.get_task_template("echo", "echo --v2 {n} {extra}", node_args=["n"], task_args=["extra"])

    workflow.set_task_template_max_concurrency_limit("echo", 3)

    assert workflow.array_limit(first) == 3
    assert workflow.array_limit(echo.active_version) == 3


@pytest.mark.parametrize("limit", [-1, True, 2.5, "3"])
def test_a_bad_template_limit_is_refused(workflow: Workflow, limit: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="concurrency limit"):
        workflow.set_task_template_max_concurrency_limit("echo", limit)


def test_add_array_applies_its_limit_to_the_template(
    workflow: Workflow, echo: TaskTemplate
) -> None:
    array = echo.create_array(n=[1, 2, 3], extra="", max_concurrently_running=2)

    workflow.add_array(array)

    assert list(workflow.tasks.values()) == array.tasks
    assert workflow.array_limit(echo.active_version) == 2


def test_add_array_without_a_limit_sets_no_limit_of_its_own(tool: Tool, echo: TaskTemplate) -> None:
    workflow = tool.create_workflow(max_concurrently_running=9)

    workflow.add_array(echo.create_array(n=[1, 2], extra=""))

    assert len(workflow.tasks) == 2
    assert workflow.array_limit(echo.active_version) == UNLIMITED


def test_a_negative_array_limit_is_refused_where_it_is_written(echo: TaskTemplate) -> None:
    with pytest.raises(WorkflowValidationError, match="max_concurrently_running"):
        echo.create_array(n=[1, 2], extra="", max_concurrently_running=-1)


# --- validate(): the DAG ----------------------------------------------------------------------


def test_validating_an_empty_workflow_fails(workflow: Workflow) -> None:
    with pytest.raises(WorkflowValidationError, match="no tasks"):
        workflow.validate()


def test_a_valid_workflow_passes(
    workflow: Workflow, echo: TaskTemplate, cluster_lookups: list[str]
) -> None:
    workflow.add_tasks(chain(echo, 5))

    workflow.validate()

    assert cluster_lookups == ["dummy"]  # one look-up per cluster, not per task


def test_an_upstream_outside_the_workflow_is_named(workflow: Workflow, echo: TaskTemplate) -> None:
    outside = echo.create_task(n="outside", extra="")
    inside = echo.create_task(n="inside", extra="", upstream_tasks=[outside])
    workflow.add_task(inside)

    with pytest.raises(WorkflowValidationError) as caught:
        workflow.validate()

    message = str(caught.value)
    assert "'echo_n-inside' depends on task 'echo_n-outside'" in message
    assert "not in the workflow" in message


def test_an_upstream_replaced_by_an_equal_task_is_still_outside(
    workflow: Workflow, echo: TaskTemplate
) -> None:
    original = echo.create_task(n="a", extra="")
    lookalike = echo.create_task(n="a", extra="")
    downstream = echo.create_task(n="b", extra="", upstream_tasks=[original])
    workflow.add_tasks([lookalike, downstream])

    with pytest.raises(WorkflowValidationError, match="not in the workflow"):
        workflow.validate()


@pytest.mark.parametrize("length", [2, 3, 5])
def test_a_cycle_is_refused_naming_its_tasks(
    workflow: Workflow, echo: TaskTemplate, length: int
) -> None:
    tasks = chain(echo, length)
    tasks[0].add_upstream(tasks[-1])
    workflow.add_tasks(tasks)

    with pytest.raises(WorkflowValidationError) as caught:
        workflow.validate()

    names = [task.name for task in tasks]
    cycle = caught.value.details["cycle"]
    assert cycle[0] == cycle[-1]
    assert sorted(cycle[:-1]) == sorted(names)
    assert "the tasks form a cycle" in caught.value.message
    assert " -> ".join(cycle) in caught.value.message


def test_a_cycle_is_found_among_tasks_outside_it(workflow: Workflow, echo: TaskTemplate) -> None:
    tasks = chain(echo, 6)  # 0 -> 1 -> ... -> 5; close 2 -> 3 -> 4 -> 2
    tasks[2].add_upstream(tasks[4])
    workflow.add_tasks(tasks)

    with pytest.raises(WorkflowValidationError) as caught:
        workflow.validate()

    cycle = caught.value.details["cycle"]
    assert sorted(set(cycle)) == ["echo_n-2", "echo_n-3", "echo_n-4"]


def test_a_long_cycle_is_shortened_in_the_message(workflow: Workflow, echo: TaskTemplate) -> None:
    tasks = chain(echo, 25)
    tasks[0].add_upstream(tasks[-1])
    workflow.add_tasks(tasks)

    with pytest.raises(WorkflowValidationError) as caught:
        workflow.validate()

    assert len(caught.value.details["cycle"]) == 20
    assert "(and 6 more)" in caught.value.message  # 26 entries: the first task closes it


def test_the_dag_is_checked_before_any_cluster_is_looked_up(
    workflow: Workflow, echo: TaskTemplate, cluster_lookups: list[str]
) -> None:
    tasks = chain(echo, 2)
    tasks[0].add_upstream(tasks[1])
    workflow.add_tasks(tasks)

    with pytest.raises(WorkflowValidationError, match="cycle"):
        workflow.validate()

    assert cluster_lookups == []


# --- validate(): clusters, queues and resources -----------------------------------------------


@pytest.fixture
def bare(tool: Tool) -> TaskTemplate:
    """A template with no default cluster."""
    return tool.get_task_template("bare", "bare {n}", node_args=["n"])


def test_a_task_without_any_cluster_is_refused(workflow: Workflow, bare: TaskTemplate) -> None:
    workflow.add_task(bare.create_task(n=1))

    with pytest.raises(WorkflowValidationError) as caught:
        workflow.validate()

    assert "task 'bare_n-1' has no cluster" in str(caught.value)


def test_an_unknown_cluster_is_an_invalid_resource(workflow: Workflow, bare: TaskTemplate) -> None:
    workflow.add_task(bare.create_task(n=1, cluster_name="nowhere"))

    with pytest.raises(InvalidResourceError, match="'nowhere'"):
        workflow.validate()


def test_an_unknown_queue_of_a_local_cluster_is_its_default_queue(
    workflow: Workflow, echo: TaskTemplate
) -> None:
    # The dummy cluster runs on one machine: Jobmon's "all.q" means its default queue.
    # (A scheduler's cluster refuses a queue it lacks: see test_resources.)
    workflow.add_task(echo.create_task(n=1, extra="", compute_resources={"queue": "all.q"}))

    workflow.validate()


@pytest.mark.parametrize(
    ("resources", "key", "shown", "queue", "limit"),
    [
        ({"memory": "100G"}, "memory", "'100G'", "default", "from 0 to 64"),
        ({"memory": 64.5}, "memory", "64.5", "default", "from 0 to 64"),
        ({"cores": 9}, "cores", "9", "default", "from 1 to 8"),
        ({"runtime": "2d"}, "runtime", "'2d'", "default", "from 1 to 86400"),
        ({"queue": "small", "memory": "8G"}, "memory", "'8G'", "small", "from 0 to 4"),
        ({"queue": "small", "runtime": "01:00:01"}, "runtime", "'01:00:01'", "small", "to 3600"),
        ({"queue": "small", "cores": "3"}, "cores", "'3'", "small", "from 1 to 2"),
    ],
    ids=[
        "memory-str",
        "memory-number",
        "cores",
        "runtime",
        "small-memory",
        "small-runtime",
        "small-cores-str",
    ],
)
def test_resources_above_the_queue_limits_are_refused(
    workflow: Workflow,
    echo: TaskTemplate,
    resources: dict[str, Any],
    key: str,
    shown: str,
    queue: str,
    limit: str,
) -> None:
    workflow.add_task(echo.create_task(n=1, extra="", compute_resources=resources))

    with pytest.raises(InvalidResourceError) as caught:
        workflow.validate()

    message = str(caught.value)
    assert f"task 'echo_n-1' asks for {key}={shown}" in message
    assert f"queue {queue!r} of cluster 'dummy'" in message
    assert limit in message
    assert caught.value.details == {"task_name": "echo_n-1", "resource": key, "queue": queue}


def test_resources_at_the_queue_limits_are_accepted(workflow: Workflow, echo: TaskTemplate) -> None:
    at_limits = {"memory": 64, "cores": 8, "runtime": 86400}
    workflow.add_task(echo.create_task(n=1, extra="", compute_resources=at_limits))

    workflow.validate()


@pytest.mark.parametrize(
    ("resources", "fragment"),
    [
        ({"memory": "lots"}, "memory 'lots' is not understood"),
        ({"memory": "-1G"}, "must be greater than zero"),
        ({"runtime": "soon"}, "runtime 'soon' is not understood"),
        ({"cores": "two"}, "cores 'two' is not a whole number"),
        ({"cores": 1.5}, "must be a whole number of at least 1"),
        ({"cores": 0}, "must be a whole number of at least 1"),
        ({"cores": True}, "is not a whole number"),
    ],
    ids=["memory-word", "memory-negative", "runtime-word", "cores-word", "cores-1.5", "0", "bool"],
)
def test_unreadable_resources_are_refused_naming_the_task(
    workflow: Workflow, echo: TaskTemplate, resources: dict[str, Any], fragment: str
) -> None:
    workflow.add_task(echo.create_task(n=1, extra="", compute_resources=resources))

    with pytest.raises(InvalidResourceError) as caught:
        workflow.validate()

    assert str(caught.value).startswith("task 'echo_n-1': ")
    assert fragment in str(caught.value)


def test_one_bad_task_among_many_is_found(workflow: Workflow, echo: TaskTemplate) -> None:
    workflow.add_tasks(echo.create_tasks(n=range(10), extra=""))
    workflow.add_task(echo.create_task(n=10, extra="", compute_resources={"cores": 64}))

    with pytest.raises(InvalidResourceError, match="task 'echo_n-10' asks for cores=64"):
        workflow.validate()


def test_adding_a_task_after_validation_is_validated_again(
    workflow: Workflow, echo: TaskTemplate
) -> None:
    workflow.add_task(echo.create_task(n=1, extra=""))
    workflow.validate()

    workflow.add_task(echo.create_task(n=2, extra="", compute_resources={"memory": "1T"}))

    with pytest.raises(InvalidResourceError, match="echo_n-2"):
        workflow.validate()


def test_fixing_a_template_default_after_a_failed_validation_is_seen(
    workflow: Workflow, echo: TaskTemplate
) -> None:
    echo.set_default_compute_resources_from_dict("dummy", {"memory": "100G"})
    workflow.add_task(echo.create_task(n=1, extra=""))
    with pytest.raises(InvalidResourceError):
        workflow.validate()

    echo.set_default_compute_resources_from_dict("dummy", {"memory": "4G"})

    workflow.validate()
