"""Wire schemas of the read-only routes the ``herdsman`` command and the web GUI use: workflow
summaries and details, tasks, attempts, dependencies, log paths, errors and resource usage.

Times are ISO 8601 strings in UTC (the server's naive timestamps); durations are seconds and
memory is GiB, the units herdsman's resource parser reads back.
"""

from __future__ import annotations

from pydantic import BaseModel

from herdsman.core.schemas.types import Edge, UtcDateTime

__all__ = [
    "GROUP_TASK_IDS",
    "AttemptOut",
    "DependenciesOut",
    "EdgesOut",
    "ErrorGroupOut",
    "ErrorGroupsOut",
    "ErrorMessageOut",
    "ErrorMessagesOut",
    "ErrorOut",
    "ErrorSampleOut",
    "FailedTaskOut",
    "HistoryEntryOut",
    "HistoryOut",
    "KilledForResourcesOut",
    "KilledTaskOut",
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
    "TimelineOut",
    "UsageTotalsOut",
    "WorkflowClustersOut",
    "WorkflowDetailOut",
    "WorkflowErrorsOut",
    "WorkflowSummariesOut",
    "WorkflowSummaryOut",
]


GROUP_TASK_IDS = 100
"""Task ids an error group lists; its ``tasks`` counts them all."""


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
    edges: list[Edge]


class ResourcesOut(BaseModel):
    id: int
    kind: str
    queue_id: int | None
    requested: dict[str, object]


class TaskDetailOut(TaskOut):
    """A task with what defines it. ``removed_date`` is set when a resume whose script no
    longer had the task took it out of its workflow (kept for the record, never run again)."""

    workflow_id: int
    node_args: dict[str, str]
    task_args: dict[str, str]
    attributes: dict[str, str]
    original_resources: ResourcesOut
    resources: ResourcesOut
    upstream_task_ids: list[int]
    downstream_task_ids: list[int]
    removed_date: str | None = None


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


class KilledTaskOut(BaseModel):
    """A task whose last attempt was killed for resources (Z), with what a resume scales:
    the task's request now and what the attempt asked for (memory in bytes, runtime in
    seconds; None where it did not say)."""

    task_id: int
    name: str
    status: str
    task_resources_id: int
    task_instance_id: int
    requested_memory: int | None
    requested_runtime: float | None
    requested_cores: int | None


class KilledForResourcesOut(BaseModel):
    """The workflow's unfinished tasks that a resume gives a scaled request before queueing
    them (:func:`herdsman.core.lifecycle.scaled_on_resume`), by task id."""

    workflow_id: int
    tasks: list[KilledTaskOut]


class WorkflowErrorsOut(BaseModel):
    workflow_id: int
    count: int
    tasks: list[FailedTaskOut]


class WorkflowSummaryOut(BaseModel):
    """One workflow with its tasks counted by where they are.

    ``pending`` counts tasks not yet in a job (registering, queued, instantiating, launched,
    recoverable error, adjusting resources); ``retries`` counts attempts beyond each task's
    first. ``elapsed_seconds`` runs from the first run's start to its runs' last status change,
    or to now while a run holds the workflow; None if it never ran. ``task_status_counts``
    counts tasks by status letter, ``runs`` counts its runs, and ``last_heartbeat`` is the
    report-by time its newest run's swarm last promised (ISO, UTC; None if it never ran).
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
    task_status_counts: dict[str, int] = {}
    runs: int = 0
    last_heartbeat: str | None = None


class WorkflowSummariesOut(BaseModel):
    workflows: list[WorkflowSummaryOut]


class AttemptOut(BaseModel):
    """One task instance: where it ran, how it ended, what it requested and used (seconds,
    bytes, cores), the ends of its output, and its last error with its exit class.

    ``stdout_tail`` and ``stderr_tail`` are the last characters the worker kept (up to
    10,000), or their last ``tail_lines`` lines when the request asked for fewer.
    """

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
    requested_memory: int | None = None
    requested_runtime: float | None = None
    requested_cores: int | None = None
    stdout_path: str | None
    stderr_path: str | None
    stdout_tail: str = ""
    stderr_tail: str = ""
    error: str | None
    exit_class: str | None = None


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


class ErrorSampleOut(BaseModel):
    """The newest error of a group, as the attempt that had it recorded it."""

    task_instance_id: int
    task_id: int
    task_name: str
    error_time: str
    message: str
    exit_code: int | None
    stdout_tail: str
    stderr_tail: str


class ErrorGroupOut(BaseModel):
    """A workflow's errors that share a signature and an exit class.

    ``pattern`` is the signature's text (the message and the last meaningful stderr lines,
    with numbers, paths, hex strings, ids and timestamps masked). ``count`` is how many errors
    the group holds and ``tasks`` how many distinct tasks; ``task_ids`` lists the first
    :data:`GROUP_TASK_IDS` of them. ``first_seen`` and ``last_seen`` are ISO times in UTC.
    ``sample`` is the newest error's message, ``newest`` that error with its attempt's output.
    """

    signature: str
    exit_class: str
    pattern: str
    count: int
    tasks: int
    task_ids: list[int]
    first_seen: str
    last_seen: str
    sample: str
    newest: ErrorSampleOut


class ErrorGroupsOut(BaseModel):
    """A workflow's errors by group, largest group first (newest first among equals).

    ``count`` and ``tasks`` count every error and every task with an error; ``group_count``
    is the number of groups, of which the first ``limit`` are listed.
    """

    workflow_id: int
    count: int
    tasks: int
    group_count: int
    groups: list[ErrorGroupOut]


class StatisticsOut(BaseModel):
    """Order statistics over the done attempts; the median and the percentiles interpolate
    linearly between order statistics."""

    count: int
    min: float
    mean: float
    median: float
    p90: float = 0.0
    p95: float
    p99: float = 0.0
    max: float


class TemplateUsageOut(BaseModel):
    """What done attempts of one task template of one tool on one cluster used.

    ``runtime`` is wall time in seconds and ``memory`` the peak resident set in GiB; either is
    None when no attempt recorded it.
    """

    tool: str = ""
    task_template: str
    cluster: str
    attempts: int
    runtime: StatisticsOut | None
    memory: StatisticsOut | None


class ResourceUsageOut(BaseModel):
    templates: list[TemplateUsageOut]


class HistoryEntryOut(BaseModel):
    """One audited request: who asked what, and the HTTP status of the answer."""

    time: UtcDateTime
    user: str
    role: str
    method: str
    path: str
    status_code: int
    message: str


class HistoryOut(BaseModel):
    workflow_id: int
    entries: list[HistoryEntryOut]


class UsageTotalsOut(BaseModel):
    """What a workflow's attempts asked for and used, over every attempt that reported its
    usage: core-hours (cores asked times wall time, against CPU time) and memory in GiB-hours
    (memory asked times wall time, against peak memory times wall time). A figure is None when
    no attempt recorded what it needs (a request, or a measure)."""

    workflow_id: int
    attempts: int
    core_hours_requested: float | None
    core_hours_used: float | None
    memory_gib_hours_requested: float | None
    memory_gib_hours_used: float | None


class TimelineOut(BaseModel):
    """A workflow's tasks by status over time, from the kept history of its status changes.

    ``times`` are the ends of the buckets (seconds since the epoch, UTC), the first one the
    start of the history; ``statuses`` maps each task status letter to how many tasks had it at
    each of those times. ``running`` is the tasks running (R) at each time, beside
    ``max_concurrently_running``, the workflow's limit now. ``bucket_seconds`` is the width of
    one bucket; an empty history has no times.
    """

    workflow_id: int
    bucket_seconds: int
    times: list[int]
    statuses: dict[str, list[int]]
    running: list[int]
    max_concurrently_running: int
