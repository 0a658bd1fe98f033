"""Read-only reports behind the ``herdsman`` command: workflow summaries, a task's attempts,
its neighbours, log paths, error messages and resource usage. Each takes a Session and never
writes.

Statistics are computed here in Python over the fetched values rather than in SQL: SQLite has
no percentile function and PostgreSQL's and MariaDB's differ, while users comparing numbers
across deployments expect the same answer from every engine.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVarTuple

from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session

from herdsman.core.errors import InvalidInputError, NotFoundError
from herdsman.core.schemas import queries as schemas
from herdsman.server.database import models
from herdsman.server.queries.workflows import neighbours, require_workflow, with_template_names

_Columns = TypeVarTuple("_Columns")

__all__ = [
    "error_messages",
    "log_paths",
    "resource_usage",
    "statistics_of",
    "task_attempts",
    "task_dependencies",
    "workflow_summaries",
]

# Workflow statuses in which a run holds the workflow, so its elapsed time is still growing.
_LIVE_WORKFLOW_STATUSES = frozenset({"Q", "I", "O", "R"})
_PENDING_TASK_STATUSES = frozenset({"G", "Q", "I", "O", "E", "A"})
_GIB = 1024**3


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


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
    now = models.utcnow()
    summaries = []
    for row in rows:
        by_status = counts.get(row.id, {})
        started, last_change = run_span.get(row.id, (None, None))
        until = now if row.status in _LIVE_WORKFLOW_STATUSES else last_change
        summaries.append(
            schemas.WorkflowSummaryOut(
                id=row.id,
                name=row.name,
                status=row.status,
                user=row.user,
                tasks=sum(by_status.values()),
                pending=sum(n for s, n in by_status.items() if s in _PENDING_TASK_STATUSES),
                running=by_status.get("R", 0),
                done=by_status.get("D", 0),
                fatal=by_status.get("F", 0),
                retries=retries.get(row.id, 0),
                submitted=_iso(row.created_date),
                elapsed_seconds=(
                    max(0.0, (until - started).total_seconds())
                    if started is not None and until is not None
                    else None
                ),
            )
        )
    return schemas.WorkflowSummariesOut(workflows=summaries)


def task_attempts(session: Session, task_id: int) -> schemas.TaskAttemptsOut:
    """Every attempt at the task, oldest first, each with its last error message."""
    task = session.get(models.Task, task_id)
    if task is None:
        raise NotFoundError(f"task {task_id} does not exist", details={"value": task_id})
    instance, log = models.TaskInstance, models.TaskInstanceErrorLog
    attempts = session.scalars(
        select(instance).where(instance.task_id == task_id).order_by(instance.id)
    ).all()
    last_error: dict[int, str] = {}
    for instance_id, description in session.execute(
        select(log.task_instance_id, log.description)
        .join(instance, instance.id == log.task_instance_id)
        .where(instance.task_id == task_id)
        .order_by(log.id)
    ).tuples():
        last_error[instance_id] = description
    return schemas.TaskAttemptsOut(
        task_id=task.id,
        workflow_id=task.workflow_id,
        name=task.name,
        status=task.status,
        attempts=[
            schemas.AttemptOut(
                id=row.id,
                workflow_run_id=row.workflow_run_id,
                status=row.status,
                host=row.host,
                distributor_id=row.distributor_id,
                exit_code=row.exit_code,
                submitted=_iso(row.submitted_date),
                status_date=row.status_date.isoformat(),
                wall_time=row.wall_time,
                cpu_time=row.cpu_time,
                max_rss=row.max_rss,
                stdout_path=row.stdout_path,
                stderr_path=row.stderr_path,
                error=last_error.get(row.id),
            )
            for row in attempts
        ],
    )


def task_dependencies(session: Session, task_id: int) -> schemas.DependenciesOut:
    """The task's direct upstream and downstream tasks in its workflow, with their statuses."""
    task = session.get(models.Task, task_id)
    if task is None:
        raise NotFoundError(f"task {task_id} does not exist", details={"value": task_id})
    upstream, downstream = neighbours(session, task)
    rows = {
        row.id: row
        for row in session.execute(
            select(models.Task.id, models.Task.name, models.Task.status).where(
                models.Task.id.in_([*upstream, *downstream])
            )
        ).all()
    }

    def described(ids: list[int]) -> list[schemas.NeighbourOut]:
        return [
            schemas.NeighbourOut(id=rows[i].id, name=rows[i].name, status=rows[i].status)
            for i in ids
        ]

    return schemas.DependenciesOut(
        task_id=task_id, upstream=described(upstream), downstream=described(downstream)
    )


def log_paths(
    session: Session, workflow_id: int, template: str | None, limit: int
) -> schemas.LogPathsOut:
    """Where the workflow's attempts wrote stdout and stderr, newest attempt first."""
    require_workflow(session, workflow_id)
    instance, task = models.TaskInstance, models.Task
    template_name = models.TaskTemplate.name
    joined = _with_template_name(
        select(
            instance.id,
            instance.status,
            instance.stdout_path,
            instance.stderr_path,
            task.id,
            task.name,
            template_name,
        ).join(task, task.id == instance.task_id)
    ).where(task.workflow_id == workflow_id)
    if template is not None:
        joined = joined.where(template_name == template)
    count, rows = _count_and_first(session, joined.order_by(instance.id.desc()), limit)
    return schemas.LogPathsOut(
        workflow_id=workflow_id,
        count=count,
        instances=[
            schemas.LogPathOut(
                task_id=task_id,
                task_name=task_name,
                task_template=template_value,
                task_instance_id=instance_id,
                status=status,
                stdout_path=stdout,
                stderr_path=stderr,
            )
            for instance_id, status, stdout, stderr, task_id, task_name, template_value in rows
        ],
    )


def error_messages(session: Session, workflow_id: int, limit: int) -> schemas.ErrorMessagesOut:
    """The workflow's error messages, newest first; grouping them is the reader's job."""
    require_workflow(session, workflow_id)
    log, instance, task = models.TaskInstanceErrorLog, models.TaskInstance, models.Task
    where = task.workflow_id == workflow_id
    base = (
        select(log.task_instance_id, instance.task_id, log.error_time, log.description)
        .join(instance, instance.id == log.task_instance_id)
        .join(task, task.id == instance.task_id)
        .where(where)
    )
    count, rows = _count_and_first(session, base.order_by(log.id.desc()), limit)
    return schemas.ErrorMessagesOut(
        workflow_id=workflow_id,
        count=count,
        errors=[
            schemas.ErrorMessageOut(
                task_instance_id=instance_id,
                task_id=task_id,
                error_time=when.isoformat(),
                description=description,
            )
            for instance_id, task_id, when, description in rows
        ],
    )


def resource_usage(
    session: Session, template: str | None, workflow_ids: Sequence[int]
) -> schemas.ResourceUsageOut:
    """Runtime and memory of done attempts, by task template and cluster.

    Only done attempts count: a failed one stopped early or was killed for its resources, so
    its usage says nothing about what the task needs.
    """
    if template is None and not workflow_ids:
        raise InvalidInputError("name a task template, one or more workflows, or both")
    instance, task = models.TaskInstance, models.Task
    template_name = models.TaskTemplate.name
    query = _with_template_name(
        select(template_name, models.Cluster.name, instance.wall_time, instance.max_rss)
        .join(task, task.id == instance.task_id)
        .join(models.Cluster, models.Cluster.id == task.cluster_id)
    ).where(instance.status == "D")
    if template is not None:
        known = select(func.count()).select_from(models.TaskTemplate)
        if session.scalar(known.where(template_name == template)) == 0:
            raise NotFoundError(
                f"no task template is called {template!r}", details={"value": template}
            )
        query = query.where(template_name == template)
    if workflow_ids:
        for workflow_id in workflow_ids:
            require_workflow(session, workflow_id)
        query = query.where(task.workflow_id.in_(workflow_ids))
    runtimes: dict[tuple[str, str], list[float]] = defaultdict(list)
    memories: dict[tuple[str, str], list[float]] = defaultdict(list)
    attempts: dict[tuple[str, str], int] = defaultdict(int)
    for name, cluster, wall_time, max_rss in session.execute(query).tuples():
        key = (name, cluster)
        attempts[key] += 1
        if wall_time is not None:
            runtimes[key].append(float(wall_time))
        if max_rss is not None:
            memories[key].append(max_rss / _GIB)
    return schemas.ResourceUsageOut(
        templates=[
            schemas.TemplateUsageOut(
                task_template=name,
                cluster=cluster,
                attempts=attempts[(name, cluster)],
                runtime=statistics_of(runtimes[(name, cluster)]),
                memory=statistics_of(memories[(name, cluster)]),
            )
            for name, cluster in sorted(attempts)
        ]
    )


def statistics_of(values: Sequence[float]) -> schemas.StatisticsOut | None:
    """min, mean, median, p95 and max; quantiles interpolate linearly between order
    statistics (the common "type 7" definition), so p95 of one value is that value."""
    if not values:
        return None
    ordered = sorted(values)
    return schemas.StatisticsOut(
        count=len(ordered),
        min=ordered[0],
        mean=statistics.fmean(ordered),
        median=_quantile(ordered, 0.5),
        p95=_quantile(ordered, 0.95),
        max=ordered[-1],
    )


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = (len(ordered) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def _with_template_name(query: Select[*_Columns]) -> Select[*_Columns]:
    """``query`` (which selects from tasks) joined through arrays to their templates' names."""
    return with_template_names(query.join(models.Array, models.Array.id == models.Task.array_id))


def _count_and_first(
    session: Session, ordered: Select[*_Columns], limit: int
) -> tuple[int, Sequence[tuple[*_Columns]]]:
    """How many rows ``ordered`` matches, and the first ``limit`` of them: a page and its total."""
    count = session.scalar(select(func.count()).select_from(ordered.order_by(None).subquery()))
    return count or 0, session.execute(ordered.limit(limit)).tuples().all()
