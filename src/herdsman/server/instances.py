"""Task instances: queueing tasks, claiming and launching instances, and the worker's reports.

Each function validates every status change against the state machines of
:mod:`herdsman.core.statuses`, records it in the change feed, and keeps the task's status in
step with its instance's: an instance that runs makes its task run, a finished one finishes
it, a failed one sends the task to a retry (G), to resource adjustment (A, after a resource
kill) or to F when its attempts are spent. Reports that arrive late or twice are ignored and
answered with the current status, so every route is safe to replay.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from herdsman import __version__
from herdsman.core.errors import ConflictError, NotFoundError
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import swarm as sschemas
from herdsman.core.schemas import worker as wschemas
from herdsman.core.statuses import TaskInstanceStatus, TaskStatus, Transition, decide
from herdsman.server import models
from herdsman.server.bulk import chunked, insert_ignore
from herdsman.server.feed import ChangeRecorder

__all__ = [
    "claim",
    "finish_without_running",
    "instance_done",
    "instance_error",
    "instance_heartbeat",
    "instance_running",
    "launched",
    "queue_tasks",
    "submit_failed",
]

logger = structlog.get_logger(__name__)

_I = TaskInstanceStatus
_T = TaskStatus
_QUEUEABLE = ("G", "A")
_CHUNK = 1000


# --- the swarm queues tasks ---------------------------------------------------------------------


def queue_tasks(
    session: Session, run_id: int, request: sschemas.QueueTasksIn, recorder: ChangeRecorder
) -> sschemas.TaskStatusesOut:
    """One new instance (Q) for each requested task in G or A; every task's status back."""
    run = _run(session, run_id)
    workflow_id = run.workflow_id
    task = models.Task
    adjusted = dict(zip(request.task_ids, request.task_resources_ids or (), strict=False))
    rows: list[Any] = []
    # Rows are locked in id order, so two requests queueing overlapping tasks cannot deadlock.
    for part in chunked(sorted(set(request.task_ids)), _CHUNK):
        rows += session.execute(
            select(task.id, task.status, task.array_id, task.task_resources_id)
            .where(task.workflow_id == workflow_id, task.id.in_(part))
            .order_by(task.id)
            .with_for_update()
        ).all()
    found = {row[0]: row for row in rows}
    missing = [task_id for task_id in request.task_ids if task_id not in found]
    if missing:
        raise NotFoundError(
            f"tasks {missing[:10]} are not tasks of workflow {workflow_id}",
            details={"task_ids": missing[:100]},
        )
    now = models.utcnow()
    to_queue = [row for row in rows if row[1] in _QUEUEABLE]
    for row in to_queue:
        if adjusted.get(row[0]):
            session.execute(
                update(task).where(task.id == row[0]).values(task_resources_id=adjusted[row[0]])
            )
    queued_ids = [row[0] for row in to_queue]
    for part in chunked(queued_ids, _CHUNK):
        session.execute(
            update(task)
            .where(task.id.in_(part))
            .values(status="Q", status_date=now, num_attempts=task.num_attempts + 1)
        )
    insert_ignore(
        session,
        models.TaskInstance,
        ("workflow_run_id", "task_id", "array_id", "task_resources_id", "status", "status_date"),
        [(run_id, row[0], row[2], adjusted.get(row[0]) or row[3], "Q", now) for row in to_queue],
    )
    for task_id, instance_id in _new_instances(session, run_id, queued_ids):
        recorder.task(workflow_id, task_id, "Q")
        recorder.instance(workflow_id, instance_id, "Q", task_id)
    statuses = {row[0]: row[1] for row in rows}
    statuses.update({task_id: "Q" for task_id in queued_ids})
    return sschemas.TaskStatusesOut(
        task_ids=list(request.task_ids), statuses=[statuses[t] for t in request.task_ids]
    )


def _new_instances(session: Session, run_id: int, task_ids: Sequence[int]) -> list[tuple[int, int]]:
    instance = models.TaskInstance
    pairs: list[tuple[int, int]] = []
    for part in chunked(task_ids, _CHUNK):
        pairs += session.execute(
            select(instance.task_id, instance.id).where(
                instance.workflow_run_id == run_id,
                instance.task_id.in_(part),
                instance.status == "Q",
            )
        ).tuples()
    return pairs


# --- the distributor claims, launches, reports failures ------------------------------------------


def claim(
    session: Session, run_id: int, limit: int, recorder: ChangeRecorder
) -> dschemas.ClaimedOut:
    """Move up to ``limit`` queued instances of the run to I and describe them for submission."""
    run = _run(session, run_id)
    instance = models.TaskInstance
    rows = session.execute(
        select(
            instance.id,
            instance.task_id,
            instance.array_id,
            models.Task.name,
            models.Task.command,
            models.TaskResources.requested,
        )
        .join(models.Task, models.Task.id == instance.task_id)
        .join(models.TaskResources, models.TaskResources.id == instance.task_resources_id)
        .where(instance.workflow_run_id == run_id, instance.status == "Q")
        .order_by(instance.id)
        .limit(limit)
        # Lock only the instances (their tasks and shared resource rows stay free), and skip
        # those another claimer holds: two distributors never block each other or take the
        # same instance.
        .with_for_update(of=instance, skip_locked=True)
    ).all()
    now = models.utcnow()
    instance_ids = [row[0] for row in rows]
    task_ids = [row[1] for row in rows]
    for part in chunked(instance_ids, _CHUNK):
        session.execute(
            update(instance).where(instance.id.in_(part)).values(status="I", status_date=now)
        )
    for part in chunked(task_ids, _CHUNK):
        session.execute(
            update(models.Task)
            .where(models.Task.id.in_(part), models.Task.status == "Q")
            .values(status="I", status_date=now)
        )
    claimed = []
    for instance_id, task_id, array_id, name, command, requested in rows:
        recorder.instance(run.workflow_id, instance_id, "I", task_id)
        recorder.task(run.workflow_id, task_id, "I")
        resources = json.loads(requested)
        claimed.append(
            dschemas.ClaimedInstance(
                task_instance_id=instance_id,
                task_id=task_id,
                array_id=array_id,
                name=name,
                command=command,
                queue=str(resources.get("queue", "")),
                resources=resources,
            )
        )
    return dschemas.ClaimedOut(
        workflow_run_id=run_id, workflow_id=run.workflow_id, instances=claimed
    )


def launched(
    session: Session, request: dschemas.LaunchedIn, recorder: ChangeRecorder
) -> dschemas.TransitionsOut:
    """Record job ids; I -> O, or just the job id when the worker reported first."""
    by_id = {item.task_instance_id: item for item in request.items}
    statuses = {}
    now = models.utcnow()
    for row in _instances(session, list(by_id)):
        item = by_id[row.id]
        row.distributor_id = item.distributor_id
        row.array_batch_num = item.array_batch_num
        row.array_step_id = item.array_step_id
        row.submitted_date = row.submitted_date or now
        _move(session, row, _I.LAUNCHED, recorder)
        statuses[row.id] = row.status
    return _transitions(list(by_id), statuses)


def submit_failed(
    session: Session, request: dschemas.SubmitFailedIn, recorder: ChangeRecorder
) -> dschemas.TransitionsOut:
    """The cluster refused the jobs: I -> W, an error log with its message, the task retried."""
    statuses = {}
    for row in _instances(session, request.task_instance_ids):
        if _move(session, row, _I.NO_DISTRIBUTOR_ID, recorder) is Transition.VALID:
            _log_error(session, row.id, f"submission failed: {request.message}")
            _task_after_error(session, row, recorder)
        statuses[row.id] = row.status
    return _transitions(request.task_instance_ids, statuses)


def finish_without_running(
    session: Session, request: dschemas.FinishIn, recorder: ChangeRecorder
) -> dschemas.TransitionsOut:
    """The dummy cluster: instances (and tasks) go to D as if their command had succeeded."""
    statuses = {}
    for row in _instances(session, request.task_instance_ids):
        _move(session, row, _I.RUNNING, recorder)
        if _move(session, row, _I.DONE, recorder) is Transition.VALID:
            row.exit_code = 0
        statuses[row.id] = row.status
    return _transitions(request.task_instance_ids, statuses)


# --- the worker reports -------------------------------------------------------------------------


def instance_running(
    session: Session,
    instance_id: int,
    request: wschemas.InstanceRunningIn,
    recorder: ChangeRecorder,
) -> wschemas.InstanceRunningOut:
    if request.herdsman_version != __version__:
        raise ConflictError(
            f"the worker runs herdsman {request.herdsman_version} but the server runs "
            f"{__version__}; install the same version on the cluster nodes",
            details={"worker_version": request.herdsman_version, "server_version": __version__},
        )
    row = _instance(session, instance_id)
    if _move(session, row, _I.RUNNING, recorder) is Transition.VALID:
        row.host = request.host
        row.pid = request.pid
        if request.distributor_id and not row.distributor_id:
            row.distributor_id = request.distributor_id
        row.report_by_date = _report_by(request.next_report_seconds)
    task = session.get(models.Task, row.task_id)
    assert task is not None
    resources = session.get(models.TaskResources, row.task_resources_id)
    requested = json.loads(resources.requested) if resources is not None else {}
    run = session.get(models.WorkflowRun, row.workflow_run_id)
    assert run is not None
    return wschemas.InstanceRunningOut(
        status=row.status,
        task_instance_id=row.id,
        task_id=task.id,
        workflow_id=task.workflow_id,
        workflow_run_id=row.workflow_run_id,
        name=task.name,
        command=task.command,
        stdout_dir=requested.get("stdout"),
        stderr_dir=requested.get("stderr"),
    )


def instance_heartbeat(
    session: Session, instance_id: int, request: wschemas.InstanceHeartbeatIn
) -> wschemas.InstanceStatusOut:
    row = _instance(session, instance_id)
    if row.status in ("R", "T"):
        row.report_by_date = _report_by(request.next_report_seconds)
        if request.stdout_tail is not None:
            row.stdout_tail = request.stdout_tail
        if request.stderr_tail is not None:
            row.stderr_tail = request.stderr_tail
    return wschemas.InstanceStatusOut(task_instance_id=row.id, status=row.status)


def instance_done(
    session: Session, instance_id: int, request: wschemas.InstanceDoneIn, recorder: ChangeRecorder
) -> wschemas.InstanceStatusOut:
    row = _instance(session, instance_id)
    if _move(session, row, _I.DONE, recorder) is Transition.VALID:
        _record_outcome(row, request.exit_code, request)
    return wschemas.InstanceStatusOut(task_instance_id=row.id, status=row.status)


def instance_error(
    session: Session, instance_id: int, request: wschemas.InstanceErrorIn, recorder: ChangeRecorder
) -> wschemas.InstanceStatusOut:
    row = _instance(session, instance_id)
    if _move(session, row, _I(request.status), recorder) is Transition.VALID:
        _record_outcome(row, request.exit_code, request)
        _log_error(session, row.id, request.message)
        _task_after_error(session, row, recorder)
    return wschemas.InstanceStatusOut(task_instance_id=row.id, status=row.status)


def _record_outcome(
    row: models.TaskInstance,
    exit_code: int | None,
    report: wschemas.InstanceDoneIn | wschemas.InstanceErrorIn,
) -> None:
    row.exit_code = exit_code
    row.stdout_tail = report.stdout_tail
    row.stderr_tail = report.stderr_tail
    row.stdout_path = report.stdout_path
    row.stderr_path = report.stderr_path
    row.wall_time = report.usage.wall_time
    row.cpu_time = report.usage.cpu_time
    row.max_rss = report.usage.max_rss


# --- shared steps -------------------------------------------------------------------------------


def _move(
    session: Session,
    row: models.TaskInstance,
    target: TaskInstanceStatus,
    recorder: ChangeRecorder,
) -> Transition:
    """Apply ``target`` to the instance if valid, and the matching change to its task."""
    decision = decide(_I(row.status), target)
    if decision is not Transition.VALID:
        return decision
    row.status = target.value
    row.status_date = models.utcnow()
    task = session.get(models.Task, row.task_id)
    assert task is not None
    recorder.instance(task.workflow_id, row.id, target.value, task.id)
    task_target = _TASK_FOLLOWS.get(target)
    if task_target is not None:
        _move_task(task, task_target, recorder)
    return decision


# The task status an instance status implies; errors are handled by _task_after_error.
_TASK_FOLLOWS: dict[TaskInstanceStatus, TaskStatus] = {
    _I.INSTANTIATED: _T.INSTANTIATING,
    _I.LAUNCHED: _T.LAUNCHED,
    _I.RUNNING: _T.RUNNING,
    _I.DONE: _T.DONE,
}


def _move_task(task: models.Task, target: TaskStatus, recorder: ChangeRecorder) -> bool:
    if decide(_T(task.status), target) is not Transition.VALID:
        return False
    task.status = target.value
    task.status_date = models.utcnow()
    recorder.task(task.workflow_id, task.id, target.value)
    return True


def _task_after_error(session: Session, row: models.TaskInstance, recorder: ChangeRecorder) -> None:
    """E, then a retry (G), resource adjustment (A) or the end (F) for the failed attempt's task."""
    task = session.get(models.Task, row.task_id)
    assert task is not None
    if not _move_task(task, _T.ERROR_RECOVERABLE, recorder):
        return
    if task.num_attempts >= task.max_attempts:
        target = _T.ERROR_FATAL
    elif row.status == _I.RESOURCE_ERROR.value:
        target = _T.ADJUSTING_RESOURCES
    else:
        target = _T.REGISTERING
    _move_task(task, target, recorder)
    logger.info(
        "task_attempt_failed",
        task_id=task.id,
        task_instance_id=row.id,
        attempts=task.num_attempts,
        max_attempts=task.max_attempts,
        next_status=target.value,
    )


def _log_error(session: Session, instance_id: int, description: str) -> None:
    session.add(
        models.TaskInstanceErrorLog(
            task_instance_id=instance_id, description=description, error_time=models.utcnow()
        )
    )


def _report_by(seconds: float) -> dt.datetime:
    return models.utcnow() + dt.timedelta(seconds=seconds)


def _instance(session: Session, instance_id: int) -> models.TaskInstance:
    row = session.get(models.TaskInstance, instance_id, with_for_update=True)
    if row is None:
        raise NotFoundError(
            f"task instance {instance_id} does not exist", details={"value": instance_id}
        )
    return row


def _instances(session: Session, instance_ids: Sequence[int]) -> list[models.TaskInstance]:
    rows: list[models.TaskInstance] = []
    for part in chunked(sorted(set(instance_ids)), _CHUNK):  # lock in id order: no deadlocks
        rows += session.scalars(
            select(models.TaskInstance)
            .where(models.TaskInstance.id.in_(part))
            .order_by(models.TaskInstance.id)
            .with_for_update()
        ).all()
    return rows


def _transitions(ids: Sequence[int], statuses: dict[int, str]) -> dschemas.TransitionsOut:
    missing = [i for i in ids if i not in statuses]
    if missing:
        raise NotFoundError(
            f"task instances {missing[:10]} do not exist", details={"task_instance_ids": missing}
        )
    return dschemas.TransitionsOut(task_instance_ids=list(ids), statuses=[statuses[i] for i in ids])


def _run(session: Session, run_id: int) -> models.WorkflowRun:
    run = session.get(models.WorkflowRun, run_id)
    if run is None:
        raise NotFoundError(f"workflow run {run_id} does not exist", details={"value": run_id})
    return run
