"""Status changes of task instances and their tasks, one row at a time, by the lifecycle rules.

Every attempt's status change that is not a bulk move (see :mod:`~.queueing` and
:mod:`~.launching` for those) goes through :func:`move_instance`: it asks the state machine of
:mod:`herdsman.core.statuses`, writes the change, records it in the change feed, and applies
what :mod:`herdsman.core.lifecycle` says follows -- the task runs with its attempt, finishes
with it, or, when the attempt failed or was killed, goes where the lifecycle sends it.
Reports that arrive late or twice are untimely: nothing changes and the caller gets the
current status, so every route is safe to replay.

These are the statements every attempt of every task runs, so they are plain SQL on narrow
rows (see :mod:`herdsman.server.database.sql`); rows are locked in id order so concurrent
requests cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.orm import Session

from herdsman.core import lifecycle
from herdsman.core.error_signature import ExitClass, error_signature, exit_class_of
from herdsman.core.errors import NotFoundError
from herdsman.core.schemas import distributor as schemas
from herdsman.core.statuses import TaskInstanceStatus, TaskStatus, Transition, decide
from herdsman.server.database import sql
from herdsman.server.database.bulk import chunked
from herdsman.server.database.error_counts import first_errors
from herdsman.server.database.feed import ChangeRecorder

__all__ = [
    "CHUNK",
    "InstanceRow",
    "end_attempt",
    "load_instance",
    "load_instances",
    "log_error",
    "move_instance",
    "move_task",
    "raise_peaks",
    "transitions_out",
    "workflow_of_run",
]

logger = structlog.get_logger(__name__)

CHUNK = 1000
"""Ids per IN (...) list in the statements of this layer."""


@dataclass
class InstanceRow:
    """The columns of a task instance and its task that status changes need."""

    id: int
    status: TaskInstanceStatus
    task_id: int
    workflow_run_id: int
    task_resources_id: int
    workflow_id: int
    task_status: TaskStatus
    num_attempts: int
    max_attempts: int
    array_id: int
    # Its task was removed from the workflow by a resume: its changes are not counted.
    removed: bool = False


_INSTANCE_COLUMNS = (
    "SELECT ti.id, ti.status, ti.task_id, ti.workflow_run_id, ti.task_resources_id, "
    "t.workflow_id, t.status, t.num_attempts, t.max_attempts, t.array_id, t.removed_date "
    "FROM task_instance ti JOIN task t ON t.id = ti.task_id WHERE "
)


def load_instances(session: Session, instance_ids: Sequence[int]) -> list[InstanceRow]:
    """The instances, locked (with their tasks) in id order; unknown ids are left out."""
    found: list[InstanceRow] = []
    for part in chunked(sorted(set(instance_ids)), CHUNK):
        if sql.for_update(session):
            # Lock the instance rows first, on their own: a lock taken through the join would
            # also cover rows other requests need (MariaDB locks every joined row).
            condition, params = sql.id_in(session, "id", part)
            sql.fetch_all(
                session,
                f"SELECT id FROM task_instance WHERE {condition} "
                f"ORDER BY id{sql.for_update(session)}",
                params,
            )
        condition, params = sql.id_in(session, "ti.id", part)
        rows = sql.fetch_all(session, _INSTANCE_COLUMNS + condition + " ORDER BY ti.id", params)
        found += [_row(*row) for row in rows]
    return found


def _row(
    instance_id: int,
    status: str,
    task_id: int,
    run_id: int,
    resources_id: int,
    workflow_id: int,
    task_status: str,
    num_attempts: int,
    max_attempts: int,
    array_id: int,
    removed_date: object,
) -> InstanceRow:
    return InstanceRow(
        instance_id,
        TaskInstanceStatus(status),
        task_id,
        run_id,
        resources_id,
        workflow_id,
        TaskStatus(task_status),
        num_attempts,
        max_attempts,
        array_id,
        removed_date is not None,
    )


def load_instance(session: Session, instance_id: int) -> InstanceRow:
    """One instance, locked; NotFoundError when it does not exist."""
    rows = load_instances(session, [instance_id])
    if not rows:
        raise NotFoundError(
            f"task instance {instance_id} does not exist", details={"value": instance_id}
        )
    return rows[0]


def move_instance(
    session: Session,
    row: InstanceRow,
    target: TaskInstanceStatus,
    recorder: ChangeRecorder,
    *,
    now: dt.datetime,
) -> Transition:
    """Apply ``target`` to the instance if valid, and the change its task follows with."""
    decision = decide(row.status, target)
    if decision is not Transition.VALID:
        return decision
    sql.execute(
        session,
        "UPDATE task_instance SET status = ?, status_date = ? WHERE id = ?",
        (target.value, sql.timestamp(session, now), row.id),
    )
    row.status = target
    recorder.instance(row.workflow_id, row.id, target, row.task_id)
    task_target = lifecycle.task_status_for_instance(target)
    if task_target is not None:
        move_task(session, row, task_target, recorder, now=now)
    return decision


def move_task(
    session: Session,
    row: InstanceRow,
    target: TaskStatus,
    recorder: ChangeRecorder,
    *,
    now: dt.datetime,
) -> bool:
    """Apply ``target`` to the instance's task if valid; whether it moved."""
    if decide(row.task_status, target) is not Transition.VALID:
        return False
    sql.execute(
        session,
        "UPDATE task SET status = ?, status_date = ? WHERE id = ?",
        (target.value, sql.timestamp(session, now), row.task_id),
    )
    recorder.task(
        row.workflow_id,
        row.task_id,
        target,
        previous=row.task_status,
        array_id=row.array_id,
        attempts=row.num_attempts,
        counted=not row.removed,
    )
    row.task_status = target
    return True


def end_attempt(
    session: Session,
    row: InstanceRow,
    target: TaskInstanceStatus,
    message: str,
    recorder: ChangeRecorder,
    *,
    now: dt.datetime,
    killed: bool = False,
    stderr_tail: str | None = None,
) -> Transition:
    """End a live attempt in an error or a confirmed kill, with its error log, and move its
    task as the lifecycle says.

    ``killed``: the attempt died because it was told to (a stop or a resume), so its task
    goes back to wait for the next run without spending an attempt; otherwise the task is
    retried, adjusted or ended (:func:`~herdsman.core.lifecycle.task_after_failed_attempt`).
    ``stderr_tail``: what the attempt's report carries; without it, the tail its last
    heartbeat left counts towards the error's signature.
    """
    previous = row.status
    decision = move_instance(session, row, target, recorder, now=now)
    if decision is not Transition.VALID:
        return decision
    if killed:
        stderr_tail = None  # a kill is a kill, whatever the command was printing
    elif stderr_tail is None:
        stderr_tail = _stored_stderr_tail(session, row.id)
    signature = error_signature(message, stderr_tail)
    kind = exit_class_of(target, message, previous=previous, killed=killed)
    log_error(session, row, message, recorder, now=now, signature=signature.digest, exit_class=kind)
    if killed:
        move_task(session, row, lifecycle.TASK_STATUS_AFTER_KILL, recorder, now=now)
    else:
        _task_after_failed_attempt(session, row, recorder, now=now)
    return decision


def _task_after_failed_attempt(
    session: Session, row: InstanceRow, recorder: ChangeRecorder, *, now: dt.datetime
) -> None:
    path = lifecycle.task_path_after_failed_attempt(
        row.status, attempts=row.num_attempts, max_attempts=row.max_attempts
    )
    for step in path:
        if not move_task(session, row, step, recorder, now=now):
            return
    logger.info(
        "task_attempt_failed",
        task_id=row.task_id,
        task_instance_id=row.id,
        attempts=row.num_attempts,
        max_attempts=row.max_attempts,
        next_status=path[-1].value,
    )


def log_error(
    session: Session,
    row: InstanceRow,
    description: str,
    recorder: ChangeRecorder,
    *,
    now: dt.datetime,
    signature: str,
    exit_class: ExitClass,
) -> None:
    """Record one error of the attempt with its signature and exit class, and count it in
    its group."""
    first = first_errors(session, row.workflow_id, row.task_id, signature, exit_class.value)
    logged = sql.fetch_one(
        session,
        "INSERT INTO task_instance_error_log (task_instance_id, workflow_id, task_id, "
        "array_id, error_time, description, signature, exit_class) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            row.id,
            row.workflow_id,
            row.task_id,
            row.array_id,
            sql.timestamp(session, now),
            description,
            signature,
            exit_class.value,
        ),
    )
    if logged is None:
        raise RuntimeError("the error log answered no id for an inserted error")
    if not row.removed:  # a removed task is out of every count, its errors too
        group = (row.workflow_id, row.array_id, signature, exit_class.value)
        recorder.error(group, first, now, int(logged[0]))


def raise_peaks(
    session: Session, task_id: int, wall_time: float | None, max_rss: int | None
) -> None:
    """Raise the task's peak runtime and memory to an attempt's, where the attempt's is
    higher; unknown (None) figures leave them as they are."""
    if wall_time is None and max_rss is None:
        return
    sql.execute(
        session,
        "UPDATE task SET "
        "peak_wall_time = CASE WHEN ? > COALESCE(peak_wall_time, -1) THEN ? "
        "ELSE peak_wall_time END, "
        "peak_rss = CASE WHEN ? > COALESCE(peak_rss, -1) THEN ? ELSE peak_rss END "
        "WHERE id = ?",
        (wall_time, wall_time, max_rss, max_rss, task_id),
    )


def _stored_stderr_tail(session: Session, instance_id: int) -> str | None:
    found = sql.fetch_one(
        session, "SELECT stderr_tail FROM task_instance WHERE id = ?", (instance_id,)
    )
    return None if found is None else found[0]


def transitions_out(ids: Sequence[int], rows: Sequence[InstanceRow]) -> schemas.TransitionsOut:
    """Each requested instance's status now, in request order; NotFoundError for unknown ids."""
    statuses = {row.id: row.status.value for row in rows}
    missing = [i for i in ids if i not in statuses]
    if missing:
        raise NotFoundError(
            f"task instances {missing[:10]} do not exist", details={"task_instance_ids": missing}
        )
    return schemas.TransitionsOut(task_instance_ids=list(ids), statuses=[statuses[i] for i in ids])


def workflow_of_run(session: Session, run_id: int) -> int:
    """The workflow id of run ``run_id``; NotFoundError when the run does not exist."""
    row = sql.fetch_one(session, "SELECT workflow_id FROM workflow_run WHERE id = ?", (run_id,))
    if row is None:
        raise NotFoundError(f"workflow run {run_id} does not exist", details={"value": run_id})
    return int(row[0])
