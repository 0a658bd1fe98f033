"""Wire schemas of the swarm's routes: runs, heartbeats, queueing, the change feed, sync."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from herdsman.core.schemas.types import (
    Edge,
    Id,
    IdOrZero,
    Limit32,
    LongText,
    OptionalName,
    Seconds,
    check_text,
)

__all__ = [
    "ChangeOut",
    "ChangesOut",
    "ConcurrencyOut",
    "QueueTasksIn",
    "RunHeartbeatIn",
    "RunHeartbeatOut",
    "RunStatusIn",
    "RunStatusOut",
    "SwarmEdgesOut",
    "SwarmTaskOut",
    "SwarmTasksOut",
    "TaskStatusesOut",
    "WorkflowRunIn",
    "WorkflowRunOut",
]

Letter = Annotated[str, StringConstraints(min_length=1, max_length=1)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WorkflowRunIn(_In):
    """Start a run of a bound workflow. ``resume`` lets it take over from an older live run."""

    host: OptionalName = ""
    pid: Limit32 | None = None
    herdsman_version: Annotated[
        str, StringConstraints(max_length=32), AfterValidator(check_text)
    ] = ""
    resume: bool = False
    reset_running_jobs: bool = True


class WorkflowRunOut(BaseModel):
    workflow_run_id: int
    workflow_id: int
    status: str
    # Change-feed position when the run started: changes after it are news to the swarm.
    last_seq: int
    # Earlier runs still letting go of the workflow (status G): link the run once they have.
    waiting_on: list[int] = []


class RunStatusIn(_In):
    status: Letter
    message: LongText = ""


class RunStatusOut(BaseModel):
    workflow_run_id: int
    workflow_id: int
    status: str
    workflow_status: str
    # Why the run has its status, as sent with the change ("stopped by alice", a timeout).
    status_message: str = ""


class RunHeartbeatIn(_In):
    """``next_report_seconds``: the run is reaped if no beat arrives within this many."""

    next_report_seconds: Seconds


class ConcurrencyOut(BaseModel):
    """Limits in force: the workflow's and each array's ``max_concurrently_running``."""

    max_concurrently_running: int
    array_limits: dict[int, int]


class RunHeartbeatOut(BaseModel):
    status: str
    concurrency: ConcurrencyOut


class QueueTasksIn(_In):
    """Tasks to queue; each gets one new task instance unless it is already queued or active.

    ``task_resources_ids[i]``, when given, replaces task i's resources (an adjustment after a
    resource kill); 0 keeps the current ones.
    """

    task_ids: list[Id]
    task_resources_ids: list[IdOrZero] | None = None


class TaskStatusesOut(BaseModel):
    """Current status of each task asked about, aligned with the request."""

    task_ids: list[int]
    statuses: list[str]


class ChangeOut(BaseModel):
    """One status change. ``kind``: T task, I task instance, R workflow run, L a concurrency
    limit of the workflow (``status`` empty)."""

    seq: int
    kind: Literal["T", "I", "R", "L"]
    id: int
    status: str
    task_id: int | None = None


class ChangesOut(BaseModel):
    """Changes after the requested sequence number, in order; ``last_seq`` to ask next."""

    last_seq: int
    changes: list[ChangeOut]


class SwarmTaskOut(BaseModel):
    task_id: int
    array_id: int
    status: str
    num_upstreams: int
    task_resources_id: int
    max_attempts: int
    num_attempts: int
    resource_scales: str
    fallback_queues: str


class SwarmTasksOut(BaseModel):
    """A page of a workflow's tasks for loading a run from the database."""

    tasks: list[SwarmTaskOut]
    next_task_id: int | None


class SwarmEdgesOut(BaseModel):
    """A page of dependencies as (upstream task id, downstream task id)."""

    edges: list[Edge]
    next_offset: int | None


# --- resource adjustment ---------------------------------------------------------------------

__all__ += [
    "AdjustedResourcesIn",
    "AdjustedResourcesItemIn",
    "AdjustedResourcesOut",
    "TaskResourcesOut",
    "TaskResourcesQueryIn",
    "TaskResourcesRowOut",
]


class AdjustedResourcesItemIn(_In):
    """A new request for a task: scaled after a resource kill, or from its callable.

    ``requested`` is in canonical units (memory GiB, runtime seconds) and names its ``queue``,
    which must be a queue of task ``task_id``'s cluster. Tasks given the same request can
    share one row: any one of them stands for the others.
    """

    task_id: Id
    requested: dict[str, object]


class AdjustedResourcesIn(_In):
    """New requests to store; each becomes a row of its own, so the history shows each try."""

    items: list[AdjustedResourcesItemIn]


class AdjustedResourcesOut(BaseModel):
    """The new rows' ids, aligned with the request's items; queue tasks with them."""

    task_resources_ids: list[int]


class TaskResourcesQueryIn(_In):
    """Resource rows to read: by their ids, and the current ones of tasks by the tasks' ids."""

    task_resources_ids: list[Id] = Field(default_factory=list)
    task_ids: list[Id] = Field(default_factory=list)


class TaskResourcesRowOut(BaseModel):
    """One stored request. ``kind``: original, validated or adjusted."""

    id: int
    kind: str
    cluster: str | None
    queue: str | None
    requested: dict[str, object]


class TaskResourcesOut(BaseModel):
    """Each row asked for once; ``task_resources_ids`` are the tasks' current rows, aligned."""

    resources: list[TaskResourcesRowOut]
    task_resources_ids: list[int]
