"""Resolution of per-task settings along Task -> TaskTemplate -> Workflow -> Tool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from herdsman import InvalidResourceError, Task, TaskTemplate, Tool, Workflow
from herdsman.client.resolution import DEFAULT_MAX_ATTEMPTS, Resolver
from herdsman.core.errors import NotFoundError
from herdsman.core.schemas.client import ClusterOut

LEVELS = ("task", "template", "workflow", "tool")


@pytest.fixture
def template(tool: Tool) -> TaskTemplate:
    return tool.get_task_template("fit", "fit {n}", node_args=["n"])


def resolve_task(
    tool: Tool,
    template: TaskTemplate,
    *,
    task_settings: dict[str, Any] | None = None,
    workflow_settings: dict[str, Any] | None = None,
) -> tuple[Workflow, Task]:
    """A workflow with one task of ``template``; settings go to create_task/create_workflow."""
    workflow = tool.create_workflow(**(workflow_settings or {}))
    task = template.create_task(n=1, **(task_settings or {}))
    workflow.add_task(task)
    return workflow, task


# --- cluster name -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "levels",
    [
        ("tool",),
        ("workflow",),
        ("template",),
        ("task",),
        ("workflow", "tool"),
        ("template", "workflow", "tool"),
        ("task", "template", "workflow", "tool"),
        ("task", "tool"),
        ("template", "tool"),
        ("task", "workflow"),
    ],
    ids=lambda levels: "+".join(levels),
)
def test_the_most_specific_cluster_name_wins(
    tool: Tool, template: TaskTemplate, levels: tuple[str, ...]
) -> None:
    if "tool" in levels:
        tool.set_default_cluster_name("c-tool")
    if "template" in levels:
        template.set_default_cluster_name("c-template")
    workflow, task = resolve_task(
        tool,
        template,
        task_settings={"cluster_name": "c-task"} if "task" in levels else None,
        workflow_settings={"default_cluster_name": "c-workflow"} if "workflow" in levels else None,
    )

    expected = next(f"c-{level}" for level in LEVELS if level in levels)
    assert workflow.resolver().cluster_name(task) == expected


def test_get_task_template_sets_the_template_cluster(tool: Tool) -> None:
    tool.set_default_cluster_name("c-tool")
    template = tool.get_task_template("fit", "fit {n}", node_args=["n"], default_cluster_name="c1")

    workflow, task = resolve_task(tool, template)

    assert workflow.resolver().cluster_name(task) == "c1"


# --- compute resources ------------------------------------------------------------------------


def test_resources_merge_key_by_key_the_most_specific_winning(
    tool: Tool, template: TaskTemplate
) -> None:
    tool.set_default_cluster_name("dummy")
    tool.set_default_compute_resources_from_dict(
        "dummy", {"cores": 1, "memory": "1G", "runtime": 60, "queue": "default"}
    )
    template.set_default_compute_resources_from_dict("dummy", {"runtime": 180, "cores": 3})
    workflow, task = resolve_task(
        tool,
        template,
        task_settings={"compute_resources": {"cores": 2}},
        workflow_settings={
            "default_compute_resources_set": {"dummy": {"memory": "2G", "runtime": 120}}
        },
    )

    resolved = workflow.resolver().resources(task)

    assert resolved.original == {"cores": 2, "memory": "2G", "runtime": 180, "queue": "default"}
    assert resolved.validated.requested == {
        "cores": 2,
        "memory": 2.0,
        "runtime": 180,
        "queue": "default",
    }
    assert resolved.cluster.name == "dummy"


@pytest.mark.parametrize("highest", LEVELS)
def test_each_level_overrides_the_levels_below(
    tool: Tool, template: TaskTemplate, highest: str
) -> None:
    """Every level at and below ``highest`` asks for memory; ``highest`` must win."""
    below = LEVELS[LEVELS.index(highest) :]
    memory = {level: f"{LEVELS.index(level) + 1}G" for level in below}  # task 1G ... tool 4G
    tool.set_default_cluster_name("dummy")
    if "tool" in memory:
        tool.set_default_compute_resources_from_dict("dummy", {"memory": memory["tool"]})
    if "template" in memory:
        template.set_default_compute_resources_from_dict("dummy", {"memory": memory["template"]})
    workflow, task = resolve_task(
        tool,
        template,
        task_settings={"compute_resources": {"memory": memory["task"]}}
        if "task" in memory
        else None,
        workflow_settings=(
            {"default_compute_resources_set": {"dummy": {"memory": memory["workflow"]}}}
            if "workflow" in memory
            else None
        ),
    )

    assert workflow.resolver().resources(task).original == {"memory": memory[highest]}


def test_resources_of_another_cluster_do_not_apply(tool: Tool, template: TaskTemplate) -> None:
    tool.set_default_cluster_name("dummy")
    tool.set_default_compute_resources_from_dict("other", {"memory": "100G"})
    template.set_default_compute_resources_from_dict("other", {"cores": 16})
    workflow, task = resolve_task(tool, template)

    resolved = workflow.resolver().resources(task)

    assert resolved.original == {}
    assert resolved.validated.requested == {"queue": "default"}


def test_the_tasks_cluster_picks_that_clusters_defaults(tool: Tool, template: TaskTemplate) -> None:
    tool.set_default_cluster_name("dummy")
    tool.set_default_compute_resources_from_dict("dummy", {"memory": "1G"})
    tool.set_default_compute_resources_from_dict("other", {"memory": "200G"})
    workflow, task = resolve_task(tool, template, task_settings={"cluster_name": "other"})

    resolved = workflow.resolver().resources(task)

    assert resolved.cluster.name == "other"
    assert resolved.original == {"memory": "200G"}
    assert resolved.validated.queue.name == "batch"
    assert resolved.validated.requested == {"memory": 200.0, "queue": "batch"}


def test_task_resources_do_not_leak_into_other_tasks(tool: Tool, template: TaskTemplate) -> None:
    template.set_default_cluster_name("dummy")
    template.set_default_compute_resources_from_dict("dummy", {"memory": "1G"})
    workflow = tool.create_workflow()
    plain = template.create_task(n=1)
    special = template.create_task(n=2, compute_resources={"memory": "8G"})
    workflow.add_tasks([plain, special])
    resolver = workflow.resolver()

    assert resolver.resources(special).original == {"memory": "8G"}
    assert resolver.resources(plain).original == {"memory": "1G"}
    assert template.default_compute_resources_set == {"dummy": {"memory": "1G"}}
    assert special.compute_resources == {"memory": "8G"}


def test_yaml_resources_reach_the_resolved_request(tool: Tool, tmp_path: Path) -> None:
    path = tmp_path / "resources.yaml"
    path.write_text(
        "tool_resources:\n  dummy: {memory: 2G, runtime: '00:10:00'}\n"
        "task_template_resources:\n  fit:\n    dummy: {memory: 4G}\n"
    )
    tool.set_default_compute_resources_from_yaml("dummy", path)
    template = tool.get_task_template("fit", "fit {n}", node_args=["n"], yaml_file=path)
    workflow, task = resolve_task(tool, template)

    resolved = workflow.resolver().resources(task)

    assert resolved.validated.requested == {"memory": 4.0, "runtime": 600, "queue": "default"}


# --- clusters through a lookup ----------------------------------------------------------------


def test_a_resolver_looks_each_cluster_up_once(
    tool: Tool, template: TaskTemplate, dummy_cluster: ClusterOut
) -> None:
    template.set_default_cluster_name("dummy")
    workflow = tool.create_workflow()
    workflow.add_tasks(template.create_tasks(n=range(3)))
    workflow.add_task(template.create_task(n=99, compute_resources={"cores": 2}))
    asked: list[str] = []

    def lookup(name: str) -> ClusterOut:
        asked.append(name)
        return dummy_cluster

    resolver = Resolver(workflow, lookup)
    for task in workflow.tasks.values():
        resolver.resources(task)

    assert asked == ["dummy"]


def test_a_lookup_that_finds_nothing_is_an_invalid_resource(
    tool: Tool, template: TaskTemplate
) -> None:
    workflow, task = resolve_task(tool, template, task_settings={"cluster_name": "gone"})

    def lookup(name: str) -> ClusterOut:
        raise NotFoundError(f"cluster {name!r} is not configured")

    with pytest.raises(InvalidResourceError, match="cluster 'gone' is not configured"):
        Resolver(workflow, lookup).resources(task)


# --- max_attempts and resource_scales ---------------------------------------------------------


def set_level(
    level: str, tool: Tool, template: TaskTemplate, setting: str, value: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set ``setting`` on ``level``; returns (task_settings, workflow_settings) to create with."""
    if level == "tool":
        getattr(tool, f"set_default_{setting}")(value)
    elif level == "template":
        getattr(template, f"set_default_{setting}")(value)
    elif level == "workflow":
        return {}, {f"default_{setting}": value}
    else:
        return {setting: value}, {}
    return {}, {}


@pytest.mark.parametrize(
    "levels",
    [("tool",), ("workflow", "tool"), ("template", "workflow", "tool"), LEVELS, ("task",)],
    ids=lambda levels: "+".join(levels),
)
def test_the_most_specific_max_attempts_wins(
    tool: Tool, template: TaskTemplate, levels: tuple[str, ...]
) -> None:
    attempts = {"task": 1, "template": 2, "workflow": 4, "tool": 5}
    task_settings: dict[str, Any] = {}
    workflow_settings: dict[str, Any] = {}
    for level in levels:
        for_task, for_workflow = set_level(level, tool, template, "max_attempts", attempts[level])
        task_settings.update(for_task)
        workflow_settings.update(for_workflow)
    workflow, task = resolve_task(
        tool, template, task_settings=task_settings, workflow_settings=workflow_settings
    )

    assert workflow.resolver().max_attempts(task) == attempts[levels[0]]


def test_max_attempts_defaults_to_three(tool: Tool, template: TaskTemplate) -> None:
    workflow, task = resolve_task(tool, template)

    assert DEFAULT_MAX_ATTEMPTS == 3
    assert workflow.resolver().max_attempts(task) == 3


@pytest.mark.parametrize(
    "levels",
    [("tool",), ("workflow", "tool"), ("template", "workflow", "tool"), LEVELS, ("task",)],
    ids=lambda levels: "+".join(levels),
)
def test_the_most_specific_resource_scales_win(
    tool: Tool, template: TaskTemplate, levels: tuple[str, ...]
) -> None:
    scales = {level: {"memory": 0.1 * (i + 1)} for i, level in enumerate(LEVELS)}
    task_settings: dict[str, Any] = {}
    workflow_settings: dict[str, Any] = {}
    for level in levels:
        for_task, for_workflow = set_level(level, tool, template, "resource_scales", scales[level])
        task_settings.update(for_task)
        workflow_settings.update(for_workflow)
    workflow, task = resolve_task(
        tool, template, task_settings=task_settings, workflow_settings=workflow_settings
    )

    assert workflow.resolver().resource_scales(task) == scales[levels[0]]


def test_resource_scales_are_not_merged_across_levels(tool: Tool, template: TaskTemplate) -> None:
    tool.set_default_resource_scales({"memory": 0.9, "runtime": 0.9})
    workflow, task = resolve_task(
        tool, template, task_settings={"resource_scales": {"memory": 0.1}}
    )

    assert workflow.resolver().resource_scales(task) == {"memory": 0.1}


def test_resource_scales_default_to_a_half(tool: Tool, template: TaskTemplate) -> None:
    workflow, task = resolve_task(tool, template)

    assert workflow.resolver().resource_scales(task) == {"memory": 0.5, "runtime": 0.5}
