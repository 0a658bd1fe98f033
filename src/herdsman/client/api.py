"""Everything a workflow script imports, at the path Jobmon's scripts import it from.

``from herdsman.client.api import Tool`` works as ``from jobmon.client.api import Tool``;
the classes, the status functions and ``add_task_attributes`` are herdsman's own.
"""

from __future__ import annotations

from herdsman.client.attributes import add_task_attributes
from herdsman.client.status import task_status, workflow_status, workflow_tasks
from herdsman.client.task import Array, Task
from herdsman.client.task_template import TaskTemplate, TaskTemplateVersion
from herdsman.client.tool import Tool
from herdsman.client.workflow import Workflow

__all__ = [
    "Array",
    "Task",
    "TaskTemplate",
    "TaskTemplateVersion",
    "Tool",
    "Workflow",
    "add_task_attributes",
    "task_status",
    "workflow_status",
    "workflow_tasks",
]
