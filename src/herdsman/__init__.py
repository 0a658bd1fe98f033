"""herdsman: run pipelines of thousands to millions of command-line tasks on clusters.

The names follow Jobmon's authoring API, so ``from herdsman import Tool`` is all a Jobmon
script needs to change.

The authoring API is imported on first use: the distributor and the worker wrapper, which
start on every cluster node and for every local pool, import ``herdsman`` too and must not
pay for the client's modules (a third of a second per process).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

from herdsman.core.errors import (
    HerdsmanError,
    InvalidResourceError,
    WorkflowAlreadyComplete,
    WorkflowAlreadyExists,
    WorkflowValidationError,
)
from herdsman.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from herdsman.client import Array, Task, TaskTemplate, TaskTemplateVersion, Tool, Workflow
    from herdsman.client.control import set_max_concurrently_running
    from herdsman.client.execution import resume_workflow_from_id

# Public names imported on first use, and the module that defines each.
_LAZY_NAMES = {
    **dict.fromkeys(
        ("Array", "Task", "TaskTemplate", "TaskTemplateVersion", "Tool", "Workflow"),
        "herdsman.client",
    ),
    "set_max_concurrently_running": "herdsman.client.control",
    "resume_workflow_from_id": "herdsman.client.execution",
}


__getattr__ = lazy_attributes(__name__, _LAZY_NAMES)


def _set_up_logging() -> None:
    """Library defaults for herdsman's logs: stderr, from ``HERDSMAN_LOG_LEVEL`` (warning).

    Only the environment is read here, not the settings file: loading the settings machinery
    costs a tenth of a second in every process that imports herdsman, worker and pool processes
    included, and processes that log on purpose (server, CLI, distributor) configure logging
    themselves from the full settings.
    """
    import os

    from herdsman.core.logs import configure_library_logging

    level = os.environ.get("HERDSMAN_LOG_LEVEL", "warning").lower()
    if level not in ("debug", "info", "warning", "error"):
        level = "warning"  # a malformed setting is reported where settings are used
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
    "resume_workflow_from_id",
    "set_max_concurrently_running",
]
