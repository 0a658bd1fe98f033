"""herdsman: run pipelines of thousands to millions of command-line tasks on clusters.

The names follow Jobmon's authoring API, so ``from herdsman import Tool`` is all a Jobmon
script needs to change.

The authoring API is imported on first use: the distributor and the worker wrapper, which
start on every cluster node and for every local pool, import ``herdsman`` too and must not
pay for the client's modules (a third of a second per process).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from herdsman.core.errors import (
    HerdsmanError,
    InvalidResourceError,
    WorkflowAlreadyComplete,
    WorkflowAlreadyExists,
    WorkflowValidationError,
)

if TYPE_CHECKING:
    from herdsman.client import Array, Task, TaskTemplate, TaskTemplateVersion, Tool, Workflow

_CLIENT_NAMES = frozenset(
    {"Array", "Task", "TaskTemplate", "TaskTemplateVersion", "Tool", "Workflow"}
)


def __getattr__(name: str) -> Any:
    if name in _CLIENT_NAMES:
        value = getattr(importlib.import_module("herdsman.client"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'herdsman' has no attribute {name!r}")


def _set_up_logging() -> None:
    from herdsman.core.config import Settings
    from herdsman.core.logs import configure_library_logging

    try:
        level = Settings().log_level
    except ValueError:  # a malformed setting is reported where settings are used
        level = "warning"
    configure_library_logging(level)


_set_up_logging()

__all__ = [
    "Array",
    "HerdsmanError",
    "InvalidResourceError",
    "Task",
    "TaskTemplate",
    "TaskTemplateVersion",
    "Tool",
    "Workflow",
    "WorkflowAlreadyComplete",
    "WorkflowAlreadyExists",
    "WorkflowValidationError",
    "__version__",
]
