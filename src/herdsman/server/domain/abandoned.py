"""Attempts of ended runs that nobody attends any more: closed, so that none stays live forever.

A run that ended (error, stop, resume) leaves its live attempts to its distributor, which asks
the cluster about launched and silent ones and carries out kills; each of its triage passes is
recorded on the run (:func:`record_triage`). When the run has ended and no distributor has
triaged it for ``unattended_after`` seconds -- the distributor was stopped together with the
swarm, or died -- nobody will ever learn what became of those attempts: an attempt whose worker
crashed would stay running, a job cancelled outside herdsman would stay launched. The reaper
then closes them as the lifecycle says (:data:`herdsman.core.lifecycle.ABANDONED_ATTEMPT_PATHS`)
and gives their tasks back without spending an attempt. A running attempt whose worker still
reports on time is left alone: it reports its own end.
"""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy.orm import Session

from herdsman.core import lifecycle
from herdsman.core.statuses import Transition, WorkflowRunStatus
from herdsman.server.database import models, sql
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain.transitions import end_attempt, load_instances, move_instance

__all__ = ["close_abandoned_attempts", "is_unattended", "record_triage"]

logger = structlog.get_logger(__name__)

_LIVE = lifecycle.statuses_of(lifecycle.LIVE_INSTANCE_STATUSES)


def record_triage(session: Session, run_id: int) -> None:
    """Note that a distributor attends the run now.

    Its own short transaction after the triage pass: the pass locks attempts and then the
    workflow, while run routes lock the workflow and then the run, so taking the run's lock
    inside the pass could deadlock with them.
    """
    sql.execute(
        session,
        "UPDATE workflow_run SET triage_date = ? WHERE id = ?",
        (sql.timestamp(session, models.utcnow()), run_id),
    )


def is_unattended(run: models.WorkflowRun, *, now: dt.datetime, unattended_after: float) -> bool:
    """Whether the run has ended and no distributor has triaged it for ``unattended_after``
    seconds, counted from its last triage or from its end, whichever came later."""
    if WorkflowRunStatus(run.status) not in lifecycle.ENDED_RUN_STATUSES:
        return False
    cutoff = now - dt.timedelta(seconds=unattended_after)
    return run.status_date < cutoff and (run.triage_date is None or run.triage_date < cutoff)


def close_abandoned_attempts(
    session: Session,
    run: models.WorkflowRun,
    recorder: ChangeRecorder,
    *,
    now: dt.datetime,
    unattended_after: float,
) -> list[int]:
    """Close the live attempts of ``run`` if it is unattended; the ids of those closed.

    The caller holds the locks of the run's workflow and of the run.
    """
    if not is_unattended(run, now=now, unattended_after=unattended_after):
        return []
    stamp = sql.timestamp(session, now)
    live = sql.fetch_all(
        session,
        "SELECT id, report_by_date < ? FROM task_instance WHERE workflow_run_id = ? "
        f"AND status IN {sql.in_list(len(_LIVE))}",
        (stamp, run.id, *_LIVE),
    )
    overdue = {instance_id: bool(late) for instance_id, late in live}
    message = (
        f"closed by the reaper: its run ended ({run.status}) and no distributor has attended "
        f"it for {unattended_after:g} s, so nobody is left to learn what became of this attempt"
    )
    closed = []
    for row in load_instances(session, list(overdue)):
        path = lifecycle.abandoned_attempt_path(row.status, report_overdue=overdue[row.id])
        if not path:
            continue
        *passing, last = path
        if all(
            move_instance(session, row, step, recorder, now=now) is Transition.VALID
            for step in passing
        ) and (
            end_attempt(session, row, last, message, recorder, now=now, killed=True)
            is Transition.VALID
        ):
            closed.append(row.id)
    if closed:
        logger.warning(
            "abandoned_attempts_closed",
            workflow_run_id=run.id,
            workflow_id=run.workflow_id,
            run_status=run.status,
            task_instances=len(closed),
        )
    return closed
