"""The authoring API: describe tools, templates, tasks and workflows, then bind and run them."""

from herdsman.client.task import Array, Task
from herdsman.client.task_template import TaskTemplate, TaskTemplateVersion
from herdsman.client.tool import Tool
from herdsman.client.workflow import Workflow

__all__ = ["Array", "Task", "TaskTemplate", "TaskTemplateVersion", "Tool", "Workflow"]
