"""TaskGenerator without a server: templates, serialisation both ways, names, the worker's
entry point run in a subprocess, and the refusals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest
from tests.unit.client.conftest import DUMMY_CLUSTER, FakeClusterRequester

from herdsman.client.tool import Tool
from herdsman.core.task_generator import (
    TaskGenerator,
    create_task_name,
    get_tasks_by_node_args,
    is_optional_type,
    task_generator,
)


class Year:
    def __init__(self, year: int) -> None:
        self.year = year

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Year) and other.year == self.year

    def __hash__(self) -> int:
        return self.year


def fit(
    region: str,
    year: Year,
    draws: list[int],
    pair: tuple[str, float],
    flag: bool = False,
    scale: Optional[float] = None,  # noqa: UP045 - Jobmon's scripts write Optional
) -> str:
    return f"{region} {year.year} {sum(draws)} {pair} {flag} {scale}"


SERIALIZERS: Any = {Year: (lambda y: str(y.year), lambda text: Year(int(text)))}


@pytest.fixture
def tool() -> Tool:
    return Tool("tg", requester=FakeClusterRequester([DUMMY_CLUSTER]))  # type: ignore[arg-type]


@pytest.fixture
def generator(tool: Tool) -> TaskGenerator:
    return task_generator(SERIALIZERS, naming_args=["region", "year"], max_attempts=2, tool=tool)(
        fit
    )


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("east side", str),
        ("", str),
        (3, int),
        (2.5, float),
        (False, bool),
        (None, Optional[int]),  # noqa: UP045
        (4, int | None),
        ([1, 2], list[int]),
        ([], list[int]),
        (("a, b", 1.5), tuple[str, float]),
        ({3, 1}, set[int]),
        (Year(2020), Year),
        ([Year(2020), Year(2021)], list[Year]),
    ],
)
def test_values_survive_the_trip_through_text(
    generator: TaskGenerator, value: Any, hint: Any
) -> None:
    text = generator.serialize(value, hint)
    assert isinstance(text, str)
    assert generator.deserialize(text, hint) == value


def test_a_task_calls_the_function_through_the_module(generator: TaskGenerator) -> None:
    task = generator.create_task(
        compute_resources={"queue": "all.q"},
        region="east side",
        year=Year(2020),
        draws=[1, 2],
        pair=("x", 0.5),
    )
    assert task.name == "fit:region=east_side:year=2020"
    assert task.max_attempts == 2
    assert task.command.split()[1:7] == [
        "-m", "herdsman.core.task_generator", "--module_name", __name__, "--func_name", "fit",
    ]  # fmt: skip
    assert task.command.endswith(
        'region=\'east side\' year=2020 draws=\'["1", "2"]\' pair=\'["x", "0.5"]\' '
        "flag=__default__ scale=__default__"
    )
    assert generator.task_template.template_name == "fit"
    args = task.command.split(" fit ", 1)[1]
    assert generator.run(["region=east side", "year=2020", 'draws=["1", "2"]',
                          'pair=["x", "0.5"]', "flag=__default__"]) == (
        "east side 2020 3 ('x', 0.5) False None"
    )  # fmt: skip
    assert "--module_source_path" in args


def test_create_tasks_makes_the_cross_product(generator: TaskGenerator, tool: Tool) -> None:
    tasks = generator.create_tasks(
        region=["a", "b"], year=[Year(1), Year(2)], draws=[[1]], pair=[("p", 1.0)], flag=True
    )
    assert len(tasks) == 4
    workflow = tool.create_workflow("tg-args")
    workflow.add_tasks(tasks)
    found = get_tasks_by_node_args(workflow, generator, {"region": "a"})
    assert len(found) == 2
    assert get_tasks_by_node_args(workflow, generator, {"region": "z"}, error_on_empty=False) == []
    with pytest.raises(ValueError, match="no task of fit"):
        get_tasks_by_node_args(workflow, generator, {"region": "z"})


def test_the_worker_entry_point_runs_a_scripts_function(tmp_path: Path) -> None:
    script = tmp_path / "flow.py"
    script.write_text(
        "from herdsman.core.task_generator import task_generator\n"
        "@task_generator(serializers={}, tool_name='t')\n"
        "def add(a: int, b: list[float], c: int = 10) -> float:\n"
        "    return a + sum(b) + c\n"
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "herdsman.core.task_generator",
            "--module_name",
            "__main__",
            "--func_name",
            "add",
            "--module_source_path",
            str(script),
            "a=1",
            'b=["2.5"]',
            "c=__default__",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "13.5\n"), done.stderr
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "herdsman.core.task_generator",
            "--module_name",
            "__main__",
            "--func_name",
            "add",
            "--module_source_path",
            str(script),
            "a=x",
            "b=[]",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert "cannot turn argument a='x' back into <class 'int'>" in bad.stderr


def test_functions_it_cannot_serialise_are_refused(tool: Tool) -> None:
    def untyped(a, b: int) -> None:  # type: ignore[no-untyped-def]
        pass

    def unknown(a: complex) -> None:
        pass

    with pytest.raises(TypeError, match="parameters a have no type annotation"):
        TaskGenerator(untyped, {}, tool=tool)
    with pytest.raises(TypeError, match="parameter 'a' is annotated"):
        TaskGenerator(unknown, {}, tool=tool)
    generator = TaskGenerator(fit, SERIALIZERS, tool=tool)
    with pytest.raises(TypeError, match="fit needs a value for 'draws'"):
        generator.create_task(region="a", year=Year(1), pair=("p", 1.0))
    with pytest.raises(TypeError, match="expected a int"):
        generator.serialize("3", int)


def test_names_and_optionals() -> None:
    assert create_task_name({"a": "1 2", "b": "x/y"}, "f") == "f:a=1_2:b=x_y"
    assert create_task_name({"a": "1"}, "f", lambda prefix, kw: f"Lala_{kw['a']}") == "Lala_1"
    assert is_optional_type(Optional[int]) and is_optional_type(int | None)  # noqa: UP045
    assert not is_optional_type(int)
