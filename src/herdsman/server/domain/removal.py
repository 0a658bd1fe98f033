"""Tasks a resume removes: those of a workflow that the resumed script no longer has.

A resume takes the script's DAG (:mod:`~herdsman.server.domain.binding`), and with it the
script's tasks. The server learns which tasks those are only as the bind sends them, in
chunks, so removal is in three steps, each in the transaction of its bind request:

1. when the workflow takes the new DAG, every task in it is marked as not yet sent
   (``removed_from_dag_id``: the DAG it belongs to until then), :func:`mark_unsent`;
2. each chunk of the script's tasks clears the mark of its tasks, :func:`keep_sent` -- and
   brings back a task an earlier resume removed, whose identity the script has again;
3. the end of the bind removes the tasks still marked (``removed_date``), :func:`remove_unsent`:
   they leave the kept counts (and their status, in the history), and their live attempts
   are told to die.

Until step 3 a marked task is in its workflow like any other (a run that the resume is taking
over goes on with it), and a bind interrupted between the steps is finished by binding again.
A removed task stays in the database with its attempts, for the record; no count, listing,
queueing or run sees it again.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import structlog
from sqlalchemy.orm import Session

from herdsman.server.database import models, sql
from herdsman.server.database.bulk import IN_CHUNK, chunked
from herdsman.server.database.error_counts import FirstErrors, recount_errors
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.database.usage_totals import recount_usage
from herdsman.server.domain import kills

__all__ = ["count_in_workflow", "keep_sent", "mark_unsent", "remove_unsent"]

logger = structlog.get_logger(__name__)


def mark_unsent(session: Session, workflow_id: int, dag_id: int) -> int:
    """Mark the workflow's tasks as not yet sent by the resume being bound, which takes a new
    DAG in place of ``dag_id``; answers how many were marked."""
    marked = sql.execute(
        session,
        "UPDATE task SET removed_from_dag_id = ? WHERE workflow_id = ? AND removed_date IS NULL",
        (dag_id, workflow_id),
    )
    logger.info("tasks_marked_unsent", workflow_id=workflow_id, dag_id=dag_id, tasks=marked)
    return marked


def keep_sent(
    session: Session, workflow_id: int, node_ids: Sequence[int], recorder: ChangeRecorder
) -> int:
    """The script has the tasks of these nodes: clear their marks. A task an earlier resume
    removed is back in the workflow, counted again with the status it has. Answers how many
    removed tasks came back."""
    restored: list[int] = []
    for part in chunked(sorted(set(node_ids)), IN_CHUNK):
        rows = sql.fetch_all(
            session,
            "SELECT id, array_id, status, num_attempts, removed_date FROM task "
            f"WHERE workflow_id = ? AND node_id IN {sql.in_list(len(part))} "
            "AND removed_from_dag_id IS NOT NULL ORDER BY id",
            (workflow_id, *part),
        )
        if not rows:
            continue
        sql.update_ids(
            session,
            "UPDATE task SET removed_date = NULL, removed_from_dag_id = NULL WHERE",
            (),
            [row[0] for row in rows],
        )
        for task_id, array_id, status, attempts, removed_date in rows:
            if removed_date is not None:
                recorder.task_restored(workflow_id, array_id, status, attempts)
                restored.append(task_id)
    if restored:
        _add_back_errors_and_usage(session, workflow_id, restored, recorder)
        logger.info("removed_tasks_restored", workflow_id=workflow_id, tasks=len(restored))
    return len(restored)


def remove_unsent(session: Session, workflow_id: int, recorder: ChangeRecorder) -> list[int]:
    """Remove the tasks the resume's script did not send (at the end of its bind); answers
    their ids. Their live attempts are told to die: a run the resume took over must not go on
    with them."""
    rows = sql.fetch_all(
        session,
        "SELECT id, array_id, status, num_attempts FROM task WHERE workflow_id = ? "
        "AND removed_date IS NULL AND removed_from_dag_id IS NOT NULL ORDER BY id",
        (workflow_id,),
    )
    if not rows:
        return []
    ids = [row[0] for row in rows]
    sql.update_ids(
        session,
        "UPDATE task SET removed_date = ? WHERE",
        (sql.timestamp(session, models.utcnow()),),
        ids,
    )
    for _, array_id, status, attempts in rows:
        recorder.task_removed(workflow_id, array_id, status, attempts)
    waiting = kills.kill_attempts_of_tasks(session, ids, recorder)
    _recount_errors_and_usage(session, workflow_id, recorder)
    logger.info("tasks_removed", workflow_id=workflow_id, tasks=len(ids), kills_waiting=waiting)
    return ids


def _add_back_errors_and_usage(
    session: Session, workflow_id: int, task_ids: Sequence[int], recorder: ChangeRecorder
) -> None:
    """Count the restored tasks' errors and usage again, as when they happened.

    While removed, a task's errors and usage were out of the workflow's error groups and usage
    totals, so adding them back is exact: each chunk of a bind adds its own tasks', where a
    recount would read the whole workflow's log and attempts once per chunk.
    """
    # As a recount counts them: a task once per group, and once per array it has errors in.
    grouped: set[tuple[int, int, str, str]] = set()
    with_errors: set[tuple[int, int]] = set()
    for part in chunked(sorted(task_ids), IN_CHUNK):
        condition, params = sql.id_in(session, "ti.task_id", part)
        for log_id, task_id, array_id, signature, exit_class, when in sql.fetch_all(
            session,
            "SELECT l.id, l.task_id, l.array_id, COALESCE(l.signature, ''), "
            "COALESCE(l.exit_class, ''), l.error_time FROM task_instance ti "
            f"JOIN task_instance_error_log l ON l.task_instance_id = ti.id WHERE {condition} "
            "ORDER BY l.id",
            params,
        ):
            first = FirstErrors(
                in_group=(task_id, array_id, signature, exit_class) not in grouped,
                of_task=(task_id, array_id) not in with_errors,
            )
            grouped.add((task_id, array_id, signature, exit_class))
            with_errors.add((task_id, array_id))
            moment = dt.datetime.fromisoformat(when) if isinstance(when, str) else when
            recorder.error((workflow_id, array_id, signature, exit_class), first, moment, log_id)
        for (instance_id,) in sql.fetch_all(
            session,
            f"SELECT ti.id FROM task_instance ti WHERE {condition} AND ti.wall_time IS NOT NULL",
            params,
        ):
            recorder.usage(workflow_id, instance_id)


def _recount_errors_and_usage(session: Session, workflow_id: int, recorder: ChangeRecorder) -> None:
    """Set the workflow's error groups and usage totals from the tasks now in it.

    A task's errors and usage are added to these as they happen, and cannot be taken out
    again (a group's first and last time are a minimum and a maximum), so its leaving is a
    recount, once at the end of the bind: errors and attempts are few beside tasks. The
    workflow's row is locked first, as a writer's increments lock it (see
    :mod:`~herdsman.server.database.error_counts`): one committed before is in the recount,
    one waiting for the lock adds to it after.
    """
    sql.fetch_one(
        session, f"SELECT id FROM workflow WHERE id = ?{sql.for_update(session)}", (workflow_id,)
    )
    recount_errors(session, workflow_id)
    recount_usage(session, workflow_id)
    recorder.errors_recounted(workflow_id)


def count_in_workflow(session: Session, workflow_id: int, *, sent: bool = False) -> int:
    """How many tasks the workflow has (those a resume removed are not in it); with ``sent``,
    only those the bind in progress has sent (see :func:`mark_unsent`)."""
    unsent = " AND removed_from_dag_id IS NULL" if sent else ""
    row = sql.fetch_one(
        session,
        f"SELECT COUNT(*) FROM task WHERE workflow_id = ? AND removed_date IS NULL{unsent}",
        (workflow_id,),
    )
    return int(row[0]) if row else 0
