"""herdsman: run pipelines of thousands to millions of command-line tasks on clusters.

The names follow Jobmon's authoring API, so ``from herdsman import Tool`` is all a Jobmon
script needs to change.
"""

from __future__ import annotations

__version__ = "0.1.0"

from herdsman.client import Array, Task, TaskTemplate, TaskTemplateVersion, Tool, Workflow
from herdsman.core.errors import (
    HerdsmanError,
    InvalidResourceError,
    WorkflowAlreadyComplete,
    WorkflowAlreadyExists,
    WorkflowValidationError,
)


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
