"""How the GUI shows statuses: one colour (a bucket) per status everywhere, stacked bars of
task counts, the health of a workflow's run and why a task is not running, in words.

Pure: facts read by :mod:`herdsman.server.queries` come in, what to show goes out, so every
sentence here is tested without a server.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from herdsman.core.lifecycle import ACTIVE_TASK_STATUSES, LIVE_WORKFLOW_RUN_STATUSES
from herdsman.core.statuses import (
    TaskInstanceStatus,
    TaskStatus,
    WorkflowRunStatus,
    WorkflowStatus,
)
from herdsman.server.queries.tasks import Blockers
from herdsman.server.queries.workflows import RunRow

__all__ = [
    "Bucket",
    "Health",
    "Segment",
    "bar",
    "bucket_of",
    "health",
    "pending_words",
    "status_name",
    "time_left",
    "why_not_running",
]


class Bucket(enum.StrEnum):
    """The six colours of the GUI; every status of every kind falls in one."""

    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    ERROR = "error"
    FATAL = "fatal"


_T, _I, _R, _W = TaskStatus, TaskInstanceStatus, WorkflowRunStatus, WorkflowStatus
_B = Bucket

_TASK: Mapping[TaskStatus, Bucket] = {
    _T.REGISTERING: _B.PENDING,
    _T.QUEUED: _B.QUEUED,
    _T.INSTANTIATING: _B.QUEUED,
    _T.LAUNCHED: _B.QUEUED,
    _T.RUNNING: _B.RUNNING,
    _T.DONE: _B.DONE,
    _T.ERROR_RECOVERABLE: _B.ERROR,
    _T.ADJUSTING_RESOURCES: _B.ERROR,
    _T.ERROR_FATAL: _B.FATAL,
}
_INSTANCE: Mapping[TaskInstanceStatus, Bucket] = {
    _I.QUEUED: _B.QUEUED,
    _I.INSTANTIATED: _B.QUEUED,
    _I.LAUNCHED: _B.QUEUED,
    _I.RUNNING: _B.RUNNING,
    _I.DONE: _B.DONE,
    _I.ERROR_FATAL: _B.FATAL,
}
_WORKFLOW: Mapping[WorkflowStatus, Bucket] = {
    _W.REGISTERING: _B.PENDING,
    _W.QUEUED: _B.QUEUED,
    _W.INSTANTIATING: _B.QUEUED,
    _W.LAUNCHED: _B.QUEUED,
    _W.RUNNING: _B.RUNNING,
    _W.DONE: _B.DONE,
    _W.FAILED: _B.FATAL,
    _W.HALTED: _B.ERROR,
    _W.ABORTED: _B.FATAL,
}
_RUN: Mapping[WorkflowRunStatus, Bucket] = {
    _R.REGISTERED: _B.PENDING,
    _R.LINKING: _B.PENDING,
    _R.BOUND: _B.QUEUED,
    _R.INSTANTIATED: _B.QUEUED,
    _R.LAUNCHED: _B.QUEUED,
    _R.RUNNING: _B.RUNNING,
    _R.DONE: _B.DONE,
    _R.ERROR: _B.FATAL,
    _R.STOPPED: _B.ERROR,
    _R.COLD_RESUME: _B.ERROR,
    _R.HOT_RESUME: _B.ERROR,
    _R.TERMINATED: _B.ERROR,
    _R.ABORTED: _B.FATAL,
}
_KINDS: Mapping[str, tuple[type[enum.StrEnum], Mapping[Any, Bucket], Bucket]] = {
    "task": (TaskStatus, _TASK, _B.PENDING),
    "instance": (TaskInstanceStatus, _INSTANCE, _B.ERROR),
    "workflow": (WorkflowStatus, _WORKFLOW, _B.PENDING),
    "run": (WorkflowRunStatus, _RUN, _B.PENDING),
}


def bucket_of(kind: str, letter: str) -> Bucket:
    """The colour of status ``letter`` of ``kind`` (task, instance, workflow or run).

    An attempt's statuses not listed are errors of one kind or another (resource error, no
    heartbeat, told to die); an unknown letter is pending.
    """
    enum_type, buckets, default = _KINDS[kind]
    try:
        return buckets.get(enum_type(letter), default)
    except ValueError:
        return _B.PENDING


def status_name(kind: str, letter: str) -> str:
    """A status as people read it: ``ERROR_FATAL`` is "error fatal"."""
    enum_type = _KINDS[kind][0]
    try:
        return enum_type(letter).name.lower().replace("_", " ")
    except ValueError:
        return letter


@dataclass(frozen=True)
class Segment:
    """One bucket's share of a stacked bar."""

    bucket: Bucket
    count: int
    percent: float


def bar(task_status_counts: Mapping[str, int]) -> list[Segment]:
    """Task counts by status letter as a stacked bar, every bucket in the same order (empty
    ones too, at 0 %, so tables line up and tests can read every count)."""
    counts = dict.fromkeys(Bucket, 0)
    for letter, count in task_status_counts.items():
        counts[bucket_of("task", letter)] += count
    total = sum(counts.values())
    return [
        Segment(bucket, count, 100.0 * count / total if total else 0.0)
        for bucket, count in counts.items()
    ]


@dataclass(frozen=True)
class Health:
    """A banner over a workflow's page: ``level`` is "ok", "warning" or "alert"."""

    level: str
    message: str


def health(workflow_status: str, run: RunRow | None, now: dt.datetime) -> Health:
    """Whether the workflow's newest run is alive: its swarm heartbeats in time, and it runs.

    A run's ``heartbeat_date`` is the time by which its swarm promised its next heartbeat, so
    one in the past means the process running the workflow stopped (the reaper ends such runs
    soon after).
    """
    if workflow_status == WorkflowStatus.DONE.value:
        return Health("ok", "done: every task finished")
    if run is None:
        return Health("warning", "never run: nothing runs until workflow.run() or a resume")
    run_status = WorkflowRunStatus(run.status)
    name = status_name("run", run.status)
    if run_status in LIVE_WORKFLOW_RUN_STATUSES and run.heartbeat_date < now:
        late = _duration((now - run.heartbeat_date).total_seconds())
        return Health(
            "alert",
            f"run {run.id} on {run.host or 'an unknown host'} is {name} but its swarm's "
            f"heartbeat is {late} overdue: the process running the workflow has probably "
            "stopped; resume the workflow to go on",
        )
    if run_status is WorkflowRunStatus.RUNNING:
        return Health("ok", f"run {run.id} is running on {run.host or 'an unknown host'}")
    message = f"not running: the newest run, {run.id}, is {name}"
    if run.status_message:
        message += f" ({run.status_message})"
    return Health("warning", message + "; resume the workflow to go on")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


_ACTIVE = frozenset(status.value for status in ACTIVE_TASK_STATUSES)


# Slurm's commonest pending reasons (squeue %r), in words; others are shown as Slurm says them.
# The names are Slurm's reason codes (job_reason_string in slurm_protocol_defs.c).
_SLURM_REASONS: Mapping[str, str] = {
    "Priority": "jobs of higher priority are ahead of it",
    "Resources": "it waits for nodes with the resources it asked for to become free",
    "Dependency": "it waits for another job to finish",
    "DependencyNeverSatisfied": "it depends on a job that failed, so it will never start",
    "JobArrayTaskLimit": "its array's limit of jobs running at once is reached",
    "BeginTime": "it may not start before its requested begin time",
    "JobHeldUser": "its owner put it on hold (scontrol release it)",
    "JobHeldAdmin": "an administrator put it on hold",
    "ReqNodeNotAvail": "a node it needs is unavailable (down, drained or reserved)",
    "PartitionTimeLimit": "its runtime is above the queue's time limit; it will not start",
    "PartitionNodeLimit": "it asks for more nodes than the queue allows",
    "PartitionDown": "its queue (partition) is down",
    "PartitionInactive": "its queue (partition) is inactive",
    "QOSMaxJobsPerUserLimit": "you have as many jobs running as your QOS allows",
    "QOSMaxCpuPerUserLimit": "your running jobs use all the CPUs your QOS allows",
    "QOSMaxMemoryPerUser": "your running jobs use all the memory your QOS allows",
    "AssocGrpCpuLimit": "your account's group uses all the CPUs it may",
    "AssocGrpMemLimit": "your account's group uses all the memory it may",
    "AssocMaxJobsLimit": "your account has as many jobs running as it may",
    "Reservation": "it waits for its reservation to start",
    "PartitionConfig": "the queue's (partition's) settings do not let it start now",
    "NodeDown": "a node it needs is down",
    "BadConstraints": "no node matches the constraints it asked for",
    "Licenses": "it waits for licenses it asked for to become free",
    "InvalidAccount": "its account is not valid; it will not start",
    "InvalidQOS": "its QOS is not valid; it will not start",
    "QOSGrpCpuLimit": "its QOS group uses all the CPUs it may",
    "QOSGrpJobsLimit": "its QOS group has as many jobs running as it may",
    "AssocGrpJobsLimit": "your account's group has as many jobs running as it may",
    "AssocGrpCPUMinutesLimit": "your account's group has used up its CPU minutes",
    "QOSMaxWallDurationPerJobLimit": "its runtime is above what its QOS allows; it will not start",
    "JobHoldMaxRequeue": "it was requeued too often and is held",
}


def pending_words(scheduler: str, reason: str) -> str:
    """A cluster's pending reason as a sentence: ``queued in the cluster: Slurm says
    (Priority): jobs of higher priority are ahead of it``.

    Slurm's ``%r`` is sometimes the reason code followed by details after a comma
    (``ReqNodeNotAvail, Reserved for maintenance``, ``ReqNodeNotAvail,
    UnavailableNodes:node1``): the code gives the words, and Slurm's whole text is kept."""
    code = reason.split(",", 1)[0].strip()
    meaning = _SLURM_REASONS.get(code) if scheduler.lower() == "slurm" else None
    said = f"queued in the cluster: {scheduler} says ({reason})"
    return f"{said}: {meaning}" if meaning else said


def why_not_running(blockers: Blockers, pending: str | None = None) -> list[str]:
    """Why a task is not running, one sentence each, the most telling first; empty for a
    running task. ``pending``: the cluster's reason its job waits, in words
    (:func:`pending_words`), when the distributor reported one."""
    status = TaskStatus(blockers.status)
    if status is TaskStatus.RUNNING:
        return []
    if status is TaskStatus.DONE:
        return ["it is done"]
    if status is TaskStatus.ERROR_FATAL:
        return [
            f"it failed for good after {blockers.num_attempts} of {blockers.max_attempts} "
            "attempts; see its attempts below, and reset it to try again"
        ]
    reasons = []
    if blockers.upstream_not_done_count:
        n = blockers.upstream_not_done_count
        reasons.append(
            f"{n} upstream task{'s are' if n != 1 else ' is'} not done"
            + (" (listed below)" if blockers.upstream_not_done else "")
        )
    if blockers.status in _ACTIVE:
        reasons.append(
            f"it is {status_name('task', blockers.status)}: "
            + (pending or "the cluster has yet to start its job")
        )
    elif blockers.template_active >= blockers.template_limit:
        reasons.append(
            f"the limit of its template {blockers.template} is full "
            f"({blockers.template_active} of {blockers.template_limit} running or queued)"
        )
    if blockers.status not in _ACTIVE and blockers.workflow_active >= blockers.workflow_limit:
        reasons.append(
            f"the workflow's limit is full ({blockers.workflow_active} of "
            f"{blockers.workflow_limit} running or queued)"
        )
    if blockers.run_status is None:
        reasons.append("the workflow has never run")
    elif blockers.run_status != WorkflowRunStatus.RUNNING.value:
        reasons.append(
            f"the workflow's newest run, {blockers.run_id}, is "
            f"{status_name('run', blockers.run_status)}, not running"
        )
    if status is TaskStatus.ERROR_RECOVERABLE:
        reasons.append(
            f"its attempt {blockers.num_attempts} of {blockers.max_attempts} failed; it will be "
            "retried"
        )
    elif status is TaskStatus.ADJUSTING_RESOURCES:
        reasons.append("its resources are being raised after an attempt ran out of them")
    if not reasons:
        reasons.append("it is ready: the swarm queues it on its next pass")
    return reasons


def time_left(task_status_counts: Mapping[str, int], median_runtime: float | None) -> float | None:
    """Seconds until a template's unfinished tasks are done, at today's pace: as many waves of
    the tasks running now as the rest needs, each as long as the median done attempt. None
    when there is no pace to go by (nothing runs, or no attempt finished yet) or nothing left.

    A rough figure by design: it knows nothing of retries to come or of limits raised later.
    """
    finished = task_status_counts.get(TaskStatus.DONE.value, 0) + task_status_counts.get(
        TaskStatus.ERROR_FATAL.value, 0
    )
    left = sum(task_status_counts.values()) - finished
    running = task_status_counts.get(TaskStatus.RUNNING.value, 0)
    if left <= 0 or running <= 0 or median_runtime is None:
        return None
    return math.ceil(left / running) * median_runtime
