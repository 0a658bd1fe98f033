"""Workflow runs: creating one, moving its status, heartbeats, and the limits it must obey.

Only one run may hold a workflow at a time. A new run of a workflow that ran before is a
resume; without ``resume`` the request is refused, so two users cannot unknowingly run the
same workflow twice. The workflow's own status follows its run's (``WORKFLOW_STATUS_FOR_RUN``).
"""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from herdsman import __version__
from herdsman.core.errors import (
    ConflictError,
    NotFoundError,
    TransitionRefused,
    WorkflowAlreadyComplete,
    WorkflowAlreadyExists,
)
from herdsman.core.schemas import swarm as schemas
from herdsman.core.statuses import (
    LIVE_WORKFLOW_RUN_STATUSES,
    WORKFLOW_STATUS_FOR_RUN,
    Transition,
    WorkflowRunStatus,
    WorkflowStatus,
    decide,
)
from herdsman.server import models
from herdsman.server.feed import ChangeRecorder

__all__ = [
    "concurrency",
    "create_run",
    "get_run",
    "run_heartbeat",
    "set_run_status",
]

logger = structlog.get_logger(__name__)

_RESETTABLE_TASK_STATUSES = ("Q", "I", "O", "R", "E", "A", "F")


def create_run(
    session: Session, workflow_id: int, request: schemas.WorkflowRunIn, recorder: ChangeRecorder
) -> schemas.WorkflowRunOut:
    """A new run holding the workflow, moved to B (bound) and ready for its swarm."""
    workflow = _workflow_for_update(session, workflow_id)
    if workflow.bound_date is None:
        raise ConflictError(
            f"workflow {workflow_id} is not completely bound; bind it again before running it",
            details={"workflow_id": workflow_id},
        )
    unfinished = session.scalar(
        select(func.count())
        .select_from(models.Task)
        .where(models.Task.workflow_id == workflow_id, models.Task.status != "D")
    )
    if unfinished == 0:
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
    for old in earlier:
        if WorkflowRunStatus(old.status) in LIVE_WORKFLOW_RUN_STATUSES:
            target = (
                WorkflowRunStatus.COLD_RESUME
                if request.reset_running_jobs
                else WorkflowRunStatus.HOT_RESUME
            )
            _move_run(session, old, target, recorder, workflow)
    if request.resume:
        _reset_unfinished_tasks(session, workflow_id, recorder)
    now = models.utcnow()
    run = models.WorkflowRun(
        workflow_id=workflow_id,
        user=request.user,
        host=request.host,
        pid=request.pid,
        herdsman_version=request.herdsman_version or __version__,
        status=WorkflowRunStatus.REGISTERED.value,
        status_date=now,
        heartbeat_date=now,
        created_date=now,
    )
    session.add(run)
    session.flush()
    for status in (WorkflowRunStatus.LINKING, WorkflowRunStatus.BOUND):
        _move_run(session, run, status, recorder, workflow)
    logger.info("workflow_run_created", workflow_run_id=run.id, workflow_id=workflow_id)
    return schemas.WorkflowRunOut(
        workflow_run_id=run.id,
        workflow_id=workflow_id,
        status=run.status,
        last_seq=workflow.change_seq,
    )


def _reset_unfinished_tasks(session: Session, workflow_id: int, recorder: ChangeRecorder) -> None:
    """A resume starts every unfinished task afresh: status G, no attempts spent."""
    task = models.Task
    ids = session.scalars(
        select(task.id).where(
            task.workflow_id == workflow_id, task.status.in_(_RESETTABLE_TASK_STATUSES)
        )
    ).all()
    if ids:
        session.execute(
            update(task)
            .where(task.workflow_id == workflow_id, task.status.in_(_RESETTABLE_TASK_STATUSES))
            .values(status="G", num_attempts=0, status_date=models.utcnow())
        )
        for task_id in ids:
            recorder.task(workflow_id, task_id, "G")


def get_run(session: Session, run_id: int) -> schemas.RunStatusOut:
    run = _run(session, run_id)
    workflow = session.get(models.Workflow, run.workflow_id)
    assert workflow is not None
    return schemas.RunStatusOut(
        workflow_run_id=run.id,
        workflow_id=run.workflow_id,
        status=run.status,
        workflow_status=workflow.status,
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
    workflow = _workflow_for_update(session, run.workflow_id)
    if _move_run(session, run, target, recorder, workflow) is Transition.REFUSED:
        raise TransitionRefused(
            f"workflow run {run_id} cannot go from {run.status} to {target.value}",
            details={"status": run.status, "workflow_run_id": run_id},
        )
    if request.message:
        logger.info("workflow_run_message", workflow_run_id=run_id, message=request.message)
    return get_run(session, run_id)


def _move_run(
    session: Session,
    run: models.WorkflowRun,
    target: WorkflowRunStatus,
    recorder: ChangeRecorder,
    workflow: models.Workflow,
) -> Transition:
    decision = decide(WorkflowRunStatus(run.status), target)
    if decision is not Transition.VALID:
        return decision
    now = models.utcnow()
    run.status = target.value
    run.status_date = now
    recorder.run(run.workflow_id, run.id, target.value)
    workflow_target = WORKFLOW_STATUS_FOR_RUN[target]
    if decide(WorkflowStatus(workflow.status), workflow_target) is Transition.VALID:
        workflow.status = workflow_target.value
        workflow.status_date = now
    session.flush()
    return decision


def run_heartbeat(
    session: Session, run_id: int, request: schemas.RunHeartbeatIn
) -> schemas.RunHeartbeatOut:
    """Push the run's report-by time forward; answer with its status and the limits in force."""
    run = _run(session, run_id)
    if WorkflowRunStatus(run.status) in LIVE_WORKFLOW_RUN_STATUSES:
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


def _workflow_for_update(session: Session, workflow_id: int) -> models.Workflow:
    workflow = session.scalars(
        select(models.Workflow).where(models.Workflow.id == workflow_id).with_for_update()
    ).first()
    if workflow is None:
        raise NotFoundError(
            f"workflow {workflow_id} does not exist", details={"value": workflow_id}
        )
    return workflow
