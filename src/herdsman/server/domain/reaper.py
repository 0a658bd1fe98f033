"""The reaper: ends what nobody heartbeats any more.

A swarm that dies (its host crashed, its process was killed) leaves its run live and its
workflow held, and a resume would have to take the run over by force. The reaper notices such
runs from the report-by time each heartbeat promises (``workflow_run.heartbeat_date``) and ends
them, so the workflow shows failed and can be resumed. It also settles what the state machines
leave to an absent party: a run told to let go for a resume (C, H) once no kill request of its
instances is pending, a running workflow whose tasks are all done while no run holds it, and
the live attempts of an ended run that no distributor attends any more
(:mod:`herdsman.server.domain.abandoned`).

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
from sqlalchemy import Exists, exists, literal, select, union_all
from sqlalchemy.orm import Mapped, Session

from herdsman.core import lifecycle
from herdsman.core.config import ReaperSettings
from herdsman.core.statuses import (
    TaskInstanceStatus,
    Transition,
    WorkflowRunStatus,
    WorkflowStatus,
)
from herdsman.server.database import models
from herdsman.server.database.engine import Database
from herdsman.server.database.feed import ChangeNotifier, ChangeRecorder, FeedWriter
from herdsman.server.domain.abandoned import close_abandoned_attempts
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
_ENDED = lifecycle.statuses_of(lifecycle.ENDED_RUN_STATUSES)
_LIVE_INSTANCE = lifecycle.statuses_of(lifecycle.LIVE_INSTANCE_STATUSES)
_RELEASE, _CLOSE = "release", "close"
UNATTENDED_AFTER = ReaperSettings().unattended_after
"""Seconds without a distributor before an ended run's live attempts are closed (default)."""


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
    ``abandoned_attempts``: live attempts of ended runs nobody attended, closed.
    """

    lapsed: tuple[ReapedRun, ...] = ()
    terminated: tuple[ReapedRun, ...] = ()
    completed_workflows: tuple[int, ...] = ()
    abandoned_attempts: tuple[int, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(
            self.lapsed or self.terminated or self.completed_workflows or self.abandoned_attempts
        )

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
        if self.abandoned_attempts:
            parts.append(
                f"{len(self.abandoned_attempts)} abandoned attempt(s) of ended runs closed"
            )
        return "; ".join(parts)


@dataclass
class _Candidates:
    """What the unlocked reads suggest, by workflow; re-checked under the workflow's lock."""

    lapsed: dict[int, list[int]] = field(default_factory=dict)
    resumed: dict[int, list[int]] = field(default_factory=dict)
    doneable: set[int] = field(default_factory=set)
    unattended: dict[int, list[int]] = field(default_factory=dict)

    def workflow_ids(self) -> list[int]:
        # Ascending, like every multi-row lock in herdsman, so reapers cannot deadlock.
        return sorted({*self.lapsed, *self.resumed, *self.doneable, *self.unattended})


def reap(
    database: Database,
    *,
    notifier: ChangeNotifier | None = None,
    now: dt.datetime | None = None,
    unattended_after: float = UNATTENDED_AFTER,
) -> ReapReport:
    """One pass of the reaper over the whole database; returns what it changed.

    ``now`` (naive UTC, like every stored timestamp) defaults to the clock of this process;
    report-by times are dated by the servers' clocks, which must agree (NTP). A new run's
    report-by time already allows for the start of its swarm (see
    :data:`herdsman.server.domain.runs.START_GRACE_SECONDS`). ``notifier`` wakes the change-feed
    long-polls of this server process after each commit; a standalone reaper has none to wake.
    ``unattended_after``: seconds an ended run may go without a distributor's triage before its
    live attempts are closed (the ``reaper.unattended_after`` setting).
    """
    now = now if now is not None else models.utcnow()
    write = FeedWriter(database, notifier if notifier is not None else ChangeNotifier())
    found = database.read(lambda session: _candidates(session, now, unattended_after))
    lapsed: list[ReapedRun] = []
    terminated: list[ReapedRun] = []
    completed: list[int] = []
    abandoned: list[int] = []
    for workflow_id in found.workflow_ids():
        settled = write(_settle_workflow(workflow_id, found, now, unattended_after))
        lapsed.extend(settled.lapsed)
        terminated.extend(settled.terminated)
        abandoned.extend(settled.abandoned_attempts)
        if settled.completed_workflows:
            completed.append(workflow_id)
    report = ReapReport(tuple(lapsed), tuple(terminated), tuple(completed), tuple(abandoned))
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
    unattended_after: float = UNATTENDED_AFTER,
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
                await asyncio.to_thread(
                    reap, database, notifier=notifier, unattended_after=unattended_after
                )
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


def _candidates(session: Session, now: dt.datetime, unattended_after: float) -> _Candidates:
    """Cheap reads without locks: runs and workflows are found by their status indexes."""
    found = _Candidates()
    run = models.WorkflowRun
    lapsed = session.execute(
        select(run.id, run.workflow_id)
        .where(run.status.in_(_LAPSABLE), run.heartbeat_date < now)
        .order_by(run.id)
    ).all()
    for run_id, workflow_id in lapsed:
        found.lapsed.setdefault(workflow_id, []).append(run_id)
    # Ended runs that still hold something, in one read: resumed runs whose kills are all
    # settled (to be released), and runs nobody attends that have live attempts (to close).
    cutoff = now - dt.timedelta(seconds=unattended_after)
    resumed = select(run.id, run.workflow_id, literal(_RELEASE).label("kind")).where(
        run.status.in_(_RESUMING), ~_has_kill_request(run.id)
    )
    unattended = select(run.id, run.workflow_id, literal(_CLOSE).label("kind")).where(
        run.status.in_(_ENDED),
        run.status_date < cutoff,
        run.triage_date.is_(None) | (run.triage_date < cutoff),
        _has_live_instance(run.id),
    )
    for run_id, workflow_id, kind in session.execute(
        union_all(resumed, unattended).order_by("id")
    ).all():
        bucket = found.resumed if kind == _RELEASE else found.unattended
        bucket.setdefault(workflow_id, []).append(run_id)
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


def _has_live_instance(run_id: Mapped[int] | int) -> Exists:
    instance = models.TaskInstance
    return exists().where(instance.workflow_run_id == run_id, instance.status.in_(_LIVE_INSTANCE))


def _has_unfinished_task(workflow_id: Mapped[int] | int) -> Exists:
    # Unfinished statuses listed rather than "!= D": each is one seek in the (workflow_id,
    # status) index, where "!= D" would walk past every done task of a large workflow.
    task = models.Task
    return exists().where(
        task.workflow_id == workflow_id,
        task.status.in_(_UNFINISHED_TASK),
        task.removed_date.is_(None),  # removed by a resume: out of the workflow
    )


def _has_live_run(workflow_id: Mapped[int] | int) -> Exists:
    run = models.WorkflowRun
    return exists().where(run.workflow_id == workflow_id, run.status.in_(_LIVE))


# --- settling one workflow, under its lock ----------------------------------------------------


def _settle_workflow(
    workflow_id: int, found: _Candidates, now: dt.datetime, unattended_after: float
) -> Callable[[Session, ChangeRecorder], ReapReport]:
    """The unit of work for one workflow: its lapsed runs, the abandoned attempts of its ended
    runs, its resumed runs, then itself. Answers what it did, for this workflow."""

    def work(session: Session, recorder: ChangeRecorder) -> ReapReport:
        workflow = session.scalars(
            select(models.Workflow).where(models.Workflow.id == workflow_id).with_for_update()
        ).first()
        if workflow is None:
            return ReapReport()
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
        unattended = found.unattended.get(workflow_id, [])
        abandoned = [
            instance_id
            for run in _runs_for_update(session, unattended)
            for instance_id in close_abandoned_attempts(
                session, run, recorder, now=now, unattended_after=unattended_after
            )
        ]
        # A resumed run whose last kills were just closed lets go in the same pass.
        resumed = sorted({*found.resumed.get(workflow_id, ()), *unattended})
        _runs_for_update(session, resumed)  # locked in id order
        terminated = [
            _reaped(run, previous, workflow)
            for run, previous in release_settled(session, resumed, recorder)
        ]
        done = _complete_if_done(session, workflow)
        return ReapReport(
            tuple(lapsed), tuple(terminated), (workflow_id,) if done else (), tuple(abandoned)
        )

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
