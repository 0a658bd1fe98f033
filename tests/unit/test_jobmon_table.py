"""docs/jobmon.md's compatibility table agrees with the code.

Every row that names a herdsman path must find it there. A row marked *same* or *alias* that
gives Jobmon's signature must be callable as Jobmon's is: Jobmon's positional parameters at the
same positions (with the same names for *same*; *alias* rows may rename them), a default
wherever Jobmon has one (for *same*, an equal default; ``None``, ``""``, ``[]`` and ``{}`` count
as the same "nothing given", and ``...`` in the table stands for a default Jobmon computes),
``**kwargs`` wherever Jobmon takes them, and any parameter herdsman adds with a default.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from tests.unit.client.conftest import DUMMY_CLUSTER, FakeClusterRequester

from herdsman.client.task import Array, Task
from herdsman.client.task_template import TaskTemplate, TaskTemplateVersion
from herdsman.client.tool import Tool
from herdsman.client.workflow import Workflow
from herdsman.core.requester import Requester
from herdsman.worker.wrapper import command_environment

DOC = Path(__file__).resolve().parents[2] / "docs" / "jobmon.md"
_ROW = re.compile(
    r"^\| `(?P<jobmon>[^`]+)` \| (?P<herdsman>[^|]+) \| (?P<status>\w+) \| (?P<rest>.*)\|$"
)
_EMPTY = (None, "", (), [], {})


@dataclass(frozen=True)
class Row:
    jobmon: str
    herdsman: str  # "" when herdsman has no such name
    status: str
    signature: str  # "" when the table gives none

    def __str__(self) -> str:
        return self.jobmon


def _rows() -> list[Row]:
    rows = []
    for line in DOC.read_text().splitlines():
        match = _ROW.match(line)
        if match is None:
            continue
        herdsman = match["herdsman"].strip().strip("`")
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", match["rest"])]
        signature = cells[0].strip("`").replace("\\|", "|")
        rows.append(
            Row(match["jobmon"], "" if herdsman == "—" else herdsman, match["status"], signature)
        )
    return rows


ROWS = _rows()


def test_the_table_is_there_and_marks_every_row() -> None:
    assert len(ROWS) > 150
    assert {row.status for row in ROWS} == {"same", "alias", "different"}
    for row in ROWS:
        if row.status in ("same", "alias"):
            assert row.herdsman, f"{row} is marked {row.status} but names no herdsman path"


def test_the_counts_in_the_text_are_the_tables() -> None:
    text = DOC.read_text()
    for status in ("same", "alias", "different"):
        count = sum(1 for row in ROWS if row.status == status)
        assert f"**{count}** {status}" in text, f"the text should say **{count}** {status}"


# --- instances, for attributes that exist on objects rather than on their classes ---------------


def _instances() -> dict[type, object]:
    requester = cast(Requester, FakeClusterRequester([DUMMY_CLUSTER]))
    tool = Tool("table", requester=requester)
    template = tool.get_task_template("t", "echo {x}", node_args=["x"])
    array = template.create_array(x=[1])
    workflow = tool.create_workflow("table-args")
    return {
        Tool: tool,
        TaskTemplate: template,
        TaskTemplateVersion: template.active_version,
        Task: array.tasks[0],
        Array: array,
        Workflow: workflow,
    }


_MISSING = object()


def _lookup(owner: object, name: str, instances: dict[type, object]) -> object:
    found = inspect.getattr_static(owner, name, _MISSING)
    if found is _MISSING and inspect.isclass(owner):
        instance = instances.get(owner)
        if instance is not None:
            found = inspect.getattr_static(instance, name, _MISSING)
    if found is _MISSING:
        raise AttributeError(name)
    return found


def _resolve(path: str, instances: dict[type, object]) -> tuple[object, object | None]:
    """The object at ``module:Qual.name`` and the class it was found on (None at top level)."""
    module_name, _, qualname = path.partition(":")
    found: object = importlib.import_module(module_name)
    owner: object | None = None
    for part in qualname.split("."):
        owner = found if inspect.isclass(found) else None
        found = _lookup(found, part, instances)
    return found, owner


@pytest.mark.parametrize("row", [row for row in ROWS if row.herdsman], ids=str)
def test_each_herdsman_path_exists(row: Row) -> None:
    if row.herdsman.startswith("env:"):
        running = SimpleNamespace(workflow_id=1, workflow_run_id=2, task_id=3, task_instance_id=4)
        assert row.herdsman.removeprefix("env:") in command_environment(cast(Any, running), {})
        return
    _resolve(row.herdsman, _instances())


# --- signatures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    name: str
    has_default: bool
    default: object


def _jobmon_parameters(signature: str) -> tuple[list[Parameter], bool]:
    function = ast.parse(f"def f{signature}: pass").body[0]
    assert isinstance(function, ast.FunctionDef)
    arguments = function.args
    names = [argument.arg for argument in arguments.args]
    defaults: list[object] = [ast.literal_eval(value) for value in arguments.defaults]
    padded = [_MISSING] * (len(names) - len(defaults)) + defaults
    parameters = [
        Parameter(name, default is not _MISSING, default)
        for name, default in zip(names, padded, strict=True)
    ]
    return parameters, arguments.kwarg is not None


def _herdsman_signature(found: object, owner: object | None) -> inspect.Signature:
    if isinstance(found, staticmethod | classmethod):
        found = found.__func__
        owner = None
    assert callable(found), f"{found!r} is not callable"
    signature = inspect.signature(found)
    if owner is not None and not inspect.isclass(found):
        parameters = list(signature.parameters.values())[1:]  # self
        signature = signature.replace(parameters=parameters)
    return signature


def _same_default(jobmon: object, herdsman: object) -> bool:
    if jobmon is Ellipsis:
        return True
    if jobmon in _EMPTY and herdsman in _EMPTY:
        return True
    return bool(jobmon == herdsman)


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@pytest.mark.parametrize(
    "row", [row for row in ROWS if row.signature and row.status != "different"], ids=str
)
def test_signatures_accept_jobmons_calls(row: Row) -> None:
    found, owner = _resolve(row.herdsman, _instances())
    herdsman = _herdsman_signature(found, owner)
    jobmon, takes_kwargs = _jobmon_parameters(row.signature)
    positional = [p for p in herdsman.parameters.values() if p.kind in _POSITIONAL]

    assert len(positional) >= len(jobmon), f"{row}: fewer positional parameters than Jobmon's"
    for theirs, ours in zip(jobmon, positional, strict=False):
        if row.status == "same":
            assert ours.name == theirs.name, (
                f"{row}: {ours.name!r} where Jobmon has {theirs.name!r}"
            )
        if theirs.has_default:
            assert ours.default is not inspect.Parameter.empty, (
                f"{row}: {ours.name} needs a default"
            )
            if row.status == "same":
                assert _same_default(theirs.default, ours.default), (
                    f"{row}: {ours.name} defaults to {ours.default!r}, "
                    f"Jobmon's to {theirs.default!r}"
                )
    extra = [p for p in herdsman.parameters.values() if p.name not in {j.name for j in jobmon}]
    for parameter in extra:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if row.status == "alias" and parameter in positional[: len(jobmon)]:
            continue  # a renamed parameter of Jobmon's
        assert parameter.default is not inspect.Parameter.empty, (
            f"{row}: herdsman's extra parameter {parameter.name} has no default"
        )
    if takes_kwargs:
        assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in herdsman.parameters.values())
