"""Kills: telling a run's attempts to die, and settling them once their jobs are gone.

A stop or a resume tells attempts to die (-> K), and so does a resume that removed their
tasks from the workflow (:mod:`~herdsman.server.domain.removal`). An attempt with no job yet
dies at once (K -> F); the others wait for the run's distributor to kill their jobs and
confirm (K -> F), or for an operator's forced release when no distributor ever will. Either
way the task goes back to wait for the next run without spending an attempt
(:data:`~herdsman.core.lifecycle.TASK_STATUS_AFTER_KILL`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import structlog
from sqlalchemy.orm import Session

from herdsman.core import lifecycle
from herdsman.core.schemas import distributor as schemas
from herdsman.core.statuses import TaskInstanceStatus, Transition
from herdsman.server.database import models, sql
from herdsman.server.database.bulk import chunked
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain.transitions import (
    CHUNK,
    end_attempt,
    load_instances,
    move_instance,
    move_task,
    transitions_out,
)

__all__ = [
    "count_kills_waiting",
    "force_kills_done",
    "kill_attempts_of_tasks",
    "kills_done",
    "request_kills",
]

logger = structlog.get_logger(__name__)

_KILL = TaskInstanceStatus.KILL_SELF
_KILLED = TaskInstanceStatus.ERROR_FATAL
# The error log of an attempt its distributor killed on request.
_KILLED_MESSAGE = (
    "killed on request: its workflow run was stopped, a resume of the workflow took over, or a "
    "resume removed its task from the workflow"
)


def request_kills(
    session: Session,
    run_id: int,
    statuses: Iterable[TaskInstanceStatus],
    recorder: ChangeRecorder,
) -> int:
    """Tell the run's attempts in ``statuses`` to die (-> K); how many now wait for a kill.

    Queued attempts have no job yet, so their kill is settled at once (K -> F); the others
    wait for the run's distributor (or, for a running one, its worker's next heartbeat).
    """
    letters = sorted(status.value for status in statuses)
    if not letters:
        return 0
    ids = [
        row[0]
        for row in sql.fetch_all(
            session,
            "SELECT id FROM task_instance WHERE workflow_run_id = ? "
            f"AND status IN {sql.in_list(len(letters))}",
            (run_id, *letters),
        )
    ]
    waiting = _tell_to_die(session, ids, recorder)
    if ids:
        logger.info("kills_requested", workflow_run_id=run_id, instances=len(ids), waiting=waiting)
    return waiting


def kill_attempts_of_tasks(
    session: Session, task_ids: Sequence[int], recorder: ChangeRecorder
) -> int:
    """Tell every live attempt of these tasks to die, whatever run it belongs to (a resume
    removed the tasks); how many now wait for their kill to be confirmed."""
    letters = sorted(status.value for status in lifecycle.KILLABLE_INSTANCE_STATUSES)
    ids: list[int] = []
    for part in chunked(sorted(set(task_ids)), CHUNK):
        ids += [
            row[0]
            for row in sql.fetch_all(
                session,
                f"SELECT id FROM task_instance WHERE task_id IN {sql.in_list(len(part))} "
                f"AND status IN {sql.in_list(len(letters))}",
                (*part, *letters),
            )
        ]
    waiting = _tell_to_die(session, ids, recorder)
    if ids:
        logger.info("removed_tasks_killed", instances=len(ids), waiting=waiting)
    return waiting


def _tell_to_die(session: Session, instance_ids: Sequence[int], recorder: ChangeRecorder) -> int:
    """K for each instance; a queued one (no job yet) is settled at once (K -> F, its task
    back to wait). Answers how many wait for their distributor or worker to confirm."""
    now = models.utcnow()
    waiting = 0
    for row in load_instances(session, instance_ids):
        was_queued = row.status is TaskInstanceStatus.QUEUED
        if move_instance(session, row, _KILL, recorder, now=now) is not Transition.VALID:
            continue
        if was_queued:
            move_instance(session, row, _KILLED, recorder, now=now)
            move_task(session, row, lifecycle.TASK_STATUS_AFTER_KILL, recorder, now=now)
        else:
            waiting += 1
    return waiting


def kills_done(
    session: Session, request: schemas.KilledIn, recorder: ChangeRecorder
) -> tuple[schemas.TransitionsOut, set[int]]:
    """K -> F for each killed attempt; also the ids of the runs they belong to."""
    rows = load_instances(session, request.task_instance_ids)
    now = models.utcnow()
    for row in rows:
        end_attempt(session, row, _KILLED, _KILLED_MESSAGE, recorder, now=now, killed=True)
    return transitions_out(request.task_instance_ids, rows), {row.workflow_run_id for row in rows}


def count_kills_waiting(session: Session, run_id: int) -> int:
    """How many attempts of the run wait for their kill to be confirmed."""
    row = sql.fetch_one(
        session,
        "SELECT COUNT(*) FROM task_instance WHERE workflow_run_id = ? AND status = ?",
        (run_id, _KILL.value),
    )
    return int(row[0]) if row else 0


def force_kills_done(session: Session, run_id: int, message: str, recorder: ChangeRecorder) -> int:
    """Settle every kill request of the run without its distributor; how many were settled."""
    ids = [
        row[0]
        for row in sql.fetch_all(
            session,
            "SELECT id FROM task_instance WHERE workflow_run_id = ? AND status = ?",
            (run_id, _KILL.value),
        )
    ]
    now = models.utcnow()
    return sum(
        end_attempt(session, row, _KILLED, message, recorder, now=now, killed=True)
        is Transition.VALID
        for row in load_instances(session, ids)
    )
