"""TaskTemplate: versions, command-template checks, template defaults, create_tasks/create_array."""

from __future__ import annotations

import shlex
import subprocess
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from herdsman import Array, TaskTemplate, Tool, WorkflowValidationError

# --- versions ---------------------------------------------------------------------------------


def test_same_command_and_split_reuse_the_template_and_its_version(tool: Tool) -> None:
    first = tool.get_task_template("fit", "fit --loc {location}", node_args=["location"])
    version = first.active_version

    again = tool.get_task_template("fit", "fit --loc {location}", node_args=["location"])

    assert again is first
    assert again.active_version is version
    assert first.versions == [version]
    assert tool.task_templates == {"fit": first}


def test_a_new_command_makes_a_new_active_version_and_keeps_the_old(tool: Tool) -> None:
    template = tool.get_task_template("fit", "fit {location}", node_args=["location"])
    old = template.active_version

    tool.get_task_template("fit", "fit --v2 {location}", node_args=["location"])

    new = template.active_version
    assert new is not old
    assert new.command_template == "fit --v2 {location}"
    assert old.command_template == "fit {location}"
    assert template.versions == [old, new]


def test_asking_for_an_old_command_again_reactivates_its_version(tool: Tool) -> None:
    template = tool.get_task_template("fit", "fit {location}", node_args=["location"])
    old = template.active_version
    tool.get_task_template("fit", "fit --v2 {location}", node_args=["location"])

    tool.get_task_template("fit", "fit {location}", node_args=["location"])

    assert template.active_version is old
    assert len(template.versions) == 2


@pytest.mark.parametrize(
    "split",
    [
        {"node_args": ["a", "b"]},
        {"node_args": ["a"], "op_args": ["b"]},
        {"node_args": ["b"], "task_args": ["a"]},
    ],
    ids=["task-arg-becomes-node-arg", "task-arg-becomes-op-arg", "kinds-swapped"],
)
def test_another_arg_split_of_the_same_command_is_a_new_version(
    tool: Tool, split: dict[str, Any]
) -> None:
    template = tool.get_task_template("fit", "fit {a} {b}", node_args=["a"], task_args=["b"])
    first = template.active_version

    tool.get_task_template("fit", "fit {a} {b}", **split)

    assert template.active_version is not first
    assert len(template.versions) == 2
    new = template.active_version
    assert new.node_args == tuple(split.get("node_args", ()))
    assert new.task_args == tuple(split.get("task_args", ()))
    assert new.op_args == tuple(split.get("op_args", ()))


def test_templates_of_different_names_are_independent(tool: Tool) -> None:
    fit = tool.get_task_template("fit", "fit {a}", node_args=["a"])
    plot = tool.get_task_template("plot", "fit {a}", node_args=["a"])

    assert fit is not plot
    assert fit.active_version is not plot.active_version
    assert tool.task_templates == {"fit": fit, "plot": plot}


def test_a_task_keeps_the_version_it_was_created_from(tool: Tool) -> None:
    template = tool.get_task_template("fit", "fit {a}", node_args=["a"])
    task = template.create_task(a=1)

    tool.get_task_template("fit", "fit --v2 {a}", node_args=["a"])

    assert task.template_version is template.versions[0]
    assert task.command == "fit 1"
    assert template.create_task(a=1).command == "fit --v2 1"


def test_a_template_without_a_version_cannot_create_tasks(tool: Tool) -> None:
    template = TaskTemplate(tool, "empty")

    with pytest.raises(WorkflowValidationError, match="has no command template"):
        template.create_task()


# --- command template checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "args", "fragments"),
    [
        pytest.param(
            "run {a} {b}",
            {"node_args": ["a"]},
            ["['b']", "not declared"],
            id="undeclared-field",
        ),
        pytest.param(
            "run {a}",
            {"node_args": ["a"], "task_args": ["b"]},
            ["does not use declared args", "['b']"],
            id="unused-declared-arg",
        ),
        pytest.param(
            "run {a}",
            {"node_args": ["a"], "op_args": ["unused_op"]},
            ["does not use declared args", "['unused_op']"],
            id="unused-op-arg",
        ),
        pytest.param("run {}", {}, ["'{}'", "name every field"], id="positional-field"),
        pytest.param("run {} {a}", {"node_args": ["a"]}, ["'{}'"], id="positional-and-named"),
        pytest.param("run {0}", {}, ["['0']", "not declared"], id="numbered-field"),
        pytest.param(
            "run {a}",
            {"node_args": ["a"], "task_args": ["a"]},
            ["['a']", "more than once"],
            id="arg-in-two-kinds",
        ),
        pytest.param(
            "run {a}",
            {"node_args": ["a", "a"]},
            ["['a']", "more than once"],
            id="arg-twice-in-one-kind",
        ),
        pytest.param("run {a", {"node_args": ["a"]}, ["not a valid format string"], id="open"),
        pytest.param("run a}", {"node_args": []}, ["not a valid format string"], id="close"),
    ],
)
def test_bad_command_templates_are_refused_with_the_problem_named(
    tool: Tool, command: str, args: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        tool.get_task_template("broken", command, **args)

    message = str(caught.value)
    assert "'broken'" in message
    for fragment in fragments:
        assert fragment in message


def test_missing_and_unused_args_are_reported_together(tool: Tool) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        tool.get_task_template("t", "run {a} {b}", node_args=["a", "c"])

    message = str(caught.value)
    assert "['b']" in message
    assert "['c']" in message


def test_a_refused_command_leaves_the_active_version_unchanged(tool: Tool) -> None:
    template = tool.get_task_template("fit", "fit {a}", node_args=["a"])
    good = template.active_version

    with pytest.raises(WorkflowValidationError):
        tool.get_task_template("fit", "fit {a} {undeclared}", node_args=["a"])

    assert template.active_version is good
    assert template.versions == [good]


@pytest.mark.parametrize(
    ("command", "node_args", "values", "rendered"),
    [
        ("echo {{literal}} {a}", ["a"], {"a": 1}, "echo {literal} 1"),
        ("echo {a[0]}", ["a"], {"a": "xyz"}, "echo x"),
        ("echo {a}{a}", ["a"], {"a": 7}, "echo 77"),
        ("echo hello", [], {}, "echo hello"),
    ],
    ids=["escaped-braces", "index-into-value", "field-used-twice", "no-fields"],
)
def test_accepted_command_templates_render(
    tool: Tool, command: str, node_args: list[str], values: dict[str, Any], rendered: str
) -> None:
    template = tool.get_task_template("t", command, node_args=node_args)

    assert template.create_task(**values).command == rendered


@pytest.mark.parametrize(
    ("command", "node_args", "values"),
    [
        ("run {a:>{width}}", ["a"], {"a": 1}),  # 'width' is used (in the spec) but undeclared
        ("run {path.stem}", ["path"], {"path": "/data/in.csv"}),  # attribute of a str
        ("run {x:.2f}", ["x"], {"x": 0.5}),  # float format code applied to a str
    ],
    ids=["field-in-format-spec", "attribute-access", "numeric-format-spec"],
)
def test_a_command_template_that_is_accepted_also_renders(
    tool: Tool, command: str, node_args: list[str], values: dict[str, Any]
) -> None:
    try:
        template = tool.get_task_template("t", command, node_args=node_args)
    except WorkflowValidationError:
        return  # refusing the template up front is a fine outcome
    task = template.create_task(**values)
    assert isinstance(task.command, str)


# --- shell quoting ----------------------------------------------------------------------------

# Anything a shell command can carry: every character but NUL and lone surrogates.
shell_text = st.text(
    alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
)


@given(value=shell_text)
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_quoted_field_is_one_word_for_the_shell_whatever_the_value(
    tool: Tool, value: str
) -> None:
    template = tool.get_task_template("quoted", "prog {value!q} --end", node_args=["value"])

    command = template.create_task(value=value).command

    assert shlex.split(command) == ["prog", value, "--end"]


@pytest.mark.parametrize("value", ["a b", "it's", "x; rm -rf /tmp/nothing", "$HOME `id` *", ""])
def test_bash_passes_a_quoted_value_unchanged(tool: Tool, value: str) -> None:
    template = tool.get_task_template("quoted", "printf %s {value!q}", node_args=["value"])
    command = template.create_task(value=value).command

    result = subprocess.run(
        ["/bin/bash", "-c", command], capture_output=True, text=True, check=True, timeout=30
    )

    assert result.stdout == value


def test_an_unquoted_field_pastes_the_value_as_it_is(tool: Tool) -> None:
    template = tool.get_task_template(
        "mixed", "echo {value} {value!q} {value!q:>12}", node_args=["value"]
    )

    assert template.create_task(value="a b").command == "echo a b 'a b'        'a b'"


def test_quoted_task_and_op_args_render(tool: Tool) -> None:
    template = tool.get_task_template(
        "kinds", "run {n} {t!q} {o!q}", node_args=["n"], task_args=["t"], op_args=["o"]
    )

    assert template.create_task(n="1", t="two words", o="it's").command == (
        "run 1 'two words' 'it'\"'\"'s'"
    )


def test_an_unknown_conversion_is_refused(tool: Tool) -> None:
    with pytest.raises(WorkflowValidationError, match=r"specifier z.*'\{name!q\}'"):
        tool.get_task_template("bad", "echo {a!z}", node_args=["a"])


# --- template names and defaults --------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "x" * 256], ids=["empty", "256-chars"])
def test_bad_template_names_are_refused(tool: Tool, name: str) -> None:
    with pytest.raises(WorkflowValidationError, match="template name"):
        tool.get_task_template(name, "run")


def test_a_255_character_template_name_is_accepted(tool: Tool) -> None:
    name = "t" * 255
    assert tool.get_task_template(name, "run").template_name == name


def test_get_task_template_sets_the_template_defaults(tool: Tool) -> None:
    template = tool.get_task_template(
        "fit",
        "fit {a}",
        node_args=["a"],
        default_cluster_name="dummy",
        default_compute_resources={"memory": "2G", "cores": 2},
        default_resource_scales={"memory": 0.25},
        default_max_attempts=5,
    )

    assert template.default_cluster_name == "dummy"
    assert template.default_compute_resources_set == {"dummy": {"memory": "2G", "cores": 2}}
    assert template.default_resource_scales == {"memory": 0.25}
    assert template.default_max_attempts == 5


def test_default_compute_resources_fall_back_to_the_tools_cluster(tool: Tool) -> None:
    tool.set_default_cluster_name("other")

    template = tool.get_task_template(
        "fit", "fit {a}", node_args=["a"], default_compute_resources={"memory": "2G"}
    )

    assert template.default_compute_resources_set == {"other": {"memory": "2G"}}
    assert template.default_cluster_name is None


def test_default_compute_resources_without_any_cluster_are_refused(tool: Tool) -> None:
    with pytest.raises(WorkflowValidationError, match="need a cluster"):
        tool.get_task_template(
            "fit", "fit {a}", node_args=["a"], default_compute_resources={"memory": "2G"}
        )


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "3"])
def test_bad_template_default_max_attempts_are_refused(tool: Tool, bad: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="max_attempts"):
        tool.get_task_template("fit", "fit", default_max_attempts=bad)


def test_update_default_compute_resources_merges_keys(tool: Tool) -> None:
    template = tool.get_task_template("fit", "fit")
    template.set_default_compute_resources_from_dict("dummy", {"memory": "2G", "cores": 1})

    template.update_default_compute_resources("dummy", cores=4, runtime="1h")

    assert template.default_compute_resources_set == {
        "dummy": {"memory": "2G", "cores": 4, "runtime": "1h"}
    }


def test_set_default_compute_resources_from_dict_copies_the_mapping(tool: Tool) -> None:
    template = tool.get_task_template("fit", "fit")
    given = {"memory": "2G"}

    template.set_default_compute_resources_from_dict("dummy", given)
    given["memory"] = "99G"

    assert template.default_compute_resources_set == {"dummy": {"memory": "2G"}}


# --- create_tasks / create_array --------------------------------------------------------------


@pytest.fixture
def grid(tool: Tool) -> TaskTemplate:
    return tool.get_task_template(
        "grid",
        "model --a {a} --b {b} --c {c} --log {log}",
        node_args=["a", "b"],
        task_args=["c"],
        op_args=["log"],
    )


def test_create_tasks_takes_the_cross_product_in_node_arg_order(grid: TaskTemplate) -> None:
    tasks = grid.create_tasks(a=[1, 2, 3], b=["x", "y"], c="shared", log="/tmp/log")

    assert [task.node_args for task in tasks] == [
        {"a": "1", "b": "x"},
        {"a": "1", "b": "y"},
        {"a": "2", "b": "x"},
        {"a": "2", "b": "y"},
        {"a": "3", "b": "x"},
        {"a": "3", "b": "y"},
    ]
    assert tasks[-1].command == "model --a 3 --b y --c shared --log /tmp/log"


@pytest.mark.parametrize(
    "values",
    [[1, 2, 3], (1, 2, 3), range(1, 4), {1, 2, 3}, frozenset({1, 2, 3})],
    ids=["list", "tuple", "range", "set", "frozenset"],
)
def test_every_iterable_kind_of_node_arg_expands(grid: TaskTemplate, values: Any) -> None:
    tasks = grid.create_tasks(a=values, b="x", c="c", log="l")

    assert sorted(task.node_args["a"] for task in tasks) == ["1", "2", "3"]
    assert {task.node_args["b"] for task in tasks} == {"x"}


@pytest.mark.parametrize(
    ("scalar", "expected"),
    [("xy", "xy"), (7, "7"), (None, "None"), ({"k": 1}, "{'k': 1}")],
    ids=["str-is-not-split", "int", "none", "dict"],
)
def test_a_scalar_node_arg_is_one_value(grid: TaskTemplate, scalar: Any, expected: str) -> None:
    tasks = grid.create_tasks(a=[1, 2], b=scalar, c="c", log="l")

    assert [task.node_args["b"] for task in tasks] == [expected, expected]


def test_task_and_op_args_are_shared_by_every_task(grid: TaskTemplate) -> None:
    tasks = grid.create_tasks(a=[1, 2], b=[3, 4], c=0.5, log="/var/log")

    assert len(tasks) == 4
    assert all(task.task_args == {"c": "0.5"} for task in tasks)
    assert all(task.op_args == {"log": "/var/log"} for task in tasks)
    # documented memory property: equal argument tuples are one object
    assert all(task.task_values is tasks[0].task_values for task in tasks)


def test_an_empty_node_arg_list_makes_no_tasks(grid: TaskTemplate) -> None:
    assert grid.create_tasks(a=[], b=[1, 2], c="c", log="l") == []


@pytest.mark.parametrize("kind", ["c", "log"], ids=["task-arg", "op-arg"])
@pytest.mark.parametrize(
    "value", [[1, 2], (1, 2), range(2), {1, 2}], ids=["list", "tuple", "range", "set"]
)
def test_iterables_for_task_or_op_args_are_refused(
    grid: TaskTemplate, kind: str, value: Any
) -> None:
    args: dict[str, Any] = {"a": 1, "b": 2, "c": "c", "log": "l", kind: value}

    with pytest.raises(WorkflowValidationError) as caught:
        grid.create_tasks(**args)

    assert repr(kind) in str(caught.value)
    assert "only node args expand" in str(caught.value)


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ({"a": 1, "b": 2, "c": 3}, ["missing ['log']"]),
        ({"a": 1, "b": 2, "c": 3, "log": 4, "zzz": 5}, ["unexpected ['zzz']"]),
        ({"a": [1], "c": 3, "log": 4, "zzz": 5}, ["missing ['b']", "unexpected ['zzz']"]),
    ],
    ids=["missing", "extra", "both"],
)
def test_create_tasks_names_missing_and_extra_args(
    grid: TaskTemplate, args: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        grid.create_tasks(**args)

    for fragment in fragments:
        assert fragment in str(caught.value)


def test_create_tasks_gives_every_task_the_shared_settings(grid: TaskTemplate) -> None:
    upstream = grid.create_task(a=0, b=0, c="c", log="l")

    tasks = grid.create_tasks(
        upstream_tasks=[upstream],
        task_attributes={"stage": 2},
        max_attempts=4,
        compute_resources={"memory": "1G"},
        resource_scales={"memory": 0.1},
        fallback_queues=["small"],
        cluster_name="dummy",
        a=[1, 2],
        b=1,
        c="c",
        log="l",
    )

    for task in tasks:
        assert task.upstream_tasks == frozenset({upstream})
        assert task.task_attributes == {"stage": "2"}
        assert task.max_attempts == 4
        assert task.compute_resources == {"memory": "1G"}
        assert task.resource_scales == {"memory": 0.1}
        assert task.fallback_queues == ["small"]
        assert task.cluster_name == "dummy"
    assert upstream.downstream_tasks == frozenset(tasks)


@pytest.mark.parametrize(
    "settings",
    [
        {"max_attempts": 0},
        {"compute_resources": [("memory", "1G")]},
        {"fallback_queues": "small"},
        {"task_attributes": "stage"},
    ],
    ids=["max_attempts", "compute_resources", "fallback_queues", "task_attributes"],
)
def test_create_tasks_checks_the_shared_settings(
    grid: TaskTemplate, settings: dict[str, Any]
) -> None:
    with pytest.raises(WorkflowValidationError):
        grid.create_tasks(a=[1, 2], b=1, c="c", log="l", **settings)


def test_create_array_returns_the_tasks_version_and_limit(grid: TaskTemplate) -> None:
    array = grid.create_array(a=[1, 2], b=[3], c="c", log="l", max_concurrently_running=5)

    assert isinstance(array, Array)
    assert array.template_version is grid.active_version
    assert array.max_concurrently_running == 5
    assert [task.node_args for task in array.tasks] == [
        {"a": "1", "b": "3"},
        {"a": "2", "b": "3"},
    ]


def test_create_array_without_a_limit_leaves_it_unset(grid: TaskTemplate) -> None:
    assert grid.create_array(a=1, b=2, c="c", log="l").max_concurrently_running is None
