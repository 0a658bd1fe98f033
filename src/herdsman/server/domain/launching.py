"""The distributor's reports on what it handed to the cluster: launched, refused, or (on the
dummy cluster) finished without running."""

from __future__ import annotations

from sqlalchemy.orm import Session

from herdsman.core import lifecycle
from herdsman.core.schemas import distributor as schemas
from herdsman.core.statuses import TaskInstanceStatus, Transition, decide
from herdsman.server.database import models, sql
from herdsman.server.database.bulk import update_rows
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain.transitions import (
    end_attempt,
    load_instances,
    move_instance,
    transitions_out,
)

__all__ = ["finish_without_running", "launched", "submit_failed"]


def launched(
    session: Session, request: schemas.LaunchedIn, recorder: ChangeRecorder
) -> schemas.TransitionsOut:
    """Record job ids; I -> O, or just the job id when the worker reported first."""
    by_id = {item.task_instance_id: item for item in request.items}
    rows = load_instances(session, list(by_id))
    now = models.utcnow()
    stamp = sql.timestamp(session, now)
    update_rows(
        session,
        models.TaskInstance,
        ("distributor_id", "array_batch_num", "array_step_id"),
        [
            (
                by_id[row.id].distributor_id,
                by_id[row.id].array_batch_num,
                by_id[row.id].array_step_id,
                row.id,
            )
            for row in rows
        ],
        also="submitted_date = COALESCE(submitted_date, ?)",
        also_params=(stamp,),
    )
    for row in rows:
        move_instance(session, row, TaskInstanceStatus.LAUNCHED, recorder, now=now)
    return transitions_out(list(by_id), rows)


def submit_failed(
    session: Session, request: schemas.SubmitFailedIn, recorder: ChangeRecorder
) -> schemas.TransitionsOut:
    """The cluster refused the jobs: I -> W, an error log with its message, the task moved on
    as after any failed attempt."""
    rows = load_instances(session, request.task_instance_ids)
    now = models.utcnow()
    message = f"submission failed: {request.message}"
    for row in rows:
        end_attempt(session, row, TaskInstanceStatus.NO_DISTRIBUTOR_ID, message, recorder, now=now)
    return transitions_out(request.task_instance_ids, rows)


_FINISHED = lifecycle.FINISHED_WITHOUT_RUNNING


def finish_without_running(
    session: Session, request: schemas.FinishIn, recorder: ChangeRecorder
) -> schemas.TransitionsOut:
    """The dummy cluster: attempts (and tasks) end done as if their command had succeeded.

    Done in bulk, since scale tests send tens of thousands at a time: attempts that may start
    running, and their tasks, pass through R to D in two statements; anything else is left as
    it is.
    """
    rows = load_instances(session, request.task_instance_ids)
    running, done = _FINISHED
    running_task, done_task = (lifecycle.TASK_STATUS_FOLLOWING[step] for step in _FINISHED)
    movable = [
        row
        for row in rows
        if decide(row.status, running) is Transition.VALID
        and decide(row.task_status, running_task) is Transition.VALID
    ]
    stamp = sql.timestamp(session, models.utcnow())
    sql.update_ids(
        session,
        "UPDATE task_instance SET status = ?, status_date = ?, exit_code = 0 WHERE",
        (done.value, stamp),
        [row.id for row in movable],
    )
    sql.update_ids(
        session,
        "UPDATE task SET status = ?, status_date = ? WHERE",
        (done_task.value, stamp),
        [row.task_id for row in movable],
    )
    for row in movable:
        for step in _FINISHED:
            recorder.instance(row.workflow_id, row.id, step, row.task_id)
            task_step = lifecycle.TASK_STATUS_FOLLOWING[step]
            recorder.task(
                row.workflow_id,
                row.task_id,
                task_step,
                previous=row.task_status,
                array_id=row.array_id,
                attempts=row.num_attempts,
                counted=not row.removed,
            )
            row.task_status = task_step
        row.status = done
    return transitions_out(request.task_instance_ids, rows)
