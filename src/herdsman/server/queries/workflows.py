"""Reads of workflows: summaries for listings, one workflow's detail, its clusters, its tasks and
its edges, a page at a time."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVarTuple

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, aliased

from herdsman.core import lifecycle
from herdsman.core.lifecycle import TaskProgress
from herdsman.core.schemas import queries as schemas
from herdsman.core.statuses import TaskStatus
from herdsman.server.database import models
from herdsman.server.queries.lookups import (
    iso,
    require_workflow,
)
from herdsman.server.queries.tasks import task_out

_Columns = TypeVarTuple("_Columns")

_SCHEDULING = lifecycle.statuses_of(lifecycle.SCHEDULING_WORKFLOW_STATUSES)

__all__ = [
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
    rows = session.scalars(query).all()
    ids = [row.id for row in rows]
    task = models.Task
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    retries: dict[int, int] = defaultdict(int)
    for workflow_id, status, number, extra in session.execute(
        select(
            task.workflow_id,
            task.status,
            func.count(),
            func.sum(case((task.num_attempts > 1, task.num_attempts - 1), else_=0)),
        )
        .where(task.workflow_id.in_(ids))
        .group_by(task.workflow_id, task.status)
    ).tuples():
        counts[workflow_id][status] = number
        retries[workflow_id] += int(extra or 0)
    run = models.WorkflowRun
    run_span = {
        workflow_id: (first, last)
        for workflow_id, first, last in session.execute(
            select(run.workflow_id, func.min(run.created_date), func.max(run.status_date))
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
        started, last_change = run_span.get(row.id, (None, None))
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
            )
        )
    return schemas.WorkflowSummariesOut(workflows=summaries)


def workflow_detail(session: Session, workflow_id: int) -> schemas.WorkflowDetailOut:
    workflow = require_workflow(session, workflow_id)
    attributes = session.execute(
        select(models.WorkflowAttribute.name, models.WorkflowAttribute.value).where(
            models.WorkflowAttribute.workflow_id == workflow_id
        )
    ).tuples()
    counts = session.execute(
        select(models.Task.status, func.count())
        .where(models.Task.workflow_id == workflow_id)
        .group_by(models.Task.status)
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
        task_status_counts=dict(counts.all()),
    )


def workflow_clusters(session: Session, workflow_id: int) -> schemas.WorkflowClustersOut:
    """The clusters the workflow's tasks run on: a resume starts a distributor for each.

    Apart from the workflow's detail, which progress displays read every few seconds: this
    reads every task of the workflow.
    """
    require_workflow(session, workflow_id)
    used = select(models.Task.cluster_id).where(models.Task.workflow_id == workflow_id).distinct()
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
    where = [task.workflow_id == workflow_id]
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
