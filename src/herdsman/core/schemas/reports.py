"""Wire schemas of the report routes the ``herdsman`` command reads: summaries, attempts,
dependencies, log paths, error messages and resource usage.

Times are ISO 8601 strings in UTC (the server's naive timestamps); durations are seconds and
memory is GiB, the units herdsman's resource parser reads back.
"""

from __future__ import annotations

from pydantic import BaseModel

__all__ = [
    "AttemptOut",
    "DependenciesOut",
    "ErrorMessageOut",
    "ErrorMessagesOut",
    "LogPathOut",
    "LogPathsOut",
    "NeighbourOut",
    "ResourceUsageOut",
    "StatisticsOut",
    "TaskAttemptsOut",
    "TemplateUsageOut",
    "WorkflowSummariesOut",
    "WorkflowSummaryOut",
]


class WorkflowSummaryOut(BaseModel):
    """One workflow with its tasks counted by where they are.

    ``pending`` counts tasks not yet in a job (registering, queued, instantiating, launched,
    recoverable error, adjusting resources); ``retries`` counts attempts beyond each task's
    first. ``elapsed_seconds`` runs from the first run's start to its runs' last status change,
    or to now while a run holds the workflow; None if it never ran.
    """

    id: int
    name: str
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
