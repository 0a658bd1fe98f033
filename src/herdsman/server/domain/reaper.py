"""The reaper: ends what nobody heartbeats any more.

A swarm that dies (its host crashed, its process was killed) leaves its run live and its
workflow held, and a resume would have to take the run over by force. The reaper notices such
runs from the report-by time each heartbeat promises (``workflow_run.heartbeat_date``) and ends
them, so the workflow shows failed and can be resumed. It also settles what the state machines
leave to an absent party: a run told to let go for a resume (C, H) once no kill request of its
instances is pending, and a running workflow whose tasks are all done while no run holds it.

One pass is :func:`reap`: a few cheap indexed reads (live runs by status, running workflows by
status), then one short transaction per workflow that needs a change. Each transaction locks
the workflow row first, as the run routes do, then its runs, and re-checks every condition
under those locks, so reapers in several server processes (and a heartbeat arriving at the
same moment) can run at once without a run being ended twice or wrongly. Every change goes
through the state machines and into the change feed; followers waiting in this process are
woken after each commit.

The server runs :func:`reap_periodically` in its lifespan; ``herdsman server reaper`` runs the
same loop on its own, for deployments whose servers run with the reaper disabled.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import structlog
from sqlalchemy import Exists, exists, select
from sqlalchemy.orm import Mapped, Session

from herdsman.core import lifecycle
from herdsman.core.statuses import (
    TaskInstanceStatus,
    Transition,
    WorkflowRunStatus,
    WorkflowStatus,
)
from herdsman.server.database import models
from herdsman.server.database.engine import Database
from herdsman.server.database.feed import ChangeNotifier, ChangeRecorder, FeedWriter
from herdsman.server.domain.runs import move_run, release_settled

__all__ = [
    "ReapReport",
    "ReapedRun",
    "reap",
    "reap_periodically",
]

logger = structlog.get_logger(__name__)

_R = WorkflowRunStatus

_LAPSABLE = lifecycle.statuses_of(lifecycle.LAPSABLE_RUN_STATUSES)
_RESUMING = lifecycle.statuses_of(lifecycle.RESUMING_RUN_STATUSES)
_LIVE = lifecycle.statuses_of(lifecycle.LIVE_WORKFLOW_RUN_STATUSES)
_UNFINISHED_TASK = lifecycle.statuses_of(lifecycle.UNFINISHED_TASK_STATUSES)
_DONEABLE = lifecycle.statuses_of(lifecycle.DONEABLE_WORKFLOW_STATUSES)


@dataclass(frozen=True)
class ReapedRun:
    """One run the reaper moved."""

    workflow_run_id: int
    workflow_id: int
    previous: WorkflowRunStatus
    status: WorkflowRunStatus


@dataclass(frozen=True)
class ReapReport:
    """What one pass did.

    ``lapsed``: runs whose heartbeat was overdue (to A, E, or D when every task was done).
    ``terminated``: runs of a resume (C, H) that had let go, moved to T.
    ``completed_workflows``: running workflows with every task done and no live run, moved to D.
    """

    lapsed: tuple[ReapedRun, ...] = ()
    terminated: tuple[ReapedRun, ...] = ()
    completed_workflows: tuple[int, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.lapsed or self.terminated or self.completed_workflows)

    def summary(self) -> str:
        """One line for people: what the pass changed, or that it changed nothing."""
        if not self.changed:
            return "nothing to reap"
        parts = []
        for target in (_R.ERROR, _R.ABORTED, _R.DONE):
            count = sum(1 for run in self.lapsed if run.status is target)
            if count:
                parts.append(f"{count} lapsed run(s) -> {target.value} ({target.name.lower()})")
        if self.terminated:
            parts.append(f"{len(self.terminated)} resumed run(s) -> T (terminated)")
        if self.completed_workflows:
            parts.append(f"{len(self.completed_workflows)} workflow(s) -> D (done)")
        return "; ".join(parts)


@dataclass
class _Candidates:
    """What the unlocked reads suggest, by workflow; re-checked under the workflow's lock."""

    lapsed: dict[int, list[int]] = field(default_factory=dict)
    resumed: dict[int, list[int]] = field(default_factory=dict)
    doneable: set[int] = field(default_factory=set)

    def workflow_ids(self) -> list[int]:
        # Ascending, like every multi-row lock in herdsman, so reapers cannot deadlock.
        return sorted({*self.lapsed, *self.resumed, *self.doneable})


def reap(
    database: Database,
    *,
    notifier: ChangeNotifier | None = None,
    now: dt.datetime | None = None,
) -> ReapReport:
    """One pass of the reaper over the whole database; returns what it changed.

    ``now`` (naive UTC, like every stored timestamp) defaults to the clock of this process;
    report-by times are dated by the servers' clocks, which must agree (NTP). A new run's
    report-by time already allows for the start of its swarm (see
    :data:`herdsman.server.domain.runs.START_GRACE_SECONDS`). ``notifier`` wakes the change-feed
    long-polls of this server process after each commit; a standalone reaper has none to wake.
    """
    now = now if now is not None else models.utcnow()
    write = FeedWriter(database, notifier if notifier is not None else ChangeNotifier())
    found = database.read(lambda session: _candidates(session, now))
    lapsed: list[ReapedRun] = []
    terminated: list[ReapedRun] = []
    completed: list[int] = []
    for workflow_id in found.workflow_ids():
        lapsed_here, terminated_here, done_here = write(_settle_workflow(workflow_id, found, now))
        lapsed.extend(lapsed_here)
        terminated.extend(terminated_here)
        if done_here:
            completed.append(workflow_id)
    report = ReapReport(tuple(lapsed), tuple(terminated), tuple(completed))
    if report.changed:
        logger.info("reaper_pass", summary=report.summary())
    else:
        logger.debug("reaper_pass", summary=report.summary())
    return report


async def reap_periodically(
    database: Database,
    *,
    interval: float,
    stop: asyncio.Event,
    notifier: ChangeNotifier | None = None,
) -> None:
    """Run :func:`reap` in a worker thread every ``interval`` seconds until ``stop`` is set.

    The first pass comes one interval after the start, not at once: a server (re)starting
    after an outage would otherwise reap runs whose swarms could not heartbeat while it was
    down and are about to again. A failing pass (the database is unreachable, say) is logged
    and the loop goes on; a pass under way when ``stop`` is set is finished, not abandoned.
    """
    logger.info("reaper_started", interval=interval)
    try:
        while not await _wait(stop, interval):
            try:
                await asyncio.to_thread(reap, database, notifier=notifier)
            except Exception:
                logger.exception("reaper_pass_failed")
    finally:
        logger.info("reaper_stopped")


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` or until ``stop`` is set; True when it was set."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


# --- reading the candidates -------------------------------------------------------------------


def _candidates(session: Session, now: dt.datetime) -> _Candidates:
    """Cheap reads without locks: live runs and running workflows are found by status index."""
    found = _Candidates()
    run = models.WorkflowRun
    lapsed = session.execute(
        select(run.id, run.workflow_id)
        .where(run.status.in_(_LAPSABLE), run.heartbeat_date < now)
        .order_by(run.id)
    ).all()
    for run_id, workflow_id in lapsed:
        found.lapsed.setdefault(workflow_id, []).append(run_id)
    resumed = session.execute(
        select(run.id, run.workflow_id)
        .where(run.status.in_(_RESUMING), ~_has_kill_request(run.id))
        .order_by(run.id)
    ).all()
    for run_id, workflow_id in resumed:
        found.resumed.setdefault(workflow_id, []).append(run_id)
    workflow = models.Workflow
    doneable = session.scalars(
        select(workflow.id).where(
            workflow.status.in_(_DONEABLE),
            workflow.bound_date.is_not(None),
            ~_has_unfinished_task(workflow.id),
            ~_has_live_run(workflow.id),
        )
    )
    found.doneable.update(doneable)
    return found


def _has_kill_request(run_id: Mapped[int] | int) -> Exists:
    instance = models.TaskInstance
    return exists().where(
        instance.workflow_run_id == run_id,
        instance.status == TaskInstanceStatus.KILL_SELF.value,
    )


def _has_unfinished_task(workflow_id: Mapped[int] | int) -> Exists:
    # Unfinished statuses listed rather than "!= D": each is one seek in the (workflow_id,
    # status) index, where "!= D" would walk past every done task of a large workflow.
    task = models.Task
    return exists().where(task.workflow_id == workflow_id, task.status.in_(_UNFINISHED_TASK))


def _has_live_run(workflow_id: Mapped[int] | int) -> Exists:
    run = models.WorkflowRun
    return exists().where(run.workflow_id == workflow_id, run.status.in_(_LIVE))


# --- settling one workflow, under its lock ----------------------------------------------------

_Settled = tuple[list[ReapedRun], list[ReapedRun], bool]


def _settle_workflow(
    workflow_id: int, found: _Candidates, now: dt.datetime
) -> Callable[[Session, ChangeRecorder], _Settled]:
    """The unit of work for one workflow: its lapsed runs, its resumed runs, then itself."""

    def work(session: Session, recorder: ChangeRecorder) -> _Settled:
        workflow = session.scalars(
            select(models.Workflow).where(models.Workflow.id == workflow_id).with_for_update()
        ).first()
        if workflow is None:
            return [], [], False
        lapsed = []
        for run in _runs_for_update(session, found.lapsed.get(workflow_id, ())):
            current = WorkflowRunStatus(run.status)
            if current not in lifecycle.LAPSABLE_RUN_STATUSES or run.heartbeat_date >= now:
                continue  # it heartbeated, or another reaper got here first
            target = lifecycle.lapsed_run_target(
                current, tasks_unfinished=_has_unfinished(session, workflow_id)
            )
            if (
                target is not None
                and move_run(session, run, target, recorder, workflow) is Transition.VALID
            ):
                run.status_message = (
                    "its swarm stopped heartbeating (the process running the workflow died or "
                    "lost the server); ended by the server's reaper"
                )
                lapsed.append(_reaped(run, current, workflow))
        _runs_for_update(session, found.resumed.get(workflow_id, ()))  # locked in id order
        terminated = [
            _reaped(run, previous, workflow)
            for run, previous in release_settled(
                session, found.resumed.get(workflow_id, ()), recorder
            )
        ]
        return lapsed, terminated, _complete_if_done(session, workflow)

    return work


def _runs_for_update(session: Session, run_ids: Iterable[int]) -> list[models.WorkflowRun]:
    ids = sorted(run_ids)
    if not ids:
        return []
    run = models.WorkflowRun
    return list(
        session.scalars(select(run).where(run.id.in_(ids)).order_by(run.id).with_for_update()).all()
    )


def _has_unfinished(session: Session, workflow_id: int) -> bool:
    return bool(session.scalar(select(_has_unfinished_task(workflow_id))))


def _reaped(
    run: models.WorkflowRun, previous: WorkflowRunStatus, workflow: models.Workflow
) -> ReapedRun:
    logger.info(
        "workflow_run_reaped",
        workflow_run_id=run.id,
        workflow_id=run.workflow_id,
        workflow_status=workflow.status,
        **{"from": previous.value, "to": run.status},
    )
    return ReapedRun(run.id, run.workflow_id, previous, WorkflowRunStatus(run.status))


def _complete_if_done(session: Session, workflow: models.Workflow) -> bool:
    """Mark a workflow done when every task is and no run holds it."""
    if workflow.status not in _DONEABLE or workflow.bound_date is None:
        return False
    if _has_unfinished(session, workflow.id):
        return False
    if session.scalar(select(_has_live_run(workflow.id))):
        return False
    previous = workflow.status
    workflow.status = WorkflowStatus.DONE.value
    workflow.status_date = models.utcnow()
    session.flush()
    logger.info(
        "workflow_completed_by_reaper",
        workflow_id=workflow.id,
        **{"from": previous, "to": WorkflowStatus.DONE.value},
    )
    return True
