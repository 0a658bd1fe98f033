"""The authoring API: describe tools, templates, tasks and workflows, then bind and run them.

The classes are imported on first use, so that code needing only a part of the client (the
``herdsman`` command's reports and controls) does not pay for the authoring modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from herdsman.core.lazy import lazy_attributes

if TYPE_CHECKING:
    from herdsman.client.task import Array, Task
    from herdsman.client.task_template import TaskTemplate, TaskTemplateVersion
    from herdsman.client.tool import Tool
    from herdsman.client.workflow import Workflow

__all__ = ["Array", "Task", "TaskTemplate", "TaskTemplateVersion", "Tool", "Workflow"]

_LAZY_NAMES = {
    "Array": "herdsman.client.task",
    "Task": "herdsman.client.task",
    "TaskTemplate": "herdsman.client.task_template",
    "TaskTemplateVersion": "herdsman.client.task_template",
    "Tool": "herdsman.client.tool",
    "Workflow": "herdsman.client.workflow",
}


__getattr__ = lazy_attributes(__name__, _LAZY_NAMES)
