"""Wire schemas of the read-only routes the CLI and the web GUI use."""

from __future__ import annotations

from pydantic import BaseModel

__all__ = [
    "EdgesOut",
    "ErrorOut",
    "FailedTaskOut",
    "ResourcesOut",
    "TaskDetailOut",
    "TaskOut",
    "TasksPageOut",
    "WorkflowClustersOut",
    "WorkflowDetailOut",
    "WorkflowErrorsOut",
]


class WorkflowDetailOut(BaseModel):
    id: int
    name: str
    description: str
    status: str
    tool_version_id: int
    dag_id: int
    workflow_args: str
    user: str
    max_concurrently_running: int
    num_tasks: int
    bound: bool
    attributes: dict[str, str]
    task_status_counts: dict[str, int]


class WorkflowClustersOut(BaseModel):
    """The clusters a workflow's tasks run on."""

    workflow_id: int
    clusters: list[str]


class TaskOut(BaseModel):
    id: int
    name: str
    status: str
    node_id: int
    array_id: int
    command: str
    num_attempts: int
    max_attempts: int


class TasksPageOut(BaseModel):
    count: int
    tasks: list[TaskOut]


class EdgesOut(BaseModel):
    count: int
    edges: list[tuple[int, int]]


class ResourcesOut(BaseModel):
    id: int
    kind: str
    queue_id: int | None
    requested: dict[str, object]


class TaskDetailOut(TaskOut):
    workflow_id: int
    node_args: dict[str, str]
    task_args: dict[str, str]
    attributes: dict[str, str]
    original_resources: ResourcesOut
    resources: ResourcesOut
    upstream_task_ids: list[int]
    downstream_task_ids: list[int]


class ErrorOut(BaseModel):
    task_instance_id: int
    error_time: str
    description: str
    exit_code: int | None


class FailedTaskOut(BaseModel):
    """A fatal task: its last errors (newest first) and its last attempt's output tails."""

    task_id: int
    name: str
    num_attempts: int
    errors: list[ErrorOut]
    stdout_tail: str
    stderr_tail: str


class WorkflowErrorsOut(BaseModel):
    workflow_id: int
    count: int
    tasks: list[FailedTaskOut]
