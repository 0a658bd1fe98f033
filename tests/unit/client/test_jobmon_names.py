"""Jobmon's spellings of the authoring API, offline: each alias does what its herdsman name
does, and each Jobmon exception is raised where Jobmon raises it (docs/jobmon.md)."""

from __future__ import annotations

import getpass
import logging
from pathlib import Path
from typing import Any, cast

import pytest
from tests.unit.client.conftest import FakeClusterRequester

from herdsman.client.api import Array, Task, TaskTemplate, Tool, Workflow
from herdsman.core.constants import SpecialChars, TaskStatus
from herdsman.core.errors import WorkflowValidationError
from herdsman.core.exceptions import (
    CyclicGraphError,
    DuplicateNodeArgsError,
    EmptyWorkflowError,
    InvalidMemoryFormat,
    NodeDependencyNotExistError,
)
from herdsman.core.requester import Requester
from herdsman.core.units import parse_memory


@pytest.fixture
def fit(tool: Tool) -> TaskTemplate:
    return tool.get_task_template(
        "fit", "fit {loc} {year} {data}", node_args=["loc", "year"], task_args=["data"]
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "resources.yaml"
    path.write_text(text)
    return path


# --- Tool ---------------------------------------------------------------------------------------


def test_a_tool_without_a_name_is_named_as_jobmon_names_it(requester: FakeClusterRequester) -> None:
    tool = Tool(requester=cast(Requester, requester))

    assert tool.name == f"unknown-{getpass.getuser()}"


def test_create_workflow_takes_jobmons_positional_order(tool: Tool) -> None:
    workflow = tool.create_workflow("my-args", "my-name", "my description")

    assert (workflow.workflow_args, workflow.name, workflow.description) == (
        "my-args",
        "my-name",
        "my description",
    )


def test_create_workflows_scales_set_applies_on_its_default_cluster(tool: Tool) -> None:
    workflow = tool.create_workflow(
        default_cluster_name="dummy", default_resource_scales_set={"memory": 0.9}
    )

    assert workflow.default_resource_scales_set == {"dummy": {"memory": 0.9}}


def test_get_task_template_takes_max_attempts(tool: Tool) -> None:
    template = tool.get_task_template("t", "echo {x}", node_args=["x"], max_attempts=7)

    assert template.default_max_attempts == 7
    with pytest.raises(WorkflowValidationError, match="not both"):
        tool.get_task_template(
            "t", "echo {x}", node_args=["x"], max_attempts=1, **{"default_max_attempts": 2}
        )


def test_tool_yaml_in_jobmons_argument_order(tool: Tool, tmp_path: Path, fit: TaskTemplate) -> None:
    path = write(
        tmp_path,
        "tool_resources:\n  dummy: {memory: 2G}\n  other: {memory: 9G}\n"
        "task_template_resources:\n  fit:\n    dummy: {memory: 8G}\n",
    )

    tool.set_default_compute_resources_from_yaml("dummy", path, set_task_templates=True)

    assert tool.default_cluster_name == "dummy"
    assert tool.default_compute_resources_set == {"dummy": {"memory": "2G"}}
    assert fit.default_compute_resources_set == {"dummy": {"memory": "8G"}}


def test_tool_yaml_missing_a_cluster_raises_unless_told_to_ignore(
    tool: Tool, tmp_path: Path
) -> None:
    path = write(tmp_path, "tool_resources:\n  other: {memory: 9G}\n")

    with pytest.raises(ValueError, match="no entry for cluster 'dummy'"):
        tool.set_default_compute_resources_from_yaml("dummy", path)
    tool.set_default_compute_resources_from_yaml("dummy", path, ignore_missing_keys=True)
    assert tool.default_compute_resources_set == {}


def test_yaml_scales_sections_are_read(tool: Tool, tmp_path: Path, fit: TaskTemplate) -> None:
    path = write(
        tmp_path,
        "tool_scales:\n  dummy: {memory: 0.3}\n"
        "task_template_scales:\n  fit:\n    dummy: {runtime: 0.8}\n",
    )

    tool.set_default_resource_scales_from_yaml("dummy", path, set_task_templates=True)

    assert tool.default_resource_scales_set == {"dummy": {"memory": 0.3}}
    assert fit.default_resource_scales_set == {"dummy": {"runtime": 0.8}}


def test_get_task_template_reads_its_scales_from_yaml(tool: Tool, tmp_path: Path) -> None:
    path = write(tmp_path, "task_template_scales:\n  plot:\n    dummy: {memory: 2.0}\n")

    template = tool.get_task_template("plot", "plot {x}", node_args=["x"], yaml_file=path)

    assert template.default_resource_scales_set == {"dummy": {"memory": 2.0}}


def test_update_and_set_from_dict_on_the_tool(tool: Tool) -> None:
    tool.set_default_compute_resources_from_dict("dummy", {"memory": "1G", "cores": 2})
    tool.update_default_compute_resources("dummy", cores=4)
    tool.set_default_resource_scales_from_dict("dummy", {"memory": 0.2})
    tool.update_default_resource_scales("dummy", runtime=0.4)

    assert tool.default_cluster_name == "dummy"  # the first cluster given becomes the default
    assert tool.default_compute_resources_set == {"dummy": {"memory": "1G", "cores": 4}}
    assert tool.default_resource_scales_set == {"dummy": {"memory": 0.2, "runtime": 0.4}}
    assert tool.active_task_templates is tool.task_templates


# --- scales per cluster reach the resolver ------------------------------------------------------


def test_per_cluster_scales_come_before_scales_for_any_cluster(
    tool: Tool, fit: TaskTemplate
) -> None:
    tool.set_default_cluster_name("dummy")
    tool.set_default_resource_scales({"memory": 0.1})
    workflow = tool.create_workflow()
    workflow.set_default_resource_scales_from_dict("dummy", {"memory": 0.7})
    workflow.set_default_resource_scales_from_dict("other", {"memory": 0.9})
    task = fit.create_task(loc=1, year=2000, data="d")
    workflow.add_task(task)

    assert workflow.resolver().resource_scales(task) == {"memory": 0.7}
    fit.update_default_resource_scales("dummy", memory=0.5)
    assert workflow.resolver().resource_scales(task) == {"memory": 0.5}


# --- TaskTemplate versions ----------------------------------------------------------------------


def test_template_versions_by_jobmons_names(fit: TaskTemplate) -> None:
    first = fit.active_task_template_version
    second = fit.get_task_template_version(
        "fit2 {loc} {year} {data}",
        node_args=["loc", "year"],
        task_args=["data"],
        default_cluster_name="dummy",
        default_compute_resources={"memory": "1G"},
        default_max_attempts=5,
    )

    assert fit.task_template_versions == [first, second]
    assert fit.active_task_template_version is second
    assert fit.default_compute_resources_set == {"dummy": {"memory": "1G"}}
    assert fit.default_max_attempts == 5
    assert first is not None
    fit.set_active_task_template_version(first)
    assert fit.active_task_template_version is first
    fit.set_active_task_template_version_id("latest")
    assert fit.active_task_template_version is second
    first.id = 41
    fit.set_active_task_template_version_id(41)
    assert fit.active_task_template_version is first
    with pytest.raises(WorkflowValidationError, match="no version with id 99"):
        fit.set_active_task_template_version_id(99)
    fit.load_task_template_versions()  # nothing to load; it must not fail


def test_template_yaml_for_one_cluster(fit: TaskTemplate, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "task_template_resources:\n  fit:\n    dummy: {memory: 3G}\n"
        "task_template_scales:\n  fit:\n    dummy: {memory: 0.6}\n",
    )

    fit.set_default_compute_resources_from_yaml(path, "dummy")
    fit.set_default_resource_scales_from_yaml(path, "dummy")

    assert fit.default_compute_resources_set == {"dummy": {"memory": "3G"}}
    assert fit.default_resource_scales_set == {"dummy": {"memory": 0.6}}
    with pytest.raises(WorkflowValidationError, match="name the cluster"):
        fit.set_default_compute_resources_from_yaml(path)


# --- Task ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["1st", "with space", "a/b", "it's", 'say"hi"', "back\\slash"])
def test_explicit_names_jobmon_refuses_are_refused(fit: TaskTemplate, name: str) -> None:
    with pytest.raises(ValueError, match="job name"):
        fit.create_task(name=name, loc=1, year=2000, data="d")
    with pytest.raises(ValueError):
        Task.is_valid_job_name(name)


def test_default_names_and_plain_explicit_names_are_accepted(fit: TaskTemplate) -> None:
    assert fit.create_task(loc=1, year=2000, data="d").name == "fit_loc-1_year-2000"
    assert fit.create_task(name="", loc=1, year=2000, data="d").name == "fit_loc-1_year-2000"
    assert fit.create_task(name="fit.v2-a_b", loc=1, year=2000, data="d").name == "fit.v2-a_b"
    assert Task.is_valid_job_name("fit_1")
    assert set(SpecialChars.ILLEGAL_SPECIAL_CHARACTERS) == {"/", "\\", "'", '"', " "}


def test_compute_resources_may_be_a_callable(fit: TaskTemplate) -> None:
    def resources() -> dict[str, Any]:
        return {"memory": "1G"}

    task = fit.create_task(compute_resources=resources, loc=1, year=2000, data="d")
    tasks = fit.create_tasks(compute_resources=resources, loc=[1, 2], year=2000, data="d")

    assert task.compute_resources is None and task.compute_resources_callable is resources
    assert all(t.compute_resources_callable is resources for t in tasks)
    with pytest.raises(WorkflowValidationError, match="pass one of them"):
        fit.create_task(
            compute_resources=resources,
            compute_resources_callable=resources,
            loc=1,
            year=2000,
            data="d",
        )


def test_add_downstreams_and_attributes_before_binding(fit: TaskTemplate) -> None:
    first = fit.create_task(loc=1, year=2000, data="d")
    later = [fit.create_task(loc=n, year=2001, data="d") for n in (1, 2)]

    first.add_downstreams(later)
    first.add_attribute("stage", 1)
    first.add_attributes({"model": "v2", "stage": "2"})

    assert first.downstream_tasks == frozenset(later)
    assert all(task.upstream_tasks == {first} for task in later)
    assert first.task_attributes == {"stage": "2", "model": "v2"}


def test_final_status_is_there_only_after_a_run(fit: TaskTemplate) -> None:
    task = fit.create_task(loc=1, year=2000, data="d")

    with pytest.raises(AttributeError, match="has not run"):
        _ = task.final_status
    task.final_status = TaskStatus.DONE
    assert task.final_status == "D" and task.status == "D"


def test_errors_and_usage_need_a_bound_task(fit: TaskTemplate) -> None:
    task = fit.create_task(loc=1, year=2000, data="d")

    with pytest.raises(WorkflowValidationError, match="not bound"):
        task.get_errors()
    with pytest.raises(WorkflowValidationError, match="not bound"):
        task.resource_usage()


# --- Array --------------------------------------------------------------------------------------


def test_array_create_tasks_shares_the_arrays_args_and_settings(
    fit: TaskTemplate, workflow: Workflow
) -> None:
    array = fit.create_array(loc=[1], year=2000, data="d", max_attempts=4, name="fits")
    workflow.add_array(array)

    more = array.create_tasks(loc=[2, 3], year=[2001])

    assert array.name == "fits" and array.task_template_version is fit.active_version
    assert [task.node_args for task in more] == [
        {"loc": "2", "year": "2001"},
        {"loc": "3", "year": "2001"},
    ]
    assert all(task.task_args == {"data": "d"} and task.max_attempts == 4 for task in more)
    assert all(task.array is array for task in array.tasks) and len(array.tasks) == 3
    assert len(workflow.tasks) == 3  # the array was in the workflow, so its new tasks are too


def test_expand_dict_yields_every_combination() -> None:
    assert list(Array.expand_dict(a=[1, 2], b=["x"])) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert list(Array.expand_dict()) == []


def test_array_get_tasks_by_node_args_takes_lists(fit: TaskTemplate) -> None:
    array = fit.create_array(loc=[1, 2, 3], year=[2000, 2001], data="d")

    found = array.get_tasks_by_node_args(loc=[1, 3], year=2000)

    assert [task.node_args["loc"] for task in found] == ["1", "3"]


def test_an_array_outside_a_workflow_cannot_bind(fit: TaskTemplate) -> None:
    array = fit.create_array(loc=[1], year=2000, data="d")

    with pytest.raises(WorkflowValidationError, match="add_array"):
        array.bind()
    assert not array.is_bound


def test_create_tasks_max_concurrently_running_becomes_the_templates_limit(
    fit: TaskTemplate, workflow: Workflow
) -> None:
    tasks = fit.create_tasks(loc=[1, 2], year=2000, data="d", max_concurrently_running=3)

    workflow.add_tasks(tasks)

    assert workflow.array_limit(fit.active_version) == 3


# --- Workflow -----------------------------------------------------------------------------------


def test_get_tasks_by_node_args_with_a_list_means_any_of_its_values(
    fit: TaskTemplate, workflow: Workflow
) -> None:
    workflow.add_tasks(fit.create_tasks(loc=[1, 2, 3], year=[2000, 2001], data="d"))

    found = workflow.get_tasks_by_node_args("fit", loc=[1, 2], year=2001)

    assert sorted(task.node_args["loc"] for task in found) == ["1", "2"]
    assert workflow.get_tasks_by_node_args("fit", loc=(9,)) == []
    with pytest.raises(ValueError, match="no tasks of template 'nope'"):
        workflow.get_tasks_by_node_args("nope", loc=1)


def test_workflow_defaults_by_jobmons_names(workflow: Workflow, tmp_path: Path) -> None:
    workflow.set_default_cluster_name("other")
    workflow.set_default_max_attempts(6)
    workflow.set_default_compute_resources_from_dict("other", {"memory": "5G"})
    workflow.set_default_compute_resources_from_yaml(
        "dummy", write(tmp_path, "tool_resources:\n  dummy: {cores: 2}\n")
    )

    assert workflow.default_cluster_name == "other"
    assert workflow.default_max_attempts == 6
    assert workflow.default_compute_resources_set == {
        "other": {"memory": "5G"},
        "dummy": {"cores": 2},
    }
    assert workflow.last_workflow_run_id is None
    assert (workflow._num_newly_completed, workflow._num_previously_completed) == (0, 0)
    assert not workflow.is_bound


def test_add_attributes_before_binding_stay_on_the_workflow(workflow: Workflow) -> None:
    workflow.add_attributes({"release": 16, "note": "x"})

    assert workflow.workflow_attributes == {"release": "16", "note": "x"}


def test_arrays_group_the_tasks_by_template(fit: TaskTemplate, workflow: Workflow) -> None:
    workflow.add_tasks([fit.create_task(loc=n, year=2000, data="d") for n in (1, 2)])

    assert list(workflow.arrays) == ["fit"]
    assert len(workflow.arrays["fit"].tasks) == 2


def test_task_errors_is_empty_before_a_run(fit: TaskTemplate, workflow: Workflow) -> None:
    workflow.add_task(fit.create_task(loc=1, year=2000, data="d"))

    assert workflow.task_errors == {}


def test_validate_logs_instead_of_raising_when_asked(
    workflow: Workflow, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(EmptyWorkflowError):
        workflow.validate()
    with caplog.at_level(logging.WARNING):
        workflow.validate(strict=False, raise_on_error=False)


# --- the exceptions are raised where Jobmon raises them -----------------------------------------


def test_a_duplicate_node_is_a_duplicate_node_args_error(
    fit: TaskTemplate, workflow: Workflow
) -> None:
    workflow.add_task(fit.create_task(loc=1, year=2000, data="d"))

    with pytest.raises(DuplicateNodeArgsError):
        workflow.add_task(fit.create_task(loc=1, year=2000, data="other"))


def test_an_upstream_outside_the_workflow_is_a_node_dependency_error(
    fit: TaskTemplate, workflow: Workflow
) -> None:
    outside = fit.create_task(loc=1, year=2000, data="d")
    inside = fit.create_task(loc=2, year=2000, data="d", upstream_tasks=[outside])
    workflow.set_default_cluster_name("dummy")
    workflow.add_task(inside)

    with pytest.raises(NodeDependencyNotExistError):
        workflow.validate()


def test_a_cycle_is_a_cyclic_graph_error(fit: TaskTemplate, workflow: Workflow) -> None:
    a = fit.create_task(loc=1, year=2000, data="d")
    b = fit.create_task(loc=2, year=2000, data="d", upstream_tasks=[a])
    a.add_upstream(b)
    workflow.set_default_cluster_name("dummy")
    workflow.add_tasks([a, b])

    with pytest.raises(CyclicGraphError):
        workflow.validate()


def test_a_memory_value_not_understood_is_an_invalid_memory_format() -> None:
    with pytest.raises(InvalidMemoryFormat):
        parse_memory("lots")
