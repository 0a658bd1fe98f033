"""Workflow runs: creating one, moving its status, heartbeats, and the limits it must obey.

Only one run may hold a workflow at a time. A new run of a workflow that ran before is a
resume; without ``resume`` the request is refused, so two users cannot unknowingly run the
same workflow twice. The workflow's own status follows its run's
(:func:`~herdsman.core.lifecycle.workflow_status_for_run`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from herdsman import __version__
from herdsman.core import lifecycle
from herdsman.core.changes import ChangeKind
from herdsman.core.errors import (
    ConflictError,
    NotFoundError,
    TooManyRequestsError,
    TransitionRefused,
    WorkflowAlreadyComplete,
    WorkflowAlreadyExists,
)
from herdsman.core.schemas import swarm as schemas
from herdsman.core.statuses import (
    WORKFLOW_RUN,
    TaskStatus,
    Transition,
    WorkflowRunStatus,
    WorkflowStatus,
    decide,
)
from herdsman.server.database import models
from herdsman.server.database.bulk import chunked
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain import kills

__all__ = [
    "concurrency",
    "count_unfinished",
    "create_run",
    "force_release",
    "get_run",
    "link_run",
    "move_run",
    "release_settled",
    "run_heartbeat",
    "set_run_status",
    "workflow_for_update",
]

logger = structlog.get_logger(__name__)

_RESETTABLE_TASK_STATUSES = lifecycle.statuses_of(lifecycle.RESETTABLE_TASK_STATUSES)
_LIVE_INSTANCE_STATUSES = lifecycle.statuses_of(lifecycle.LIVE_INSTANCE_STATUSES)
_UNFINISHED_INSTANCE_STATUSES = lifecycle.statuses_of(lifecycle.UNFINISHED_INSTANCE_STATUSES)
_LETTING_GO = lifecycle.RESUMING_RUN_STATUSES
# A new run's first heartbeat is due this long after its creation: its swarm loads the DAG
# (minutes for millions of tasks) or waits for an earlier run to let go before it beats.
START_GRACE_SECONDS = 600.0


def _check_active_runs(session: Session, user: str, workflow_id: int, limit: int) -> None:
    active = session.scalar(
        select(func.count())
        .select_from(models.WorkflowRun)
        .where(
            models.WorkflowRun.user == user,
            models.WorkflowRun.workflow_id != workflow_id,
            models.WorkflowRun.status.in_([s.value for s in lifecycle.ACTIVE_RUN_STATUSES]),
        )
    )
    if active is not None and active >= limit:
        raise TooManyRequestsError(
            f"user {user} already has {active} active workflow runs, the server's "
            f"server.max_active_runs_per_user limit of {limit}; start this one when one of "
            "them has finished",
            details={"limit": "server.max_active_runs_per_user", "value": limit, "active": active},
        )


def create_run(
    session: Session,
    workflow_id: int,
    request: schemas.WorkflowRunIn,
    user: str,
    recorder: ChangeRecorder,
    *,
    max_active_runs: int = 0,
) -> schemas.WorkflowRunOut:
    """A new run of the workflow by ``user``: bound (B) and ready for its swarm, or registered
    (G).

    ``max_active_runs`` (0: no limit) refuses the run with 429 when ``user`` already has that
    many active runs of other workflows (a resume's earlier runs of this workflow are being
    replaced, so they do not count). Checked when the run starts: two runs started at the same
    instant may both pass.

    A resume first tells the workflow's earlier runs to let go: cold (``reset_running_jobs``)
    kills all their jobs, hot kills only those that have not started, so running jobs may
    finish and count. While an earlier run still waits for kills, the new run stays G and
    names it in ``waiting_on``; the client calls :func:`link_run` once it has let go.
    """
    workflow = workflow_for_update(session, workflow_id)
    if max_active_runs:
        _check_active_runs(session, user, workflow_id, max_active_runs)
    if workflow.bound_date is None:
        raise ConflictError(
            f"workflow {workflow_id} is not completely bound; bind it again before running it",
            details={"workflow_id": workflow_id},
        )
    if count_unfinished(session, workflow_id) == 0:
        raise WorkflowAlreadyComplete(
            f"every task of workflow {workflow_id} is done; there is nothing to run",
            details={"workflow_id": workflow_id},
        )
    earlier = session.scalars(
        select(models.WorkflowRun)
        .where(models.WorkflowRun.workflow_id == workflow_id)
        .order_by(models.WorkflowRun.id)
    ).all()
    if earlier and not request.resume:
        raise WorkflowAlreadyExists(
            f"workflow {workflow_id} has run before (last run {earlier[-1].id}, status "
            f"{earlier[-1].status}); resume it with run(resume=True) to continue where it stopped",
            details={"workflow_id": workflow_id, "workflow_run_id": earlier[-1].id},
        )
    waiting_on = [
        old.id
        for old in earlier
        if _let_go(session, old, request.reset_running_jobs, recorder, workflow)
    ]
    now = models.utcnow()
    run = models.WorkflowRun(
        workflow_id=workflow_id,
        user=user,
        host=request.host,
        pid=request.pid,
        herdsman_version=request.herdsman_version or __version__,
        status=WorkflowRunStatus.REGISTERED.value,
        status_date=now,
        heartbeat_date=now + dt.timedelta(seconds=START_GRACE_SECONDS),
        created_date=now,
    )
    session.add(run)
    session.flush()
    logger.info(
        "workflow_run_created",
        workflow_run_id=run.id,
        workflow_id=workflow_id,
        resume=request.resume,
        waiting_on=waiting_on,
    )
    if waiting_on:
        return _run_out(run, workflow, waiting_on)
    # A first run finds every task new (G, no attempts): nothing to reset, which for a
    # million tasks is worth not scanning for.
    return _link(session, run, workflow, recorder, reset_tasks=bool(earlier))


def link_run(session: Session, run_id: int, recorder: ChangeRecorder) -> schemas.WorkflowRunOut:
    """Bind a registered run to its workflow once no earlier run holds it any more (G -> B).

    Idempotent: a run already linked answers as it is. Refused (409, naming the runs) while an
    earlier run still waits for its kills; :func:`force_release` settles those.
    """
    run = _run(session, run_id)
    workflow = workflow_for_update(session, run.workflow_id)
    if run.status != WorkflowRunStatus.REGISTERED.value:
        return _replayed_link(session, run, workflow)
    holding = [
        old.id
        for old in session.scalars(
            select(models.WorkflowRun).where(
                models.WorkflowRun.workflow_id == run.workflow_id,
                models.WorkflowRun.id != run.id,
                models.WorkflowRun.status.in_([s.value for s in _LETTING_GO]),
            )
        ).all()
    ]
    if holding:
        raise ConflictError(
            f"workflow {run.workflow_id} is still held by run(s) {holding}, whose jobs are being "
            "killed; wait for them, or force their release if the jobs are gone",
            details={"workflow_run_ids": holding},
        )
    return _link(session, run, workflow, recorder)


def force_release(session: Session, run_id: int, recorder: ChangeRecorder) -> schemas.RunStatusOut:
    """End a letting-go run whose kills were never confirmed: K -> F, then the run -> T.

    For jobs killed outside herdsman, or a distributor that died: nobody else will ever
    confirm those kills, and the workflow cannot be resumed until they are settled.
    """
    run = _run(session, run_id)
    workflow = workflow_for_update(session, run.workflow_id)
    if WorkflowRunStatus(run.status) in _LETTING_GO:
        message = (
            "the kill was not confirmed before the resume's timeout; herdsman assumed the job "
            "was gone (check the cluster for a job still running)"
        )
        settled = kills.force_kills_done(session, run.id, message, recorder)
        move_run(session, run, WorkflowRunStatus.TERMINATED, recorder, workflow)
        logger.warning("workflow_run_released_by_force", workflow_run_id=run.id, kills=settled)
    return get_run(session, run_id)


def release_settled(
    session: Session, run_ids: Iterable[int], recorder: ChangeRecorder
) -> list[tuple[models.WorkflowRun, WorkflowRunStatus]]:
    """Letting-go runs among ``run_ids`` whose kills are all confirmed now end (-> T).

    Returns each run released with the status it had. Used when a distributor confirms
    kills and by the reaper, for runs whose last kill was settled some other way.
    """
    released = []
    for run_id in sorted(set(run_ids)):
        run = _run(session, run_id)
        previous = WorkflowRunStatus(run.status)
        if previous not in _LETTING_GO or kills.count_kills_waiting(session, run_id):
            continue
        workflow = workflow_for_update(session, run.workflow_id)
        if move_run(session, run, WorkflowRunStatus.TERMINATED, recorder, workflow) is (
            Transition.VALID
        ):
            released.append((run, previous))
    return released


def _let_go(
    session: Session,
    old: models.WorkflowRun,
    cold: bool,
    recorder: ChangeRecorder,
    workflow: models.Workflow,
) -> bool:
    """Ask an earlier run to let go of the workflow; True while it still waits for kills."""
    status = WorkflowRunStatus(old.status)
    if status in lifecycle.UNBOUND_RUN_STATUSES:
        move_run(session, old, WorkflowRunStatus.ABORTED, recorder, workflow)
        return False
    if status in _LETTING_GO:
        return True
    # A run that ended in error or was stopped may still have jobs running (a distributor
    # sees them through); those must let go too. A final run has none.
    ended_with_jobs = status not in WORKFLOW_RUN.final and _has_live(session, old.id)
    if status not in lifecycle.LIVE_WORKFLOW_RUN_STATUSES and not ended_with_jobs:
        return False
    target = lifecycle.resume_status(cold=cold)
    if move_run(session, old, target, recorder, workflow) is not Transition.VALID:
        return False
    if kills.request_kills(session, old.id, lifecycle.kills_for_resume(cold=cold), recorder) == 0:
        move_run(session, old, WorkflowRunStatus.TERMINATED, recorder, workflow)
        return False
    return True


def _link(
    session: Session,
    run: models.WorkflowRun,
    workflow: models.Workflow,
    recorder: ChangeRecorder,
    *,
    reset_tasks: bool = True,
) -> schemas.WorkflowRunOut:
    # L is the link's first change, so the position before it is the one to answer, also
    # to a replay (see _replayed_link).
    move_run(session, run, WorkflowRunStatus.LINKING, recorder, workflow)
    if reset_tasks:
        _reset_unfinished_tasks(session, run.workflow_id, recorder)
    move_run(session, run, WorkflowRunStatus.BOUND, recorder, workflow)
    return _run_out(run, workflow, [])


def _replayed_link(
    session: Session, run: models.WorkflowRun, workflow: models.Workflow
) -> schemas.WorkflowRunOut:
    """The answer the link gave: the feed position just before the run's L change."""
    linked_at = session.scalar(
        select(models.StatusChange.seq).where(
            models.StatusChange.workflow_id == run.workflow_id,
            models.StatusChange.kind == ChangeKind.RUN.value,
            models.StatusChange.object_id == run.id,
            models.StatusChange.status == WorkflowRunStatus.LINKING.value,
        )
    )
    out = _run_out(run, workflow, [])
    if linked_at is not None:
        out.last_seq = int(linked_at) - 1
    return out


def _run_out(
    run: models.WorkflowRun, workflow: models.Workflow, waiting_on: list[int]
) -> schemas.WorkflowRunOut:
    return schemas.WorkflowRunOut(
        workflow_run_id=run.id,
        workflow_id=run.workflow_id,
        status=run.status,
        last_seq=workflow.change_seq,
        waiting_on=waiting_on,
    )


def count_unfinished(session: Session, workflow_id: int) -> int:
    """How many of the workflow's tasks are not done (those a resume removed are not its)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(models.Task)
            .where(
                models.Task.workflow_id == workflow_id,
                models.Task.status != TaskStatus.DONE.value,
                models.Task.removed_date.is_(None),
            )
        )
        or 0
    )


def _has_live(session: Session, run_id: int) -> bool:
    live = session.scalar(
        select(func.count())
        .select_from(models.TaskInstance)
        .where(
            models.TaskInstance.workflow_run_id == run_id,
            models.TaskInstance.status.in_(_UNFINISHED_INSTANCE_STATUSES),
        )
    )
    return bool(live)


def _reset_unfinished_tasks(session: Session, workflow_id: int, recorder: ChangeRecorder) -> None:
    """Start every unfinished task afresh (G, no attempts spent), except those still running.

    A task whose instance still lives (a hot resume let it run on) keeps its status: its
    outcome counts for the new run like any other report.
    """
    task, instance = models.Task, models.TaskInstance
    still_running = (
        select(instance.task_id)
        .where(
            instance.task_id == task.id,
            instance.status.in_(_LIVE_INSTANCE_STATUSES),
        )
        .exists()
    )
    rows = session.execute(
        select(task.id, task.status, task.array_id, task.num_attempts).where(
            task.workflow_id == workflow_id,
            task.status.in_(_RESETTABLE_TASK_STATUSES),
            task.removed_date.is_(None),
            ~still_running,
        )
    ).all()
    now = models.utcnow()
    for part in chunked([row[0] for row in rows], 1000):
        session.execute(
            update(task)
            .where(task.id.in_(part))
            .values(status=TaskStatus.REGISTERING.value, num_attempts=0, status_date=now)
        )
    for task_id, status, array_id, attempts in rows:
        if status != TaskStatus.REGISTERING:
            recorder.task(
                workflow_id,
                task_id,
                TaskStatus.REGISTERING,
                previous=status,
                array_id=array_id,
                attempts=attempts,
                attempts_after=0,
            )
        elif attempts:
            recorder.task_attempts(workflow_id, array_id, status, attempts, 0)


def get_run(session: Session, run_id: int) -> schemas.RunStatusOut:
    run = _run(session, run_id)
    workflow = session.get_one(models.Workflow, run.workflow_id)  # a run's workflow exists
    return schemas.RunStatusOut(
        workflow_run_id=run.id,
        workflow_id=run.workflow_id,
        status=run.status,
        workflow_status=workflow.status,
        status_message=run.status_message,
    )


def set_run_status(
    session: Session, run_id: int, request: schemas.RunStatusIn, recorder: ChangeRecorder
) -> schemas.RunStatusOut:
    """Move the run (and its workflow) to ``request.status``; refused moves raise 409."""
    run = _run(session, run_id)
    try:
        target = WorkflowRunStatus(request.status)
    except ValueError:
        known = ", ".join(f"{s.value} ({s.name.lower()})" for s in WorkflowRunStatus)
        raise ConflictError(
            f"{request.status!r} is not a workflow run status; use one of {known}"
        ) from None
    workflow = workflow_for_update(session, run.workflow_id)
    decision = move_run(session, run, target, recorder, workflow)
    if decision is Transition.REFUSED:
        raise TransitionRefused(
            f"workflow run {run_id} cannot go from {run.status} to {target.value}",
            details={"status": run.status, "workflow_run_id": run_id},
        )
    if decision is Transition.VALID and target is WorkflowRunStatus.STOPPED:
        # A stopped run's jobs are killed; a run that ends in error leaves them running.
        kills.request_kills(session, run.id, lifecycle.KILLABLE_INSTANCE_STATUSES, recorder)
    if request.message:
        logger.info("workflow_run_message", workflow_run_id=run_id, message=request.message)
        if decision is Transition.VALID:
            # Why the run has its status: who stopped it, why its swarm ended it.
            run.status_message = request.message[: models.STATUS_MESSAGE_LENGTH]
    return get_run(session, run_id)


def move_run(
    session: Session,
    run: models.WorkflowRun,
    target: WorkflowRunStatus,
    recorder: ChangeRecorder,
    workflow: models.Workflow,
) -> Transition:
    """Move the run to ``target`` if valid; the workflow follows its latest run only.

    An older run (told to let go by a resume) no longer speaks for the workflow: the newer
    run does, and the old run's end must not move the workflow under it.
    """
    decision = decide(WorkflowRunStatus(run.status), target)
    if decision is not Transition.VALID:
        return decision
    now = models.utcnow()
    run.status = target.value
    run.status_date = now
    recorder.run(run.workflow_id, run.id, target)
    workflow_target = lifecycle.workflow_status_for_run(target)
    if decide(
        WorkflowStatus(workflow.status), workflow_target
    ) is Transition.VALID and not _has_newer_run(session, run):
        workflow.status = workflow_target.value
        workflow.status_date = now
    session.flush()
    return decision


def _has_newer_run(session: Session, run: models.WorkflowRun) -> bool:
    newer = select(models.WorkflowRun.id).where(
        models.WorkflowRun.workflow_id == run.workflow_id, models.WorkflowRun.id > run.id
    )
    return session.scalar(newer.limit(1)) is not None


def run_heartbeat(
    session: Session, run_id: int, request: schemas.RunHeartbeatIn
) -> schemas.RunHeartbeatOut:
    """Push the run's report-by time forward; answer with its status and the limits in force."""
    run = _run(session, run_id)
    if WorkflowRunStatus(run.status) in lifecycle.LIVE_WORKFLOW_RUN_STATUSES:
        run.heartbeat_date = models.utcnow() + dt.timedelta(seconds=request.next_report_seconds)
    return schemas.RunHeartbeatOut(
        status=run.status, concurrency=concurrency(session, run.workflow_id)
    )


def concurrency(session: Session, workflow_id: int) -> schemas.ConcurrencyOut:
    limit = session.scalar(
        select(models.Workflow.max_concurrently_running).where(models.Workflow.id == workflow_id)
    )
    arrays = session.execute(
        select(models.Array.id, models.Array.max_concurrently_running).where(
            models.Array.workflow_id == workflow_id
        )
    ).tuples()
    return schemas.ConcurrencyOut(
        max_concurrently_running=int(limit or 0), array_limits=dict(arrays.all())
    )


def _run(session: Session, run_id: int) -> models.WorkflowRun:
    run = session.get(models.WorkflowRun, run_id)
    if run is None:
        raise NotFoundError(f"workflow run {run_id} does not exist", details={"value": run_id})
    return run


def workflow_for_update(session: Session, workflow_id: int) -> models.Workflow:
    """The workflow, locked until the transaction ends; every change to it or its runs
    takes this lock first, so they are applied one at a time."""
    workflow = session.scalars(
        select(models.Workflow).where(models.Workflow.id == workflow_id).with_for_update()
    ).first()
    if workflow is None:
        raise NotFoundError(
            f"workflow {workflow_id} does not exist", details={"value": workflow_id}
        )
    return workflow
