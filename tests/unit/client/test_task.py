"""create_task and Task: arguments, names, settings, command rendering and dependencies."""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from herdsman import Task, TaskTemplate, Tool, WorkflowValidationError
from herdsman.client.task import validate_task_name


@pytest.fixture
def fit(tool: Tool) -> TaskTemplate:
    return tool.get_task_template(
        "fit",
        "python fit.py --location {location} --sex {sex} --draws {draws} --log {log_dir}",
        node_args=["location", "sex"],
        task_args=["draws"],
        op_args=["log_dir"],
    )


def make(template: TaskTemplate, **overrides: Any) -> Task:
    """A task of ``fit`` with every arg given; ``overrides`` replace args or add settings."""
    args: dict[str, Any] = {"location": 1, "sex": 2, "draws": 100, "log_dir": "/logs"}
    args.update(overrides)
    return template.create_task(**args)


@pytest.fixture
def echo(tool: Tool) -> TaskTemplate:
    return tool.get_task_template("echo", "echo {n}", node_args=["n"])


# --- arguments --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        ({"location": 1, "sex": 2, "draws": 3}, ["missing ['log_dir']"]),
        ({"location": 1}, ["missing ['draws', 'log_dir', 'sex']"]),
        (
            {"location": 1, "sex": 2, "draws": 3, "log_dir": "l", "year": 2020},
            ["unexpected ['year']"],
        ),
        (
            {"location": 1, "sex": 2, "draws": 3, "logdir": "l"},
            ["missing ['log_dir']", "unexpected ['logdir']"],
        ),
    ],
    ids=["one-missing", "several-missing", "extra", "misspelt"],
)
def test_missing_and_extra_args_are_named(
    fit: TaskTemplate, args: dict[str, Any], fragments: list[str]
) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        fit.create_task(**args)

    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message
    # the message also says what the template takes
    assert "node args ['location', 'sex']" in message
    assert "task args ['draws']" in message
    assert "op args ['log_dir']" in message


def test_args_are_split_by_kind(fit: TaskTemplate) -> None:
    task = make(fit)

    assert task.node_args == {"location": "1", "sex": "2"}
    assert task.task_args == {"draws": "100"}
    assert task.op_args == {"log_dir": "/logs"}


@pytest.mark.parametrize(
    ("value", "as_text"),
    [
        (7, "7"),
        (2.5, "2.5"),
        (True, "True"),
        (None, "None"),
        (Path("/data/in.csv"), "/data/in.csv"),
        ("text", "text"),
    ],
    ids=["int", "float", "bool", "none", "path", "str"],
)
def test_arg_values_are_stringified(fit: TaskTemplate, value: Any, as_text: str) -> None:
    task = make(fit, location=value, draws=value, log_dir=value)

    assert task.node_args["location"] == as_text
    assert task.task_args["draws"] == as_text
    assert task.op_args["log_dir"] == as_text


def test_the_command_is_the_template_filled_in(fit: TaskTemplate) -> None:
    task = make(fit, location=102, sex=1, draws=1000, log_dir="/ihme/logs")

    assert task.command == "python fit.py --location 102 --sex 1 --draws 1000 --log /ihme/logs"


def test_tasks_with_the_same_node_args_have_the_same_key(fit: TaskTemplate) -> None:
    base = make(fit)

    assert make(fit, draws=5, log_dir="/elsewhere").key == base.key
    assert make(fit, location=99).key != base.key
    assert base.key == (fit.active_version, ("1", "2"))


# --- names ------------------------------------------------------------------------------------


def test_the_default_name_is_the_template_name_and_node_args(fit: TaskTemplate) -> None:
    assert make(fit, location=102, sex=1).name == "fit_location-102_sex-1"


def test_a_template_without_node_args_names_tasks_after_itself(tool: Tool) -> None:
    template = tool.get_task_template("summarise", "summarise {out}", task_args=["out"])

    assert template.create_task(out="x").name == "summarise"


def test_control_characters_in_a_default_name_are_replaced(echo: TaskTemplate) -> None:
    name = echo.create_task(n="a\nb\tc\x7f").name

    assert name == "echo_n-a_b_c_"
    assert validate_task_name(name) == name


def test_a_long_default_name_is_shortened_with_a_digest(echo: TaskTemplate) -> None:
    first = echo.create_task(n="x" * 300 + "1").name
    second = echo.create_task(n="x" * 300 + "2").name

    assert len(first) == len(second) == 255
    assert re.fullmatch(r"echo_n-x+_[0-9a-f]{16}", first)
    assert first != second
    assert validate_task_name(first) == first


def test_a_default_name_of_255_characters_is_kept(echo: TaskTemplate) -> None:
    value = "v" * (255 - len("echo_n-"))

    assert echo.create_task(n=value).name == "echo_n-" + value


def test_an_explicit_name_wins(fit: TaskTemplate) -> None:
    assert make(fit, name="my_task").name == "my_task"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (123, "non-empty string"),
        ("n" * 256, "the limit is 255"),
        ("two\nlines", "control characters"),
        ("tab\there", "control characters"),
        ("nul\x00", "control characters"),
        ("del\x7f", "control characters"),
    ],
    ids=["not-a-str", "256-chars", "newline", "tab", "nul", "del"],
)
def test_bad_explicit_names_are_refused(fit: TaskTemplate, name: Any, fragment: str) -> None:
    with pytest.raises(WorkflowValidationError, match=fragment):
        make(fit, name=name)


def test_an_explicit_name_of_255_characters_is_accepted(fit: TaskTemplate) -> None:
    assert make(fit, name="n" * 255).name == "n" * 255


# --- settings ---------------------------------------------------------------------------------


def test_settings_default_to_unset(fit: TaskTemplate) -> None:
    task = make(fit)

    assert task.max_attempts is None
    assert task.compute_resources is None
    assert task.compute_resources_callable is None
    assert task.resource_scales is None
    assert task.fallback_queues is None
    assert task.cluster_name is None
    assert task.task_attributes is None
    assert task.upstream_tasks == frozenset()
    assert task.downstream_tasks == frozenset()


def test_settings_are_kept(fit: TaskTemplate) -> None:
    def resources(**_: Any) -> dict[str, Any]:
        return {"memory": "8G"}

    task = make(
        fit,
        max_attempts=7,
        compute_resources={"memory": "2G", "cores": 2},
        compute_resources_callable=resources,
        resource_scales={"memory": 0.2},
        fallback_queues=["small"],
        cluster_name="dummy",
    )

    assert task.max_attempts == 7
    assert task.compute_resources == {"memory": "2G", "cores": 2}
    assert task.compute_resources_callable is resources
    assert task.resource_scales == {"memory": 0.2}
    assert task.fallback_queues == ["small"]
    assert task.cluster_name == "dummy"


@pytest.mark.parametrize("attempts", [1, 3, 100])
def test_good_max_attempts_are_accepted(fit: TaskTemplate, attempts: int) -> None:
    assert make(fit, max_attempts=attempts).max_attempts == attempts


@pytest.mark.parametrize("attempts", [0, -1, True, False, 1.5, 2.0, "3"])
def test_bad_max_attempts_are_refused(fit: TaskTemplate, attempts: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="max_attempts"):
        make(fit, max_attempts=attempts)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"stage": 2, "model": "gbd"}, {"stage": "2", "model": "gbd"}),
        ({1: None}, {"1": "None"}),
        (["checked", "final"], {"checked": "", "final": ""}),
        (("checked",), {"checked": ""}),
        ([], {}),
    ],
    ids=["dict", "non-str-dict", "list", "tuple", "empty-list"],
)
def test_task_attributes_as_dict_or_list(
    fit: TaskTemplate, attributes: Any, expected: dict[str, str]
) -> None:
    assert make(fit, task_attributes=attributes).task_attributes == expected


def test_task_attributes_as_a_string_are_refused(fit: TaskTemplate) -> None:
    with pytest.raises(WorkflowValidationError, match="task_attributes"):
        make(fit, task_attributes="stage")


@pytest.mark.parametrize(
    "resources",
    [[("memory", "2G")], "memory=2G", MappingProxyType({"memory": "2G"}), 4],
    ids=["list", "str", "read-only-mapping", "int"],
)
def test_compute_resources_must_be_a_dict(fit: TaskTemplate, resources: Any) -> None:
    with pytest.raises(WorkflowValidationError) as caught:
        make(fit, compute_resources=resources)

    assert "compute_resources must be a dict" in str(caught.value)
    assert type(resources).__name__ in str(caught.value)


@pytest.mark.parametrize(
    ("queues", "expected"),
    [(["a", "b"], ["a", "b"]), (("a",), ["a"]), ([], [])],
    ids=["list", "tuple", "empty"],
)
def test_fallback_queues_list_of_names(fit: TaskTemplate, queues: Any, expected: list[str]) -> None:
    assert make(fit, fallback_queues=queues).fallback_queues == expected


@pytest.mark.parametrize(
    "queues", ["all.q", ["a", 1], [None], {"a"}], ids=["str", "int-member", "none", "set"]
)
def test_bad_fallback_queues_are_refused(fit: TaskTemplate, queues: Any) -> None:
    with pytest.raises(WorkflowValidationError, match="fallback_queues"):
        make(fit, fallback_queues=queues)


# --- dependencies -----------------------------------------------------------------------------


def test_upstream_tasks_are_wired_both_ways(echo: TaskTemplate) -> None:
    a = echo.create_task(n="a")
    b = echo.create_task(n="b")

    c = echo.create_task(n="c", upstream_tasks=[a, b])

    assert c.upstream_tasks == frozenset({a, b})
    assert a.downstream_tasks == frozenset({c})
    assert b.downstream_tasks == frozenset({c})
    assert set(c.iter_upstream()) == {a, b}
    assert a.upstream_tasks == frozenset()


def test_upstream_tasks_may_be_any_iterable(echo: TaskTemplate) -> None:
    a = echo.create_task(n="a")

    c = echo.create_task(n="c", upstream_tasks=(t for t in [a]))

    assert c.upstream_tasks == frozenset({a})


def test_add_upstream_wires_both_ways(echo: TaskTemplate) -> None:
    a = echo.create_task(n="a")
    b = echo.create_task(n="b")

    b.add_upstream(a)

    assert b.upstream_tasks == frozenset({a})
    assert a.downstream_tasks == frozenset({b})


def test_add_downstream_wires_both_ways(echo: TaskTemplate) -> None:
    a = echo.create_task(n="a")
    b = echo.create_task(n="b")

    a.add_downstream(b)

    assert b.upstream_tasks == frozenset({a})
    assert a.downstream_tasks == frozenset({b})


def test_adding_an_edge_twice_keeps_one_edge(echo: TaskTemplate) -> None:
    a = echo.create_task(n="a")
    b = echo.create_task(n="b")

    b.add_upstream(a)
    a.add_downstream(b)
    b.add_upstreams([a, a])

    assert b.upstream_tasks == frozenset({a})
    assert a.downstream_tasks == frozenset({b})


def test_the_dependency_sets_are_read_only_views(echo: TaskTemplate) -> None:
    a = echo.create_task(n="a")
    b = echo.create_task(n="b", upstream_tasks=[a])

    assert isinstance(b.upstream_tasks, frozenset)
    assert isinstance(a.downstream_tasks, frozenset)


def test_a_task_cannot_depend_on_itself(echo: TaskTemplate) -> None:
    a = echo.create_task(n="a")

    with pytest.raises(WorkflowValidationError, match="cannot depend on itself"):
        a.add_upstream(a)
    with pytest.raises(WorkflowValidationError, match="cannot depend on itself"):
        a.add_downstream(a)
    assert a.upstream_tasks == frozenset()
    assert a.downstream_tasks == frozenset()


@pytest.mark.parametrize("other", ["echo_n-a", None, 42], ids=["str", "none", "int"])
def test_only_tasks_can_be_dependencies(echo: TaskTemplate, other: Any) -> None:
    a = echo.create_task(n="a")

    with pytest.raises(WorkflowValidationError) as upstream_error:
        a.add_upstream(other)
    with pytest.raises(WorkflowValidationError) as downstream_error:
        a.add_downstream(other)
    with pytest.raises(WorkflowValidationError, match="must be a Task"):
        echo.create_task(n="b", upstream_tasks=[other])

    assert upstream_error.value.message.startswith("upstream of task 'echo_n-a' must be a Task")
    assert downstream_error.value.message.startswith("downstream of task 'echo_n-a' must be a Task")
    assert a.upstream_tasks == frozenset()
