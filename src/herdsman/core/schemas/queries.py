"""Wire schemas of the read-only routes the ``herdsman`` command and the web GUI use: workflow
summaries and details, tasks, attempts, dependencies, log paths, errors and resource usage.

Times are ISO 8601 strings in UTC (the server's naive timestamps); durations are seconds and
memory is GiB, the units herdsman's resource parser reads back.
"""

from __future__ import annotations

from pydantic import BaseModel

__all__ = [
    "AttemptOut",
    "DependenciesOut",
    "EdgesOut",
    "ErrorMessageOut",
    "ErrorMessagesOut",
    "ErrorOut",
    "FailedTaskOut",
    "LogPathOut",
    "LogPathsOut",
    "NeighbourOut",
    "ResourceUsageOut",
    "ResourcesOut",
    "StatisticsOut",
    "TaskAttemptsOut",
    "TaskDetailOut",
    "TaskOut",
    "TasksPageOut",
    "TemplateUsageOut",
    "WorkflowClustersOut",
    "WorkflowDetailOut",
    "WorkflowErrorsOut",
    "WorkflowSummariesOut",
    "WorkflowSummaryOut",
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


class WorkflowSummaryOut(BaseModel):
    """One workflow with its tasks counted by where they are.

    ``pending`` counts tasks not yet in a job (registering, queued, instantiating, launched,
    recoverable error, adjusting resources); ``retries`` counts attempts beyond each task's
    first. ``elapsed_seconds`` runs from the first run's start to its runs' last status change,
    or to now while a run holds the workflow; None if it never ran.
    """

    id: int
    name: str
    # The tool and workflow_args identify a workflow that has no name.
    tool: str = ""
    workflow_args: str = ""
    status: str
    user: str
    tasks: int
    pending: int
    running: int
    done: int
    fatal: int
    retries: int
    submitted: str | None
    elapsed_seconds: float | None


class WorkflowSummariesOut(BaseModel):
    workflows: list[WorkflowSummaryOut]


class AttemptOut(BaseModel):
    """One task instance: where it ran, how it ended, what it used (seconds, bytes)."""

    id: int
    workflow_run_id: int
    status: str
    host: str | None
    distributor_id: str | None
    exit_code: int | None
    submitted: str | None
    status_date: str
    wall_time: float | None
    cpu_time: float | None
    max_rss: int | None
    stdout_path: str | None
    stderr_path: str | None
    error: str | None


class TaskAttemptsOut(BaseModel):
    task_id: int
    workflow_id: int
    name: str
    status: str
    attempts: list[AttemptOut]


class NeighbourOut(BaseModel):
    id: int
    name: str
    status: str


class DependenciesOut(BaseModel):
    task_id: int
    upstream: list[NeighbourOut]
    downstream: list[NeighbourOut]


class LogPathOut(BaseModel):
    task_id: int
    task_name: str
    task_template: str
    task_instance_id: int
    status: str
    stdout_path: str | None
    stderr_path: str | None


class LogPathsOut(BaseModel):
    """The newest instances first; ``count`` is how many matched before the limit."""

    workflow_id: int
    count: int
    instances: list[LogPathOut]


class ErrorMessageOut(BaseModel):
    task_instance_id: int
    task_id: int
    error_time: str
    description: str


class ErrorMessagesOut(BaseModel):
    """The newest error messages of a workflow's attempts; ``count`` is all of them."""

    workflow_id: int
    count: int
    errors: list[ErrorMessageOut]


class StatisticsOut(BaseModel):
    """Order statistics over the done attempts; p95 and median interpolate linearly."""

    count: int
    min: float
    mean: float
    median: float
    p95: float
    max: float


class TemplateUsageOut(BaseModel):
    """What done attempts of one task template on one cluster used.

    ``runtime`` is wall time in seconds and ``memory`` the peak resident set in GiB; either is
    None when no attempt recorded it.
    """

    task_template: str
    cluster: str
    attempts: int
    runtime: StatisticsOut | None
    memory: StatisticsOut | None


class ResourceUsageOut(BaseModel):
    templates: list[TemplateUsageOut]
