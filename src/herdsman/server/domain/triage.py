"""Triage: attempts whose worker fell silent or whose job vanished, judged with the cluster.

The distributor asks for a triage pass now and then (:func:`triage_scan`): the server moves
the run's overdue running attempts to T and lists what only the cluster can explain --
launched attempts (did their job vanish?), silent ones (what became of them?) and those told
to die (kill them). The distributor asks its plugin and reports back (:func:`triaged`).
"""

from __future__ import annotations

import structlog
from sqlalchemy.orm import Session

from herdsman.core import lifecycle
from herdsman.core.errors import NotFoundError
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import worker as wschemas
from herdsman.core.statuses import TaskInstanceStatus, Transition
from herdsman.server.database import models, sql
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain.transitions import (
    InstanceRow,
    end_attempt,
    load_instances,
    move_instance,
    raise_peaks,
    transitions_out,
)

__all__ = ["triage_scan", "triaged"]

logger = structlog.get_logger(__name__)

_I = TaskInstanceStatus
_LIVE = lifecycle.statuses_of(lifecycle.LIVE_INSTANCE_STATUSES)
# What the distributor must check with the cluster, by status: launched (vanished?), silent
# (what became of it?) and told to die (kill it).
_CHECKED = (_I.LAUNCHED, *sorted(lifecycle.SILENT_INSTANCE_STATUSES), _I.KILL_SELF)


def triage_scan(
    session: Session, run_id: int, recorder: ChangeRecorder, *, judge_silence: bool = True
) -> dschemas.TriageOut:
    """Move the run's overdue running attempts to T; list what the distributor must check.

    An attempt is overdue when its worker's last report promised the next one by a time now
    past. Whether it died, was killed for resources or merely lost its network is for the
    cluster to say, so the distributor asks the plugin and reports through :func:`triaged`.
    Without ``judge_silence`` nothing moves to T (see
    :class:`~herdsman.core.schemas.distributor.TriageIn`).
    """
    run = sql.fetch_one(
        session, "SELECT workflow_id, status FROM workflow_run WHERE id = ?", (run_id,)
    )
    if run is None:
        raise NotFoundError(f"workflow run {run_id} does not exist", details={"value": run_id})
    now = models.utcnow()
    overdue = (
        [
            row[0]
            for row in sql.fetch_all(
                session,
                "SELECT id FROM task_instance WHERE workflow_run_id = ? AND status = ? "
                "AND report_by_date < ?",
                (run_id, _I.RUNNING.value, sql.timestamp(session, now)),
            )
        ]
        if judge_silence
        else []
    )
    for row in load_instances(session, overdue):
        if move_instance(session, row, _I.TRIAGING, recorder, now=now) is Transition.VALID:
            logger.info("task_instance_overdue", task_instance_id=row.id, task_id=row.task_id)
    # Counted, not listed: a run may have a hundred thousand running attempts, and only the
    # launched, silent and doomed ones need the cluster's word.
    live = sum(
        count
        for _, count in sql.fetch_all(
            session,
            "SELECT status, COUNT(*) FROM task_instance WHERE workflow_run_id = ? "
            f"AND status IN {sql.in_list(len(_LIVE))} GROUP BY status",
            (run_id, *_LIVE),
        )
    )
    refs: dict[TaskInstanceStatus, list[dschemas.InstanceRef]] = {s: [] for s in _CHECKED}
    for instance_id, distributor_id, status in sql.fetch_all(
        session,
        "SELECT id, distributor_id, status FROM task_instance WHERE workflow_run_id = ? "
        f"AND status IN {sql.in_list(len(_CHECKED))} ORDER BY id",
        (run_id, *(status.value for status in _CHECKED)),
    ):
        refs[_I(status)].append(
            dschemas.InstanceRef(
                task_instance_id=instance_id, distributor_id=distributor_id, status=status
            )
        )
    return dschemas.TriageOut(
        workflow_run_id=run_id,
        run_status=run[1],
        launched=refs[_I.LAUNCHED],
        triaging=[ref for s in sorted(lifecycle.SILENT_INSTANCE_STATUSES) for ref in refs[s]],
        kill=refs[_I.KILL_SELF],
        live=live,
    )


def triaged(
    session: Session, request: dschemas.TriagedIn, recorder: ChangeRecorder
) -> dschemas.TransitionsOut:
    """Record what the cluster said: T -> E/Z/U, or O -> X -> E for a job that never ran.

    Each outcome is an error of the attempt, so the task moves on as after any failed
    attempt. An attempt that reported meanwhile (it is R or final now) is left alone: its own
    report is better evidence than the cluster's.
    """
    by_id = {item.task_instance_id: item for item in request.items}
    rows = load_instances(session, list(by_id))
    now = models.utcnow()
    for row in rows:
        item = by_id[row.id]
        if row.status is _I.LAUNCHED:
            vanished, target = lifecycle.VANISHED_BEFORE_RUNNING
            if move_instance(session, row, vanished, recorder, now=now) is not Transition.VALID:
                continue
        elif row.status is _I.NO_HEARTBEAT:
            target = lifecycle.VANISHED_BEFORE_RUNNING[-1]
        elif row.status is _I.TRIAGING:
            target = _I(item.status)
        else:
            continue
        decision = end_attempt(session, row, target, item.message, recorder, now=now)
        if decision is Transition.VALID and item.usage is not None:
            _record_cluster_usage(session, row, item.usage, recorder)
    return transitions_out(list(by_id), rows)


def _record_cluster_usage(
    session: Session, row: InstanceRow, usage: wschemas.Usage, recorder: ChangeRecorder
) -> None:
    """The cluster's measure of a job whose worker could not report; the worker's own wins."""
    stored = sql.fetch_one(
        session, "SELECT wall_time, max_rss FROM task_instance WHERE id = ?", (row.id,)
    )
    wall_before, rss_before = stored if stored is not None else (None, None)
    sql.execute(
        session,
        "UPDATE task_instance SET wall_time = COALESCE(wall_time, ?), "
        "cpu_time = COALESCE(cpu_time, ?), max_rss = COALESCE(max_rss, ?) WHERE id = ?",
        (usage.wall_time, usage.cpu_time, usage.max_rss, row.id),
    )
    # What the row holds now, by the COALESCE above.
    wall = wall_before if wall_before is not None else usage.wall_time
    raise_peaks(session, row.task_id, wall, rss_before if rss_before is not None else usage.max_rss)
    if wall_before is None and wall is not None and not row.removed:
        recorder.usage(row.workflow_id, row.id)
