"""The server's own check of bind requests against its :class:`~herdsman.core.limits.InputLimits`.

The client checks the same values before it binds anything (it learns the limits from
``GET /health``); the server checks again because it cannot trust its callers. A request with
a value too long, or with a character no command line can carry, is refused as a whole (422)
before anything is written, naming the value's place in the request.

The bulk bodies (nodes, tasks) hold columns of up to a hundred thousand values, so their text
is checked here in one pass rather than by a pydantic validator per value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from herdsman.core.errors import InvalidInputError
from herdsman.core.limits import InputLimits, text_problem
from herdsman.core.schemas import client as schemas

__all__ = [
    "check_nodes",
    "check_tasks",
    "check_template_version",
    "check_workflow",
]

_COMMAND = "limits.max_command_bytes"
_ARG_VALUE = "limits.max_arg_value_bytes"
_ATTRIBUTE_VALUE = "limits.max_attribute_value_bytes"
# Names are limited by their column (255 characters), checked by the schemas; what is left
# to check here are their characters.
_NO_LIMIT = 2**31


def check_template_version(limits: InputLimits, request: schemas.TaskTemplateVersionIn) -> None:
    _refuse_first(
        [("command_template", request.command_template, limits.max_command_bytes, _COMMAND)]
    )


def check_workflow(limits: InputLimits, request: schemas.WorkflowIn | schemas.AttributesIn) -> None:
    _refuse_first(
        (f"attributes.{name}", value, limits.max_attribute_value_bytes, _ATTRIBUTE_VALUE)
        for name, value in request.attributes.items()
    )


def check_nodes(limits: InputLimits, request: schemas.NodesIn) -> None:
    _refuse_first(
        (f"values.{row}.{column}", value, limits.max_arg_value_bytes, _ARG_VALUE)
        for row, values in enumerate(request.values)
        for column, value in enumerate(values)
    )


def check_plan(limits: InputLimits, request: schemas.PlanIn) -> None:
    _refuse_first(
        (f"commands.{index}", command, limits.max_command_bytes, _COMMAND)
        for index, command in enumerate(request.commands)
    )


def check_tasks(limits: InputLimits, request: schemas.TasksIn) -> None:
    _refuse_first(_task_texts(limits, request))


_Text = tuple[str, str, int, str]  # where, the text, its limit in bytes, the setting


def _task_texts(limits: InputLimits, request: schemas.TasksIn) -> Iterator[_Text]:
    for index, command in enumerate(request.commands):
        yield f"commands.{index}", command, limits.max_command_bytes, _COMMAND
    for index, values in enumerate(request.task_arg_values):
        for column, value in enumerate(values):
            yield f"task_arg_values.{index}.{column}", value, limits.max_arg_value_bytes, _ARG_VALUE
    for column_name in ("names", "resource_scales", "fallback_queues"):
        for index, text in enumerate(getattr(request, column_name)):
            yield f"{column_name}.{index}", text, _NO_LIMIT, ""
    for index, attributes in request.attributes.items():
        for name, value in attributes.items():
            yield f"attributes.{index}", name, _NO_LIMIT, ""
            where = f"attributes.{index}.{name}"
            yield where, value, limits.max_attribute_value_bytes, _ATTRIBUTE_VALUE


def _refuse_first(texts: Iterable[_Text]) -> None:
    """Raise InvalidInputError for the first text that is too long or not storable."""
    for where, text, max_bytes, setting in texts:
        # Plain ASCII within the limit, by far the common case, costs one comparison.
        if len(text) <= max_bytes and text.isascii() and "\x00" not in text:
            continue
        problem = text_problem(text, max_bytes, setting)
        if problem is not None:
            raise InvalidInputError(
                f"invalid request: {where}: {problem}", details={"fields": [where]}
            )
