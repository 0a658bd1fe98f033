"""What a status change entails: the rules that move one thing because another moved.

:mod:`herdsman.core.statuses` says which single moves are allowed. This module says what
follows from them -- an attempt that runs makes its task run, a failed attempt sends its task
to a retry, to resource adjustment or to the end, a kill gives the task back without spending
an attempt, a run's status moves its workflow -- and names every set of statuses that code
elsewhere asks about ("is this instance still alive?", "which tasks may be queued?"). Every
set is derived here, from the tables where a table says it, so changing a rule is a change
to this module and the tables beside it, and nowhere else.

Everything here is pure: no database, no network, no clock. The server applies these rules to
single rows and to bulk moves alike; the swarm, the distributor, the worker and the CLI read
the same sets.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Literal

from herdsman.core.changes import ChangeFilter, ChangeKind
from herdsman.core.statuses import (
    TASK,
    TASK_BY_OWNER,
    TASK_INSTANCE,
    WORKFLOW,
    WORKFLOW_BY_OWNER,
    WORKFLOW_RUN,
    TaskInstanceStatus,
    TaskStatus,
    Transition,
    WorkflowRunStatus,
    WorkflowStatus,
)

__all__ = [
    "ABANDONED_ATTEMPT_PATHS",
    "ACTIVE_RUN_STATUSES",
    "ACTIVE_TASK_STATUSES",
    "DISTRIBUTOR_FOLLOWS",
    "DONEABLE_WORKFLOW_STATUSES",
    "ENDED_RUN_STATUSES",
    "ERROR_STATUSES",
    "FINISHED_WITHOUT_RUNNING",
    "HEARTBEAT_INSTANCE_STATUSES",
    "KILLABLE_INSTANCE_STATUSES",
    "LAPSABLE_RUN_STATUSES",
    "LIVE_INSTANCE_STATUSES",
    "LIVE_WORKFLOW_RUN_STATUSES",
    "LOST_INSTANCE_STATUSES",
    "NOT_STARTED_INSTANCE_STATUSES",
    "OWNER_TASK_TARGETS",
    "PRUNABLE_WORKFLOW_STATUSES",
    "QUEUEABLE_TASK_STATUSES",
    "RESCALABLE_TASK_STATUSES",
    "RESETTABLE_TASK_STATUSES",
    "RESUMING_RUN_STATUSES",
    "SCHEDULING_WORKFLOW_STATUSES",
    "SILENT_INSTANCE_STATUSES",
    "SWARM_FOLLOWS",
    "TAKEN_OVER_RUN_STATUSES",
    "TASK_INSTANCE_ERROR_STATUSES",
    "TASK_STATUS_AFTER_KILL",
    "TASK_STATUS_FOLLOWING",
    "UNBOUND_RUN_STATUSES",
    "UNFINISHED_INSTANCE_STATUSES",
    "UNFINISHED_TASK_STATUSES",
    "VANISHED_BEFORE_RUNNING",
    "WAITING_TASK_STATUSES",
    "ErrorStatus",
    "TaskProgress",
    "abandoned_attempt_path",
    "kills_for_resume",
    "lapsed_run_target",
    "progress_of",
    "resume_status",
    "run_startup_path",
    "scaled_on_resume",
    "statuses_of",
    "task_after_failed_attempt",
    "task_path_after_failed_attempt",
    "task_status_for_instance",
    "workflow_done_by_tasks",
    "workflow_reopened_by_owner",
    "workflow_status_for_run",
]

_T = TaskStatus
_I = TaskInstanceStatus
_R = WorkflowRunStatus
_W = WorkflowStatus


def statuses_of(statuses: frozenset[enum.StrEnum]) -> tuple[str, ...]:
    """The letters of a status set, sorted: for SQL parameters and wire values."""
    return tuple(sorted(status.value for status in statuses))


# ---------------------------------------------------------------------------------------------
# Task instances: one attempt each
# ---------------------------------------------------------------------------------------------

UNFINISHED_INSTANCE_STATUSES: frozenset[TaskInstanceStatus] = frozenset(
    set(TaskInstanceStatus) - TASK_INSTANCE.final
)
"""Attempts that may still change: queued, in the distributor's or cluster's hands, or
told to die."""

LIVE_INSTANCE_STATUSES: frozenset[TaskInstanceStatus] = UNFINISHED_INSTANCE_STATUSES - {_I.QUEUED}
"""Attempts that still need someone: the cluster has (or may have) a job for them."""

KILLABLE_INSTANCE_STATUSES: frozenset[TaskInstanceStatus] = frozenset(
    status for status in TaskInstanceStatus if TASK_INSTANCE.can(status, _I.KILL_SELF)
)
"""Attempts a stop or a cold resume tells to die: every live one not already told."""

NOT_STARTED_INSTANCE_STATUSES: frozenset[TaskInstanceStatus] = frozenset(
    {_I.QUEUED, _I.INSTANTIATED}
)
"""Attempts not yet handed to the cluster: the only ones a hot resume kills, so that jobs
already submitted may finish and count."""

HEARTBEAT_INSTANCE_STATUSES: frozenset[TaskInstanceStatus] = frozenset({_I.RUNNING, _I.TRIAGING})
"""Attempts whose worker heartbeats are recorded: running, or under triage (a late heartbeat
is evidence triage weighs)."""

SILENT_INSTANCE_STATUSES: frozenset[TaskInstanceStatus] = frozenset({_I.TRIAGING, _I.NO_HEARTBEAT})
"""Attempts whose worker fell silent: the distributor asks the cluster what became of them."""

LOST_INSTANCE_STATUSES: frozenset[TaskInstanceStatus] = frozenset(
    {_I.UNKNOWN_ERROR, _I.NO_HEARTBEAT}
)
"""Attempts that ended without a word from their command: their node, not the command, is
the first suspect when their errors are grouped."""

TASK_INSTANCE_ERROR_STATUSES: frozenset[TaskInstanceStatus] = frozenset(
    TASK_INSTANCE.final - {_I.DONE}
)
"""Final statuses that count as a failed attempt of the task."""

ErrorStatus = Literal[
    TaskInstanceStatus.ERROR, TaskInstanceStatus.RESOURCE_ERROR, TaskInstanceStatus.UNKNOWN_ERROR
]
"""What a worker, a plugin or triage may report an attempt ended as: an error of the command
(E), a kill for resources (Z: the task is retried with more) or an unknown end (U)."""

ERROR_STATUSES: frozenset[TaskInstanceStatus] = frozenset(
    {_I.ERROR, _I.RESOURCE_ERROR, _I.UNKNOWN_ERROR}
)
"""The members of :data:`ErrorStatus`, as a set."""

TASK_STATUS_FOLLOWING: Mapping[TaskInstanceStatus, TaskStatus] = {
    _I.INSTANTIATED: _T.INSTANTIATING,
    _I.LAUNCHED: _T.LAUNCHED,
    _I.RUNNING: _T.RUNNING,
    _I.DONE: _T.DONE,
}
"""The task status each progress of an attempt gives its task (claimed, launched, running,
done); see :func:`task_status_for_instance`."""


def task_status_for_instance(instance: TaskInstanceStatus) -> TaskStatus | None:
    """The status an attempt's new status gives its task; None when the task does not follow.

    Progress moves the task with it (claimed, launched, running, done). An error does not map
    to one status: :func:`task_after_failed_attempt` decides where the task goes.
    """
    return TASK_STATUS_FOLLOWING.get(instance)


FINISHED_WITHOUT_RUNNING: tuple[TaskInstanceStatus, ...] = (_I.RUNNING, _I.DONE)
"""The statuses an attempt of the dummy cluster passes through: it finishes as it starts."""

VANISHED_BEFORE_RUNNING: tuple[TaskInstanceStatus, ...] = (_I.NO_HEARTBEAT, _I.ERROR)
"""The statuses a launched attempt passes through when its job vanished before it ran."""


# ---------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------

ACTIVE_TASK_STATUSES: frozenset[TaskStatus] = frozenset(
    {_T.QUEUED, _T.INSTANTIATING, _T.LAUNCHED, _T.RUNNING}
)
"""Tasks in the distributor's or the cluster's hands: they count against concurrency limits."""

QUEUEABLE_TASK_STATUSES: frozenset[TaskStatus] = frozenset(
    status for status in TaskStatus if TASK.can(status, _T.QUEUED)
)
"""Tasks the swarm may queue: new or retried (G), or with adjusted resources (A)."""

WAITING_TASK_STATUSES: frozenset[TaskStatus] = ACTIVE_TASK_STATUSES - {_T.RUNNING}
"""Active tasks not running yet: queued, being submitted, or submitted and waiting for a node.
Progress reports count them as queued."""

UNFINISHED_TASK_STATUSES: frozenset[TaskStatus] = frozenset(set(TaskStatus) - {_T.DONE})
"""Every task status but done: a workflow with such a task has work left."""

RESETTABLE_TASK_STATUSES: frozenset[TaskStatus] = frozenset(
    {_T.REGISTERING} | {status for status in TaskStatus if TASK.can(status, _T.REGISTERING)}
)
"""Tasks a resume starts afresh (G, attempts given back): every unfinished one."""

TASK_STATUS_AFTER_KILL = _T.REGISTERING
"""Where a killed attempt leaves its task. A kill comes from a stop or a resume, not from the
task, so it spends no attempt of the task's: the task waits, unstarted, for the next run."""

OWNER_TASK_TARGETS: frozenset[TaskStatus] = frozenset(target for _, target in TASK_BY_OWNER.valid)
"""What a workflow's owner may set tasks to by hand: done, or back to registering."""


def task_after_failed_attempt(
    error: TaskInstanceStatus, *, attempts: int, max_attempts: int
) -> TaskStatus:
    """Where a task goes after an attempt ended in ``error``, its ``attempts`` spent.

    The end (F) when its attempts are spent, whatever the error; resource adjustment (A) after
    a resource kill, so the next attempt asks for more; otherwise a plain retry (G).
    """
    if error not in TASK_INSTANCE_ERROR_STATUSES:
        raise ValueError(f"{error!r} is not an error status of a task instance")
    if attempts >= max_attempts:
        return _T.ERROR_FATAL
    if error is _I.RESOURCE_ERROR:
        return _T.ADJUSTING_RESOURCES
    return _T.REGISTERING


def task_path_after_failed_attempt(
    error: TaskInstanceStatus, *, attempts: int, max_attempts: int
) -> tuple[TaskStatus, TaskStatus]:
    """The statuses the task passes through: E (the attempt failed), then the decision."""
    return (
        _T.ERROR_RECOVERABLE,
        task_after_failed_attempt(error, attempts=attempts, max_attempts=max_attempts),
    )


class TaskProgress(enum.StrEnum):
    """The coarse states that progress bars and summaries count."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FATAL = "fatal"


_PROGRESS: Mapping[TaskStatus, TaskProgress] = {
    _T.RUNNING: TaskProgress.RUNNING,
    _T.DONE: TaskProgress.DONE,
    _T.ERROR_FATAL: TaskProgress.FATAL,
}


def progress_of(status: TaskStatus) -> TaskProgress:
    """The coarse state of a task status: every status not running or final is pending."""
    return _PROGRESS.get(status, TaskProgress.PENDING)


# ---------------------------------------------------------------------------------------------
# Workflow runs and workflows
# ---------------------------------------------------------------------------------------------

UNBOUND_RUN_STATUSES: frozenset[WorkflowRunStatus] = frozenset({_R.REGISTERED, _R.LINKING})
"""Runs not yet bound to their workflow: a resume aborts them, they never started work."""

RESUMING_RUN_STATUSES: frozenset[WorkflowRunStatus] = frozenset({_R.COLD_RESUME, _R.HOT_RESUME})
"""Runs told to let go of their workflow for a resume, waiting for their kills."""

LIVE_WORKFLOW_RUN_STATUSES: frozenset[WorkflowRunStatus] = frozenset(
    set(WorkflowRunStatus) - WORKFLOW_RUN.final - {_R.ERROR, _R.STOPPED}
)
"""Runs that still hold their workflow: a new run must wait for them or resume it."""

ACTIVE_RUN_STATUSES: frozenset[WorkflowRunStatus] = frozenset(
    LIVE_WORKFLOW_RUN_STATUSES - RESUMING_RUN_STATUSES
)
"""Runs that count against a user's limit of concurrent runs: live and not letting go."""

ENDED_RUN_STATUSES: frozenset[WorkflowRunStatus] = frozenset(
    WORKFLOW_RUN.final | {_R.ERROR, _R.STOPPED} | RESUMING_RUN_STATUSES
)
"""Runs that schedule nothing more: their swarm and distributor end, once nothing lives."""

TAKEN_OVER_RUN_STATUSES: frozenset[WorkflowRunStatus] = frozenset(
    RESUMING_RUN_STATUSES | {_R.TERMINATED}
)
"""Runs whose workflow a resume took over."""

_RUN_STARTUP: tuple[WorkflowRunStatus, ...] = (_R.INSTANTIATED, _R.LAUNCHED, _R.RUNNING)


def run_startup_path(status: WorkflowRunStatus) -> tuple[WorkflowRunStatus, ...] | None:
    """The statuses a run's swarm moves it through to start running from ``status``; None
    when the run can no longer start (it ended, or a resume took it over).

    A bound run passes I, O and R; a run part of the way there goes on from where it is, so a
    swarm that starts again repeats nothing. A registered or linking run is given the bound
    run's path: the server refuses its first step until the run is bound.
    """
    if status in _RUN_STARTUP:
        return _RUN_STARTUP[_RUN_STARTUP.index(status) + 1 :]
    if status in UNBOUND_RUN_STATUSES or status is _R.BOUND:
        return _RUN_STARTUP
    return None


_LAPSED_RUN_TARGET: Mapping[WorkflowRunStatus, WorkflowRunStatus] = {
    _R.REGISTERED: _R.ABORTED,
    _R.LINKING: _R.ABORTED,
    _R.BOUND: _R.ERROR,
    _R.INSTANTIATED: _R.ERROR,
    _R.LAUNCHED: _R.ERROR,
    _R.RUNNING: _R.ERROR,
}


def lapsed_run_target(
    status: WorkflowRunStatus, *, tasks_unfinished: bool
) -> WorkflowRunStatus | None:
    """What a run whose swarm stopped heartbeating becomes; None when it is not lapsable.

    A run not yet bound never started work: it is aborted. A bound or running one failed, so
    its workflow can be resumed -- unless every task is done, in which case the swarm died
    after the work was finished and the run is done.
    """
    target = _LAPSED_RUN_TARGET.get(status)
    if target is _R.ERROR and status is _R.RUNNING and not tasks_unfinished:
        return _R.DONE
    return target


LAPSABLE_RUN_STATUSES: frozenset[WorkflowRunStatus] = frozenset(_LAPSED_RUN_TARGET)
"""Runs the reaper ends when their heartbeat is overdue."""


def resume_status(*, cold: bool) -> WorkflowRunStatus:
    """What a resume tells an earlier run: C kills all its jobs, H lets running ones finish."""
    return _R.COLD_RESUME if cold else _R.HOT_RESUME


def kills_for_resume(*, cold: bool) -> frozenset[TaskInstanceStatus]:
    """The attempts of an earlier run that a resume kills (see :func:`resume_status`)."""
    return KILLABLE_INSTANCE_STATUSES if cold else NOT_STARTED_INSTANCE_STATUSES


_WORKFLOW_STATUS_FOR_RUN: Mapping[WorkflowRunStatus, WorkflowStatus] = {
    _R.REGISTERED: _W.REGISTERING,
    _R.LINKING: _W.REGISTERING,
    _R.BOUND: _W.QUEUED,
    _R.INSTANTIATED: _W.INSTANTIATING,
    _R.LAUNCHED: _W.LAUNCHED,
    _R.RUNNING: _W.RUNNING,
    _R.DONE: _W.DONE,
    _R.ERROR: _W.FAILED,
    # A stopped or resumed run leaves its workflow halted: resumable, not failed.
    _R.STOPPED: _W.HALTED,
    _R.COLD_RESUME: _W.HALTED,
    _R.HOT_RESUME: _W.HALTED,
    _R.TERMINATED: _W.HALTED,
    _R.ABORTED: _W.ABORTED,
}


ABANDONED_ATTEMPT_PATHS: Mapping[TaskInstanceStatus, tuple[TaskInstanceStatus, ...]] = {
    _I.INSTANTIATED: (_I.NO_DISTRIBUTOR_ID,),  # claimed, never handed to the cluster
    _I.LAUNCHED: VANISHED_BEFORE_RUNNING,  # its job, if it ever starts, is refused
    _I.RUNNING: (_I.UNKNOWN_ERROR,),
    _I.TRIAGING: (_I.UNKNOWN_ERROR,),
    _I.NO_HEARTBEAT: (VANISHED_BEFORE_RUNNING[-1],),
    _I.KILL_SELF: (_I.ERROR_FATAL,),  # as a kill whose confirmation never came
}
"""How each live attempt of an ended run that nobody attends any more is closed.

An ended run's live attempts are its distributor's to see through: it asks the cluster about
launched and silent ones and carries out kills. Once no distributor has attended the run for a
while (it was stopped with the swarm, or died), nobody ever will, and an attempt left in one
of these statuses would stay there forever. It is closed as lost, and its task is given back
without spending an attempt (:data:`TASK_STATUS_AFTER_KILL`): the run ended, not the task."""


def abandoned_attempt_path(
    status: TaskInstanceStatus, *, report_overdue: bool
) -> tuple[TaskInstanceStatus, ...]:
    """The statuses an attempt of an unattended ended run passes through to be closed; empty
    when it is left alone.

    A running attempt whose worker still reports on time is left to end itself: its worker
    talks to the server directly and will report done or its error. Queued and final attempts
    have no job to lose.
    """
    if status is _I.RUNNING and not report_overdue:
        return ()
    return ABANDONED_ATTEMPT_PATHS.get(status, ())


def workflow_status_for_run(status: WorkflowRunStatus) -> WorkflowStatus:
    """The workflow status its run's status implies (applied for the workflow's latest run
    only: an older run, told to let go, no longer speaks for the workflow)."""
    return _WORKFLOW_STATUS_FOR_RUN[status]


SCHEDULING_WORKFLOW_STATUSES: frozenset[WorkflowStatus] = frozenset(
    _WORKFLOW_STATUS_FOR_RUN[status]
    for status in LIVE_WORKFLOW_RUN_STATUSES - UNBOUND_RUN_STATUSES - RESUMING_RUN_STATUSES
)
"""Workflows whose run is scheduling their tasks (queued, instantiating, launched, running)."""

DONEABLE_WORKFLOW_STATUSES: frozenset[WorkflowStatus] = frozenset(
    status for status in WorkflowStatus if WORKFLOW.can(status, _W.DONE)
)
"""Workflows that become done when their last task is: running, failed or halted ones (a
hot resume's jobs, or a stop's, may finish after the run ended)."""


PRUNABLE_WORKFLOW_STATUSES: frozenset[WorkflowStatus] = frozenset({_W.DONE, _W.FAILED, _W.HALTED})
"""Workflows that ended (done, failed, halted) and that retention may archive and remove once
they ended long enough ago and no run of theirs is live."""


def workflow_done_by_tasks(status: WorkflowStatus, *, tasks_unfinished: bool) -> bool:
    """Whether a workflow moves to done because none of its tasks is unfinished."""
    return not tasks_unfinished and WORKFLOW.decide(status, _W.DONE) is Transition.VALID


RESCALABLE_TASK_STATUSES: frozenset[TaskStatus] = frozenset(
    {_T.ERROR_FATAL, _T.ADJUSTING_RESOURCES}
)
"""Tasks whose last attempt may have been killed for resources when a resume finds them: the
ones that spent their attempts, and the ones a stopped run left waiting for new resources."""


def scaled_on_resume(task: TaskStatus, last_attempt: TaskInstanceStatus | None) -> bool:
    """Whether a resume gives the task a scaled request before queueing it: its last attempt
    was killed for resources, so the request it ran with would be killed again."""
    return task in RESCALABLE_TASK_STATUSES and last_attempt is _I.RESOURCE_ERROR


def workflow_reopened_by_owner(status: WorkflowStatus, target: TaskStatus) -> WorkflowStatus | None:
    """Where a workflow goes when its owner sets tasks to ``target`` by hand; None: it stays.

    A done workflow with tasks set back to registering is failed again (F), so that a resume
    runs them; any other update leaves the workflow as it is.
    """
    if target is not _T.REGISTERING:
        return None
    reopened = _W.FAILED
    return reopened if WORKFLOW_BY_OWNER.can(status, reopened) else None


# ---------------------------------------------------------------------------------------------
# The change feed: what each follower acts on
# ---------------------------------------------------------------------------------------------

SWARM_FOLLOWS = ChangeFilter.of(
    {
        ChangeKind.TASK: TASK.final | QUEUEABLE_TASK_STATUSES,
        ChangeKind.RUN: None,
        ChangeKind.LIMIT: None,
    }
)
"""The swarm acts on tasks that finished or need queueing (again), on its run's status, and on
changed concurrency limits."""

DISTRIBUTOR_FOLLOWS = ChangeFilter.of(
    {
        ChangeKind.INSTANCE: (_I.QUEUED, _I.KILL_SELF),
        ChangeKind.RUN: None,
    }
)
"""The distributor acts on attempts to submit or to kill, and on its run's status."""
