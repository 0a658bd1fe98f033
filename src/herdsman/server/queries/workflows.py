"""Reads of workflows: summaries for listings, one workflow's detail, its clusters, its tasks and
its edges, a page at a time."""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from herdsman.core import lifecycle
from herdsman.core.lifecycle import TaskProgress
from herdsman.core.schemas import queries as schemas
from herdsman.core.statuses import TaskStatus
from herdsman.server.database import models
from herdsman.server.queries.lookups import (
    iso,
    require_workflow,
    with_template_names,
)
from herdsman.server.queries.tasks import task_out

_Columns = TypeVarTuple("_Columns")

_SCHEDULING = lifecycle.statuses_of(lifecycle.SCHEDULING_WORKFLOW_STATUSES)

__all__ = [
    "RunRow",
    "TemplateEdge",
    "TemplateRow",
    "WorkflowFilter",
    "WorkflowPage",
    "find_workflows",
    "latest_runs",
    "template_edges",
    "template_names",
    "template_rows",
    "workflow_clusters",
    "workflow_detail",
    "workflow_edges",
    "workflow_summaries",
    "workflow_tasks",
]


def workflow_summaries(
    session: Session, workflow_ids: Sequence[int], user: str | None, limit: int
) -> schemas.WorkflowSummariesOut:
    """The newest ``limit`` workflows among those named (all when none are) of ``user``."""
    workflow = models.Workflow
    query = select(workflow).order_by(workflow.id.desc()).limit(limit)
    if workflow_ids:
        query = query.where(workflow.id.in_(workflow_ids))
    if user:
        query = query.where(workflow.user == user)
    return schemas.WorkflowSummariesOut(workflows=_summaries(session, session.scalars(query).all()))


@dataclass(frozen=True)
class WorkflowFilter:
    """What a listing of workflows keeps; None or empty keeps everything.

    ``name`` and ``args`` match anywhere in the name and the workflow args, ignoring case;
    ``submitted_from`` and ``submitted_to`` bound the creation time (UTC, ``to`` excluded).
    """

    user: str | None = None
    tool: str | None = None
    name: str | None = None
    args: str | None = None
    workflow_id: int | None = None
    statuses: tuple[str, ...] = ()
    submitted_from: dt.datetime | None = None
    submitted_to: dt.datetime | None = None


@dataclass(frozen=True)
class WorkflowPage:
    """A page of a listing, newest first, and the id to page on from (None on the last)."""

    workflows: list[schemas.WorkflowSummaryOut]
    next_before: int | None


def find_workflows(
    session: Session, filters: WorkflowFilter, before: int | None, limit: int
) -> WorkflowPage:
    """The newest ``limit`` workflows that ``filters`` keep with ids below ``before``, their
    tasks counted by status (``retries`` is not counted: 0).

    Keyset paging on the primary key: each page costs the same however deep it is.
    """
    workflow = models.Workflow
    query = select(workflow).order_by(workflow.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(workflow.id < before)
    if filters.user:
        query = query.where(workflow.user == filters.user)
    if filters.workflow_id is not None:
        query = query.where(workflow.id == filters.workflow_id)
    if filters.name:
        query = query.where(_contains(workflow.name, filters.name))
    if filters.args:
        query = query.where(_contains(workflow.workflow_args, filters.args))
    if filters.statuses:
        query = query.where(workflow.status.in_(filters.statuses))
    if filters.submitted_from is not None:
        query = query.where(workflow.created_date >= filters.submitted_from)
    if filters.submitted_to is not None:
        query = query.where(workflow.created_date < filters.submitted_to)
    if filters.tool:
        versions = (
            select(models.ToolVersion.id)
            .join(models.Tool, models.Tool.id == models.ToolVersion.tool_id)
            .where(models.Tool.name == filters.tool)
        )
        query = query.where(workflow.tool_version_id.in_(versions))
    rows = session.scalars(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    summaries = _summaries(session, rows, count_retries=False)
    return WorkflowPage(summaries, rows[-1].id if more and rows else None)


def _contains(
    column: ColumnElement[str] | InstrumentedAttribute[str], text: str
) -> ColumnElement[bool]:
    return func.lower(column).contains(text.lower(), autoescape=True)


def _summaries(
    session: Session, rows: Sequence[models.Workflow], *, count_retries: bool = True
) -> list[schemas.WorkflowSummaryOut]:
    """The given workflows with their tasks counted: one GROUP BY over their rows of the
    kept counts (a few per template, however many tasks), one over their runs.

    Without ``count_retries`` ``retries`` is 0 (listings show no retries).
    """
    ids = [row.id for row in rows]
    counted = models.TaskStatusCount
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    retries: dict[int, int] = defaultdict(int)
    for workflow_id, status, number, extra in session.execute(
        select(
            counted.workflow_id, counted.status, func.sum(counted.num), func.sum(counted.retries)
        )
        .where(counted.workflow_id.in_(ids))
        .group_by(counted.workflow_id, counted.status)
    ).tuples():
        if number:
            counts[workflow_id][status] = int(number)
        retries[workflow_id] += int(extra or 0) if count_retries else 0
    run = models.WorkflowRun
    run_span = {
        workflow_id: (first, last, number, heartbeat)
        for workflow_id, first, last, number, heartbeat in session.execute(
            select(
                run.workflow_id,
                func.min(run.created_date),
                func.max(run.status_date),
                func.count(),
                func.max(run.heartbeat_date),
            )
            .where(run.workflow_id.in_(ids))
            .group_by(run.workflow_id)
        ).tuples()
    }
    tool_names = {
        version_id: name
        for version_id, name in session.execute(
            select(models.ToolVersion.id, models.Tool.name)
            .join(models.Tool, models.Tool.id == models.ToolVersion.tool_id)
            .where(models.ToolVersion.id.in_({row.tool_version_id for row in rows}))
        ).tuples()
    }
    now = models.utcnow()
    summaries = []
    for row in rows:
        by_progress = _by_progress(counts.get(row.id, {}))
        started, last_change, runs, heartbeat = run_span.get(row.id, (None, None, 0, None))
        scheduling = row.status in _SCHEDULING  # a run holds it: its elapsed time grows
        until = now if scheduling else last_change
        summaries.append(
            schemas.WorkflowSummaryOut(
                id=row.id,
                name=row.name,
                tool=tool_names.get(row.tool_version_id, ""),
                workflow_args=row.workflow_args,
                status=row.status,
                user=row.user,
                tasks=sum(by_progress.values()),
                pending=by_progress[TaskProgress.PENDING],
                running=by_progress[TaskProgress.RUNNING],
                done=by_progress[TaskProgress.DONE],
                fatal=by_progress[TaskProgress.FATAL],
                retries=retries.get(row.id, 0),
                submitted=iso(row.created_date),
                elapsed_seconds=(
                    max(0.0, (until - started).total_seconds())
                    if started is not None and until is not None
                    else None
                ),
                task_status_counts=counts.get(row.id, {}),
                runs=runs,
                last_heartbeat=iso(heartbeat),
            )
        )
    return summaries


def workflow_detail(session: Session, workflow_id: int) -> schemas.WorkflowDetailOut:
    workflow = require_workflow(session, workflow_id)
    attributes = session.execute(
        select(models.WorkflowAttribute.name, models.WorkflowAttribute.value).where(
            models.WorkflowAttribute.workflow_id == workflow_id
        )
    ).tuples()
    counted = models.TaskStatusCount
    counts = session.execute(
        select(counted.status, func.sum(counted.num))
        .where(counted.workflow_id == workflow_id)
        .group_by(counted.status)
        .having(func.sum(counted.num) > 0)
    ).tuples()
    return schemas.WorkflowDetailOut(
        id=workflow.id,
        name=workflow.name,
        description=workflow.description,
        status=workflow.status,
        tool_version_id=workflow.tool_version_id,
        dag_id=workflow.dag_id,
        workflow_args=workflow.workflow_args,
        user=workflow.user,
        max_concurrently_running=workflow.max_concurrently_running,
        num_tasks=workflow.num_tasks,
        bound=workflow.bound_date is not None,
        attributes=dict(attributes.all()),
        task_status_counts={status: int(number) for status, number in counts},
    )


def workflow_clusters(session: Session, workflow_id: int) -> schemas.WorkflowClustersOut:
    """The clusters the workflow's tasks run on: a resume starts a distributor for each.

    Apart from the workflow's detail, which progress displays read every few seconds: this
    reads every task of the workflow.
    """
    require_workflow(session, workflow_id)
    used = (
        select(models.Task.cluster_id)
        .where(models.Task.workflow_id == workflow_id, models.Task.removed_date.is_(None))
        .distinct()
    )
    names = session.scalars(
        select(models.Cluster.name).where(models.Cluster.id.in_(used)).order_by(models.Cluster.name)
    ).all()
    return schemas.WorkflowClustersOut(workflow_id=workflow_id, clusters=list(names))


def workflow_tasks(
    session: Session,
    workflow_id: int,
    offset: int,
    limit: int,
    statuses: Sequence[str] = (),
) -> schemas.TasksPageOut:
    """A page of the workflow's tasks by id; ``count`` is all that match ``statuses``."""
    require_workflow(session, workflow_id)
    task = models.Task
    # Tasks a resume removed are out of the workflow (kept in the database for the record).
    where = [task.workflow_id == workflow_id, task.removed_date.is_(None)]
    if statuses:
        where.append(task.status.in_(statuses))
    count = session.scalar(select(func.count()).select_from(task).where(*where))
    rows = session.scalars(
        select(task).where(*where).order_by(task.id).offset(offset).limit(limit)
    ).all()
    return schemas.TasksPageOut(count=count or 0, tasks=[task_out(row) for row in rows])


def workflow_edges(session: Session, workflow_id: int, offset: int, limit: int) -> schemas.EdgesOut:
    """Dependencies as (upstream task id, downstream task id), ordered by downstream task."""
    workflow = require_workflow(session, workflow_id)
    up, down = aliased(models.Task), aliased(models.Task)
    edge = models.Edge
    joined = (
        select(up.id, down.id)
        .select_from(edge)
        .join(up, (up.node_id == edge.upstream_node_id) & (up.workflow_id == workflow_id))
        .join(down, (down.node_id == edge.downstream_node_id) & (down.workflow_id == workflow_id))
        .where(edge.dag_id == workflow.dag_id)
    )
    count = session.scalar(
        select(func.count()).select_from(edge).where(edge.dag_id == workflow.dag_id)
    )
    rows = session.execute(joined.order_by(down.id, up.id).offset(offset).limit(limit)).tuples()
    return schemas.EdgesOut(count=count or 0, edges=list(rows.all()))


def _by_progress(by_status: dict[str, int]) -> dict[TaskProgress, int]:
    """Task counts by status letter summed into the coarse states of progress bars."""
    found = dict.fromkeys(TaskProgress, 0)
    for status, count in by_status.items():
        found[lifecycle.progress_of(TaskStatus(status))] += count
    return found


@dataclass(frozen=True)
class RunRow:
    """One run of a workflow: who ran it where, its status and the report-by time its swarm
    last promised (``heartbeat_date``; overdue means the swarm stopped heartbeating)."""

    id: int
    status: str
    user: str
    host: str
    created_date: dt.datetime
    status_date: dt.datetime
    heartbeat_date: dt.datetime
    status_message: str


def latest_runs(session: Session, workflow_id: int, limit: int) -> list[RunRow]:
    """The workflow's newest ``limit`` runs, newest first."""
    require_workflow(session, workflow_id)
    run = models.WorkflowRun
    rows = session.scalars(
        select(run).where(run.workflow_id == workflow_id).order_by(run.id.desc()).limit(limit)
    ).all()
    return [
        RunRow(
            id=row.id,
            status=row.status,
            user=row.user,
            host=row.host,
            created_date=row.created_date,
            status_date=row.status_date,
            heartbeat_date=row.heartbeat_date,
            status_message=row.status_message,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class TemplateRow:
    """One task template of a workflow (its array): tasks by status letter, attempts made,
    and its concurrency limit."""

    array_id: int
    name: str
    max_concurrently_running: int
    status_counts: dict[str, int]
    attempts: int

    @property
    def tasks(self) -> int:
        return sum(self.status_counts.values())


def template_rows(session: Session, workflow_id: int) -> list[TemplateRow]:
    """The workflow's task templates, in the order they were added, with their tasks counted.

    Reads the kept counts: a few rows per template, however many tasks.
    """
    require_workflow(session, workflow_id)
    counted, array = models.TaskStatusCount, models.Array
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    attempts: dict[int, int] = defaultdict(int)
    for array_id, status, number, tried in session.execute(
        select(counted.array_id, counted.status, counted.num, counted.attempts).where(
            counted.workflow_id == workflow_id
        )
    ).tuples():
        if number:
            counts[array_id][status] = number
        attempts[array_id] += tried
    arrays = session.execute(
        with_template_names(
            select(array.id, models.TaskTemplate.name, array.max_concurrently_running)
        )
        .where(array.workflow_id == workflow_id)
        .order_by(array.id)
    ).tuples()
    return [
        TemplateRow(array_id, name, limit, counts.get(array_id, {}), attempts.get(array_id, 0))
        for array_id, name, limit in arrays
    ]


def template_names(session: Session, workflow_id: int) -> list[str]:
    """The names of the workflow's task templates, in the order they were added (no task is
    read: for choosers on pages that must not count a million tasks)."""
    require_workflow(session, workflow_id)
    array = models.Array
    return list(
        session.scalars(
            with_template_names(select(models.TaskTemplate.name).select_from(array))
            .where(array.workflow_id == workflow_id)
            .order_by(array.id)
        )
    )


@dataclass(frozen=True)
class TemplateEdge:
    """Dependencies between two task templates' tasks, counted."""

    upstream_array_id: int
    downstream_array_id: int
    edges: int


_EDGES_KEPT = 256
_template_edges_of: OrderedDict[tuple[int, int], list[TemplateEdge]] = OrderedDict()
_edges_lock = threading.Lock()


def template_edges(session: Session, workflow_id: int) -> list[TemplateEdge]:
    """The workflow's task edges summed by the templates at their two ends.

    One GROUP BY over the DAG's edges through their nodes' template versions; the answer has
    at most a row per pair of templates. A complete DAG never changes, so its answer is kept
    (for the last 256 workflows asked about): a workflow of a million edges is read once per
    server process, not at every view of its page.
    """
    workflow = require_workflow(session, workflow_id)
    key = (workflow_id, workflow.dag_id)
    with _edges_lock:
        if key in _template_edges_of:
            _template_edges_of.move_to_end(key)
            return list(_template_edges_of[key])
    found = _count_template_edges(session, workflow)
    complete = session.scalar(
        select(models.Dag.completed_date).where(models.Dag.id == workflow.dag_id)
    )
    if complete is not None and workflow.bound_date is not None:
        with _edges_lock:
            _template_edges_of[key] = found
            while len(_template_edges_of) > _EDGES_KEPT:
                _template_edges_of.popitem(last=False)
    return list(found)


def _count_template_edges(session: Session, workflow: models.Workflow) -> list[TemplateEdge]:
    workflow_id = workflow.id
    edge, array = models.Edge, models.Array
    up_node, down_node = aliased(models.Node), aliased(models.Node)
    up_array, down_array = aliased(array), aliased(array)
    rows = session.execute(
        select(up_array.id, down_array.id, func.count())
        .select_from(edge)
        .join(up_node, up_node.id == edge.upstream_node_id)
        .join(down_node, down_node.id == edge.downstream_node_id)
        .join(
            up_array,
            (up_array.task_template_version_id == up_node.task_template_version_id)
            & (up_array.workflow_id == workflow_id),
        )
        .join(
            down_array,
            (down_array.task_template_version_id == down_node.task_template_version_id)
            & (down_array.workflow_id == workflow_id),
        )
        .where(edge.dag_id == workflow.dag_id)
        .group_by(up_array.id, down_array.id)
        .order_by(up_array.id, down_array.id)
    ).tuples()
    return [TemplateEdge(up, down, number) for up, down, number in rows]
