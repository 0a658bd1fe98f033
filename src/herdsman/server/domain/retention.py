"""Retention: archive finished workflows and remove them from the database.

A shared server's database otherwise only grows (a bound 1M-task workflow is hundreds of MB).
:func:`prune` removes every workflow that ended (done, failed or halted:
``lifecycle.PRUNABLE_WORKFLOW_STATUSES``) more than a given age ago and that no live run or
live attempt holds, after writing it to a compressed archive (:mod:`herdsman.core.archive`).

Removal never holds long locks while other workflows run: rows go in transactions of at most
``chunk_size`` rows of the table being emptied (with their few dependent rows), each locking
the workflow row first -- as the run routes do -- and checking again that no run of it is
live. The order is what makes it safe to stop anywhere (a crash, a restart) and prune again:

1. the archive is written from a read transaction and renamed into place once complete;
2. the workflow is *detached*: under its lock, its identity hash is replaced by a marker, so a
   bind of the same ``workflow_args`` makes a new workflow instead of reusing rows about to go;
3. its tasks with their arguments, attributes, attempts and their errors, chunk by chunk;
   then its change feed and its audit rows, chunk by chunk;
4. its runs, arrays, attributes and the workflow row, in one short transaction; its DAG is
   detached the same way (its hash replaced) unless another workflow uses it;
5. the detached DAG's edges, chunk by chunk, then the DAG row.

Rows shared between workflows stay: nodes and their arguments (a task's identity across
workflows, reused by later binds), templates, tools and shared resource requests.

A pass that finds a detached workflow or DAG (left by an interrupted pass) finishes it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import structlog
from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Delete,
    Table,
    delete,
    exists,
    select,
    update,
)
from sqlalchemy.orm import Session

from herdsman.core import lifecycle
from herdsman.core.archive import archive_name
from herdsman.core.errors import ConflictError, NotFoundError
from herdsman.server.database import models
from herdsman.server.database.engine import Database
from herdsman.server.domain.archiving import write_archive

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "PruneCandidate",
    "PruneReport",
    "PrunedWorkflow",
    "find_prunable",
    "prune",
    "prune_periodically",
    "prune_workflow",
    "trim_feeds",
]

logger = structlog.get_logger(__name__)

DEFAULT_CHUNK_SIZE = 5_000
_PRUNABLE = lifecycle.statuses_of(lifecycle.PRUNABLE_WORKFLOW_STATUSES)
_LIVE_RUN = lifecycle.statuses_of(lifecycle.LIVE_WORKFLOW_RUN_STATUSES)
_LIVE_INSTANCE = lifecycle.statuses_of(lifecycle.LIVE_INSTANCE_STATUSES)

_W = cast(Table, models.Workflow.__table__)
_WA = cast(Table, models.WorkflowAttribute.__table__)
_WR = cast(Table, models.WorkflowRun.__table__)
_AR = cast(Table, models.Array.__table__)
_T = cast(Table, models.Task.__table__)
_TA = cast(Table, models.TaskArg.__table__)
_TATTR = cast(Table, models.TaskAttribute.__table__)
_TI = cast(Table, models.TaskInstance.__table__)
_TIE = cast(Table, models.TaskInstanceErrorLog.__table__)
_SC = cast(Table, models.StatusChange.__table__)
_AU = cast(Table, models.Audit.__table__)
_TSC = cast(Table, models.TaskStatusCount.__table__)
_TSH = cast(Table, models.TaskStatusHistory.__table__)
_EGC = cast(Table, models.ErrorGroupCount.__table__)
_ETC = cast(Table, models.ErrorTaskCount.__table__)
_UT = cast(Table, models.UsageTotal.__table__)
_DAG = cast(Table, models.Dag.__table__)
_E = cast(Table, models.Edge.__table__)


class PruneInterrupted(ConflictError):
    """A run of a workflow being pruned went live; the prune of it stopped (prune it later)."""


def detached_marker(object_id: int) -> str:
    """The identity hash a workflow or DAG being pruned carries instead of its own."""
    return f"pruned-{object_id}"


@dataclass(frozen=True)
class PruneCandidate:
    workflow_id: int
    status: str
    status_date: dt.datetime
    num_tasks: int


@dataclass(frozen=True)
class PrunedWorkflow:
    """One workflow removed: its archive (None without one) and the rows removed, by table."""

    workflow_id: int
    archive: Path | None
    rows: dict[str, int]
    seconds: float  # in all, archive included
    archive_seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass
class PruneReport:
    candidates: list[PruneCandidate] = field(default_factory=list)
    pruned: list[PrunedWorkflow] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    dags_removed: int = 0
    feeds_trimmed: dict[int, int] = field(default_factory=dict)  # workflow id -> rows

    def summary(self) -> str:
        rows = sum(item.total_rows for item in self.pruned)
        seconds = sum(item.seconds for item in self.pruned)
        rate = f", {rows / seconds:,.0f} rows/s" if seconds > 0 else ""
        trimmed = ""
        if self.feeds_trimmed:
            changes = sum(self.feeds_trimmed.values())
            trimmed = f"; change feeds of {_workflows(len(self.feeds_trimmed))} trimmed "
            trimmed += f"({changes:,} rows)"
        return (
            f"{_workflows(len(self.pruned))} removed ({rows:,} rows in {seconds:.1f} s{rate}), "
            f"{len(self.skipped)} skipped{trimmed}"
        )


def _workflows(number: int) -> str:
    return f"{number} workflow" if number == 1 else f"{number} workflows"


# --- finding what to prune --------------------------------------------------------------------


def _live_run(workflow_id: int | ColumnElement[Any]) -> ColumnElement[bool]:
    return exists().where(_WR.c.workflow_id == workflow_id, _WR.c.status.in_(_LIVE_RUN))


def _live_instance(workflow_id: int | ColumnElement[Any]) -> ColumnElement[bool]:
    return exists().where(
        _WR.c.workflow_id == workflow_id,
        _TI.c.workflow_run_id == _WR.c.id,
        _TI.c.status.in_(_LIVE_INSTANCE),
    )


def find_prunable(session: Session, cutoff: dt.datetime) -> list[PruneCandidate]:
    """Workflows that ended before ``cutoff`` and that nothing live holds, oldest first."""
    query = (
        select(_W.c.id, _W.c.status, _W.c.status_date, _W.c.num_tasks)
        .where(
            _W.c.status.in_(_PRUNABLE),
            _W.c.status_date < cutoff,
            ~_live_run(_W.c.id),
            ~_live_instance(_W.c.id),
        )
        .order_by(_W.c.status_date, _W.c.id)
    )
    return [PruneCandidate(*row) for row in session.execute(query).tuples()]


# --- one pass ---------------------------------------------------------------------------------


def prune(
    database: Database,
    *,
    older_than_days: float,
    archive_dir: Path | None,
    dry_run: bool = False,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    now: dt.datetime | None = None,
    on_pruned: Callable[[PrunedWorkflow], None] | None = None,
    feeds_older_than_days: float | None = None,
) -> PruneReport:
    """Archive (into ``archive_dir``; None: no archive) and remove every workflow that ended
    more than ``older_than_days`` ago. With ``dry_run`` only find them. With
    ``feeds_older_than_days``, also trim the change feed of workflows that ended more than
    that long ago but are kept (:func:`trim_feeds`)."""
    now = now or models.utcnow()
    cutoff = now - dt.timedelta(days=older_than_days)
    report = PruneReport(candidates=database.read(lambda session: find_prunable(session, cutoff)))
    if dry_run:
        return report
    if archive_dir is not None:
        archive_dir.mkdir(parents=True, exist_ok=True)
    for candidate in report.candidates:
        try:
            pruned = prune_workflow(
                database,
                candidate.workflow_id,
                archive_dir=archive_dir,
                cutoff=cutoff,
                chunk_size=chunk_size,
            )
        except PruneInterrupted as error:
            report.skipped[candidate.workflow_id] = error.message
            logger.warning("prune_interrupted", workflow_id=candidate.workflow_id)
            continue
        if pruned is None:
            report.skipped[candidate.workflow_id] = "a run started or it changed since it was found"
            continue
        report.pruned.append(pruned)
        if on_pruned is not None:
            on_pruned(pruned)
    report.dags_removed = _remove_detached_dags(database, chunk_size)
    if feeds_older_than_days is not None:
        report.feeds_trimmed = trim_feeds(
            database,
            cutoff=now - dt.timedelta(days=feeds_older_than_days),
            chunk_size=chunk_size,
            skipped=report.skipped,
        )
    logger.info("prune_finished", summary=report.summary())
    return report


def trim_feeds(
    database: Database,
    *,
    cutoff: dt.datetime,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    skipped: dict[int, str] | None = None,
) -> dict[int, int]:
    """Remove the change feed of every workflow that ended before ``cutoff`` and that nothing
    live holds, keeping the workflow; returns the rows removed per workflow.

    The feed (eight rows per task after a run) exists for followers of a live run: the
    swarm, the distributor and the web page, which read what came after the sequence number
    they hold. Once a workflow ended nobody follows it; a later resume starts a new run whose
    followers read from that run's own first change on, and the workflow's ``change_seq``
    keeps counting from where it stood, so the numbering stays gapless for them.
    """
    found = database.read(
        lambda session: [
            candidate.workflow_id
            for candidate in find_prunable(session, cutoff)
            if session.execute(
                select(exists().where(_SC.c.workflow_id == candidate.workflow_id))
            ).scalar_one()
        ]
    )
    trimmed: dict[int, int] = {}
    for workflow_id in found:
        rows: Counter[str] = Counter()
        try:
            _remove_in_chunks(database, workflow_id, chunk_size, _delete_feed, rows)
        except PruneInterrupted as error:
            if skipped is not None:
                skipped[workflow_id] = error.message
        if rows:
            trimmed[workflow_id] = rows["status_change"]
            logger.info("change_feed_trimmed", workflow_id=workflow_id, rows=trimmed[workflow_id])
    return trimmed


def prune_workflow(
    database: Database,
    workflow_id: int,
    *,
    archive_dir: Path | None,
    cutoff: dt.datetime,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> PrunedWorkflow | None:
    """Archive and remove one workflow; None when it is no longer prunable (a run started)."""
    started = time.perf_counter()
    detached = database.read(lambda session: _is_detached(session, workflow_id))
    archive: Path | None = None
    if archive_dir is not None:
        archive = archive_dir / archive_name(workflow_id)
        if not (detached and archive.exists()):
            try:
                write_archive(database, workflow_id, archive)
            except NotFoundError:
                return None  # removed meanwhile (another prune)
    archived = time.perf_counter()
    if not database.write(lambda session: _detach(session, workflow_id, cutoff)):
        if archive is not None and not detached:
            archive.unlink(missing_ok=True)  # it would describe a workflow that lives on
        return None
    rows: Counter[str] = Counter()
    _remove_in_chunks(database, workflow_id, chunk_size, _delete_tasks, rows)
    _remove_in_chunks(database, workflow_id, chunk_size, _delete_feed, rows)
    _remove_in_chunks(database, workflow_id, chunk_size, _delete_audit, rows)
    dag_id = database.write(lambda session: _delete_workflow(session, workflow_id, rows))
    if dag_id is not None:
        rows.update(_remove_dag(database, dag_id, chunk_size))
    seconds = time.perf_counter() - started
    logger.info(
        "workflow_pruned",
        workflow_id=workflow_id,
        rows=sum(rows.values()),
        seconds=round(seconds, 3),
        archive=str(archive) if archive else None,
    )
    return PrunedWorkflow(workflow_id, archive, dict(rows), seconds, archived - started)


# --- removal ----------------------------------------------------------------------------------


def _is_detached(session: Session, workflow_id: int) -> bool:
    found = session.execute(
        select(_W.c.workflow_args_hash).where(_W.c.id == workflow_id)
    ).scalar_one_or_none()
    return found == detached_marker(workflow_id)


def _lock_workflow(session: Session, workflow_id: int) -> Any:
    return session.execute(
        select(_W.c.status, _W.c.status_date, _W.c.dag_id)
        .where(_W.c.id == workflow_id)
        .with_for_update()
    ).one_or_none()


def _detach(session: Session, workflow_id: int, cutoff: dt.datetime) -> bool:
    """Under the workflow's lock: check it is still prunable, then take its identity away."""
    found = _lock_workflow(session, workflow_id)
    if found is None or found.status not in _PRUNABLE or found.status_date >= cutoff:
        return False
    if session.execute(select(_live_run(workflow_id) | _live_instance(workflow_id))).scalar_one():
        return False
    session.execute(
        update(_W)
        .where(_W.c.id == workflow_id)
        .values(workflow_args_hash=detached_marker(workflow_id))
    )
    return True


Chunk = Callable[[Session, int, int, Counter[str]], bool]


def _remove_in_chunks(
    database: Database, workflow_id: int, chunk_size: int, chunk: Chunk, rows: Counter[str]
) -> None:
    """Call ``chunk`` in a transaction of its own until it reports nothing left."""

    def work(session: Session) -> tuple[bool, Counter[str]]:
        _require_no_live_run(session, workflow_id)
        removed: Counter[str] = Counter()
        more = chunk(session, workflow_id, chunk_size, removed)
        return more, removed

    while True:
        more, removed = database.write(work)
        rows.update(removed)
        if not more:
            return


def _require_no_live_run(session: Session, workflow_id: int) -> None:
    if _lock_workflow(session, workflow_id) is None:
        raise PruneInterrupted(f"workflow {workflow_id} is gone")
    if session.execute(select(_live_run(workflow_id))).scalar_one():
        raise PruneInterrupted(
            f"a run of workflow {workflow_id} started while it was being pruned; the prune of "
            "it stopped and its archive was kept; prune it again once the run ended"
        )


def _count(session: Session, table: str, statement: Delete, rows: Counter[str]) -> None:
    result = cast(CursorResult[Any], session.execute(statement))
    if result.rowcount:
        rows[table] += result.rowcount


def _delete_tasks(session: Session, workflow_id: int, size: int, rows: Counter[str]) -> bool:
    ids = list(
        session.scalars(
            select(_T.c.id).where(_T.c.workflow_id == workflow_id).order_by(_T.c.id).limit(size)
        )
    )
    if not ids:
        return False
    instances = select(_TI.c.id).where(_TI.c.task_id.in_(ids))
    _count(
        session,
        "task_instance_error_log",
        delete(_TIE).where(_TIE.c.task_instance_id.in_(instances)),
        rows,
    )
    _count(session, "task_instance", delete(_TI).where(_TI.c.task_id.in_(ids)), rows)
    _count(session, "task_arg", delete(_TA).where(_TA.c.task_id.in_(ids)), rows)
    _count(session, "task_attribute", delete(_TATTR).where(_TATTR.c.task_id.in_(ids)), rows)
    _count(session, "task", delete(_T).where(_T.c.id.in_(ids)), rows)
    return len(ids) == size


def _delete_feed(session: Session, workflow_id: int, size: int, rows: Counter[str]) -> bool:
    last = session.execute(
        select(_SC.c.seq)
        .where(_SC.c.workflow_id == workflow_id)
        .order_by(_SC.c.seq)
        .offset(size - 1)
        .limit(1)
    ).scalar_one_or_none()
    statement = delete(_SC).where(_SC.c.workflow_id == workflow_id)
    if last is not None:
        statement = statement.where(_SC.c.seq <= last)
    _count(session, "status_change", statement, rows)
    return last is not None


def _delete_audit(session: Session, workflow_id: int, size: int, rows: Counter[str]) -> bool:
    ids = list(
        session.scalars(
            select(_AU.c.id).where(_AU.c.workflow_id == workflow_id).order_by(_AU.c.id).limit(size)
        )
    )
    if ids:
        _count(session, "audit", delete(_AU).where(_AU.c.id.in_(ids)), rows)
    return len(ids) == size


def _delete_workflow(session: Session, workflow_id: int, rows: Counter[str]) -> int | None:
    """The workflow's last rows and the workflow itself; returns its DAG's id when the DAG
    was detached for removal (no other workflow uses it)."""
    found = _lock_workflow(session, workflow_id)
    if found is None:
        return None
    _require_no_live_run(session, workflow_id)
    # Attempts of runs whose tasks are gone already are none; errors of them neither.
    _count(session, "workflow_run", delete(_WR).where(_WR.c.workflow_id == workflow_id), rows)
    # Its kept counts (a row per array and status) and their history (a row per status and
    # ten seconds of activity): small beside its tasks, so in this last transaction.
    _count(
        session, "task_status_count", delete(_TSC).where(_TSC.c.workflow_id == workflow_id), rows
    )
    _count(
        session,
        "task_status_history",
        delete(_TSH).where(_TSH.c.workflow_id == workflow_id),
        rows,
    )
    # Its kept error counts and usage totals: a row per array (and error group).
    kept = (("error_group_count", _EGC), ("error_task_count", _ETC), ("usage_total", _UT))
    for name, table in kept:
        _count(session, name, delete(table).where(table.c.workflow_id == workflow_id), rows)
    _count(session, "array", delete(_AR).where(_AR.c.workflow_id == workflow_id), rows)
    _count(session, "workflow_attribute", delete(_WA).where(_WA.c.workflow_id == workflow_id), rows)
    _count(session, "workflow", delete(_W).where(_W.c.id == workflow_id), rows)
    dag_id = int(found.dag_id)
    dag = session.execute(
        select(_DAG.c.id).where(_DAG.c.id == dag_id).with_for_update()
    ).scalar_one_or_none()
    if dag is None or session.execute(select(exists().where(_W.c.dag_id == dag_id))).scalar_one():
        return None
    session.execute(
        update(_DAG)
        .where(_DAG.c.id == dag_id)
        .values(hash=detached_marker(dag_id), completed_date=None)
    )
    return dag_id


def _remove_dag(database: Database, dag_id: int, chunk_size: int) -> Counter[str]:
    """A detached DAG's edges in chunks (ranges of its primary key), then the DAG row."""
    rows: Counter[str] = Counter()

    def chunk(session: Session) -> bool:
        last = session.execute(
            select(_E.c.downstream_node_id, _E.c.upstream_node_id)
            .where(_E.c.dag_id == dag_id)
            .order_by(_E.c.downstream_node_id, _E.c.upstream_node_id)
            .offset(chunk_size - 1)
            .limit(1)
        ).one_or_none()
        statement = delete(_E).where(_E.c.dag_id == dag_id)
        if last is not None:
            down, up = last
            statement = statement.where(
                (_E.c.downstream_node_id < down)
                | ((_E.c.downstream_node_id == down) & (_E.c.upstream_node_id <= up))
            )
        _count(session, "edge", statement, rows)
        if last is None:
            _count(
                session,
                "dag",
                delete(_DAG).where(_DAG.c.id == dag_id, _DAG.c.hash == detached_marker(dag_id)),
                rows,
            )
        return last is not None

    while database.write(chunk):
        pass
    return rows


def _remove_detached_dags(database: Database, chunk_size: int) -> int:
    """DAGs an interrupted prune detached but did not remove."""
    found = database.read(
        lambda session: [
            dag_id
            for dag_id, hash_ in session.execute(
                select(_DAG.c.id, _DAG.c.hash).where(
                    _DAG.c.hash.like("pruned-%"), ~exists().where(_W.c.dag_id == _DAG.c.id)
                )
            ).tuples()
            if hash_ == detached_marker(dag_id)
        ]
    )
    for dag_id in found:
        _remove_dag(database, dag_id, chunk_size)
    return len(found)


# --- the server's own retention ----------------------------------------------------------------


async def prune_periodically(
    database: Database,
    *,
    interval: float,
    stop: asyncio.Event,
    older_than_days: float,
    archive_dir: Path | None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    feeds_older_than_days: float | None = None,
) -> None:
    """Run :func:`prune` in a worker thread every ``interval`` seconds until ``stop`` is set.

    Several servers on one database may each run it: the workflow lock and the re-check in
    every transaction make two prunes of one workflow remove each row once; the second finds
    the archive written and the rows gone. A failing pass is logged and the loop goes on.
    """
    logger.info("retention_started", interval=interval, older_than_days=older_than_days)
    try:
        while not await _wait(stop, interval):
            try:
                await asyncio.to_thread(
                    prune,
                    database,
                    older_than_days=older_than_days,
                    archive_dir=archive_dir,
                    chunk_size=chunk_size,
                    feeds_older_than_days=feeds_older_than_days,
                )
            except Exception:
                logger.exception("retention_pass_failed")
    finally:
        logger.info("retention_stopped")


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True
