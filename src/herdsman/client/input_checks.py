"""A workflow's text checked against the server's input limits before anything is bound.

The server refuses a value that is too long, or holds a character no command line can carry
(a NUL, a lone surrogate), with a 422 -- but binding writes in steps, so a refusal of the
tasks would come after the nodes and the DAG were written. :class:`InputChecker` applies the
same test (:func:`herdsman.core.limits.text_problem`) to every value when the workflow is
validated, and names the task and the argument that fail it.

A million tasks are checked in a fraction of a second: values are checked once per tuple
object (task and op args are shared by the tasks of an array), and plain ASCII within its
limit, the common case, costs one comparison and one flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from herdsman.core.errors import WorkflowValidationError
from herdsman.core.limits import MAX_NAME_CHARACTERS, InputLimits, text_problem
from herdsman.core.schemas.types import LONG_TEXT_CHARACTERS

if TYPE_CHECKING:
    from herdsman.client.task import Task
    from herdsman.client.task_template import TaskTemplateVersion
    from herdsman.client.workflow import Workflow

__all__ = ["InputChecker"]

_COMMAND = "limits.max_command_bytes"
_ARG_VALUE = "limits.max_arg_value_bytes"
_ATTRIBUTE_VALUE = "limits.max_attribute_value_bytes"
# Names and free text are limited in characters by their columns; text_problem counts bytes,
# and a character is at most four of them.
_NAME_BYTES = 4 * MAX_NAME_CHARACTERS
_LONG_TEXT_BYTES = 4 * LONG_TEXT_CHARACTERS


class InputChecker:
    """Checks the text of one workflow against ``limits``; raises WorkflowValidationError."""

    def __init__(self, limits: InputLimits) -> None:
        self.limits = limits
        self._checked_versions: set[int] = set()
        self._checked_values: set[int] = set()  # ids of value tuples and attribute dicts
        self._version: TaskTemplateVersion | None = None  # the last task's, checked

    def check_workflow(self, workflow: Workflow) -> None:
        where = f"workflow {workflow.name!r}"
        _check_name(workflow.name, f"{where}: name", allow_empty=True)
        for field in ("workflow_args", "description"):
            text = getattr(workflow, field)
            _check_length(text, LONG_TEXT_CHARACTERS, f"{where}: {field}")
            _refuse(text, _LONG_TEXT_BYTES, "", f"{where}: {field}")
        self._check_attributes(workflow.workflow_attributes, f"{where}: attribute")

    def check_task(self, task: Task) -> None:
        """The task's argument values, its command and attributes (its template's once)."""
        version = task.template_version
        if version is not self._version:
            if id(version) not in self._checked_versions:
                self._check_version(version)
                self._checked_versions.add(id(version))
            self._version = version
        limit = self.limits.max_arg_value_bytes
        seen = self._checked_values
        # Node values are the task's own; task and op values are shared by an array's tasks.
        values = task.node_values
        if values and not _all_plain(values, limit):
            self._explain(task, "node arg", version.node_args, values)
        values = task.task_values
        if values and id(values) not in seen:
            if not _all_plain(values, limit):
                self._explain(task, "task arg", version.task_args, values)
            seen.add(id(values))
        values = task.op_values
        if values and id(values) not in seen:
            if not _all_plain(values, limit):
                self._explain(task, "op arg", version.op_args, values)
            seen.add(id(values))
        command = task.command
        if not _plain(command, self.limits.max_command_bytes):
            where = f"task {task.name!r}: command"
            _refuse(command, self.limits.max_command_bytes, _COMMAND, where)
        attributes = task.task_attributes
        if attributes and id(attributes) not in seen:
            self._check_attributes(attributes, f"task {task.name!r}: attribute")
            seen.add(id(attributes))

    def _explain(
        self, task: Task, kind: str, names: tuple[str, ...], values: tuple[str, ...]
    ) -> None:
        """Raise for the first of ``values`` that is not plain and fails the check."""
        for name, value in zip(names, values, strict=True):
            where = f"task {task.name!r}: {kind} {name!r}"
            _refuse(value, self.limits.max_arg_value_bytes, _ARG_VALUE, where)

    def _check_version(self, version: TaskTemplateVersion) -> None:
        where = f"template {version.template.name!r}"
        _check_name(version.template.name, f"{where}: name")
        for name in version.arg_names:
            _check_name(name, f"{where}: argument name {name!r}")
        _refuse(
            version.command_template,
            self.limits.max_command_bytes,
            _COMMAND,
            f"{where}: command template",
        )

    def _check_attributes(self, attributes: Mapping[str, str], where: str) -> None:
        limit = self.limits.max_attribute_value_bytes
        for name, value in attributes.items():
            _check_name(name, f"{where} {name!r}")
            _refuse(value, limit, _ATTRIBUTE_VALUE, f"{where} {name!r}")


def _plain(text: str, max_bytes: int) -> bool:
    """Plain ASCII within the limit, by far the common case: nothing to look at closer."""
    return len(text) <= max_bytes and text.isascii() and "\x00" not in text


def _all_plain(values: tuple[str, ...], max_bytes: int) -> bool:
    """:func:`_plain` for every value, in a few passes of C rather than a loop of Python."""
    joined = "".join(values)
    return joined.isascii() and "\x00" not in joined and max(map(len, values)) <= max_bytes


def _refuse(text: str, max_bytes: int, setting: str, where: str) -> None:
    if _plain(text, max_bytes):
        return
    problem = text_problem(text, max_bytes, setting or "fixed")
    if problem is not None:
        raise WorkflowValidationError(f"{where} {problem}", details={"where": where})


def _check_name(name: str, where: str, *, allow_empty: bool = False) -> None:
    if not name and not allow_empty:
        raise WorkflowValidationError(f"{where} is empty; give it a name")
    _check_length(name, MAX_NAME_CHARACTERS, where)
    _refuse(name, _NAME_BYTES, "", where)


def _check_length(text: str, max_characters: int, where: str) -> None:
    if len(text) > max_characters:
        raise WorkflowValidationError(
            f"{where} is {len(text)} characters long; at most {max_characters} fit",
            details={"where": where},
        )
