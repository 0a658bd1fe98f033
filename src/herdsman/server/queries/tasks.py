"""Reads of one task: its detail, its attempts and its upstream and downstream tasks."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVarTuple

from sqlalchemy import ColumnElement, Select, Subquery, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from herdsman.core import lifecycle
from herdsman.core.errors import InvalidInputError, NotFoundError
from herdsman.core.schemas import queries as schemas
from herdsman.core.statuses import TaskStatus
from herdsman.server.database import models
from herdsman.server.queries.diagnostics import last_lines
from herdsman.server.queries.lookups import (
    iso,
    require_task,
    require_workflow,
    with_template_names,
)

_Columns = TypeVarTuple("_Columns")

__all__ = [
    "Blockers",
    "NeighbourPage",
    "TaskFilter",
    "TaskPage",
    "TaskRow",
    "TaskSort",
    "filter_clauses",
    "neighbour_page",
    "neighbours",
    "task_attempts",
    "task_blockers",
    "task_dependencies",
    "task_detail",
    "task_out",
    "task_page",
]


def task_detail(
    session: Session, task_id: int, neighbour_limit: int | None = None
) -> schemas.TaskDetailOut:
    """The task with its args, attributes and resources, and the ids of its upstream and
    downstream tasks: all of them, or the first ``neighbour_limit`` of each."""
    task = require_task(session, task_id)
    node_args = session.execute(
        select(models.Arg.name, models.NodeArg.value)
        .join(models.Arg, models.Arg.id == models.NodeArg.arg_id)
        .where(models.NodeArg.node_id == task.node_id)
    ).tuples()
    task_args = session.execute(
        select(models.Arg.name, models.TaskArg.value)
        .join(models.Arg, models.Arg.id == models.TaskArg.arg_id)
        .where(models.TaskArg.task_id == task_id)
    ).tuples()
    attributes = session.execute(
        select(models.TaskAttribute.name, models.TaskAttribute.value).where(
            models.TaskAttribute.task_id == task_id
        )
    ).tuples()
    upstream, downstream = neighbours(session, task, neighbour_limit)
    base = task_out(task)
    return schemas.TaskDetailOut(
        **base.model_dump(),
        workflow_id=task.workflow_id,
        node_args=dict(node_args.all()),
        task_args=dict(task_args.all()),
        attributes=dict(attributes.all()),
        original_resources=_resources(session, task.original_resources_id),
        resources=_resources(session, task.task_resources_id),
        upstream_task_ids=upstream,
        downstream_task_ids=downstream,
    )


def neighbours(
    session: Session, task: models.Task, limit: int | None = None
) -> tuple[list[int], list[int]]:
    """The ids of the task's direct upstream and downstream tasks in its workflow (the first
    ``limit`` of each, or all)."""
    dag_id = session.scalar(
        select(models.Workflow.dag_id).where(models.Workflow.id == task.workflow_id)
    )
    other = models.Task
    edge = models.Edge
    upstream = session.scalars(
        select(other.id)
        .join(edge, edge.upstream_node_id == other.node_id)
        .where(edge.dag_id == dag_id, edge.downstream_node_id == task.node_id)
        .where(other.workflow_id == task.workflow_id)
        .order_by(other.id)
        .limit(limit)
    ).all()
    downstream = session.scalars(
        select(other.id)
        .join(edge, edge.downstream_node_id == other.node_id)
        .where(edge.dag_id == dag_id, edge.upstream_node_id == task.node_id)
        .where(other.workflow_id == task.workflow_id)
        .order_by(other.id)
        .limit(limit)
    ).all()
    return list(upstream), list(downstream)


def _resources(session: Session, resources_id: int) -> schemas.ResourcesOut:
    row = session.get(models.TaskResources, resources_id)
    if row is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFoundError(f"task resources {resources_id} do not exist")
    return schemas.ResourcesOut(
        id=row.id, kind=row.kind, queue_id=row.queue_id, requested=json.loads(row.requested)
    )


def task_attempts(session: Session, task_id: int, tail_lines: int = 0) -> schemas.TaskAttemptsOut:
    """Every attempt at the task, oldest first, each with its last error message and exit
    class, and the last ``tail_lines`` lines of its output tails (0: all that was kept)."""
    task = require_task(session, task_id)
    instance, log = models.TaskInstance, models.TaskInstanceErrorLog
    attempts = session.scalars(
        select(instance).where(instance.task_id == task_id).order_by(instance.id)
    ).all()
    last_error: dict[int, tuple[str, str | None]] = {}
    for instance_id, description, exit_class in session.execute(
        select(log.task_instance_id, log.description, log.exit_class)
        .join(instance, instance.id == log.task_instance_id)
        .where(instance.task_id == task_id)
        .order_by(log.id)
    ).tuples():
        last_error[instance_id] = (description, exit_class)
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
                submitted=iso(row.submitted_date),
                status_date=row.status_date.isoformat(),
                wall_time=row.wall_time,
                cpu_time=row.cpu_time,
                max_rss=row.max_rss,
                requested_memory=row.requested_memory,
                requested_runtime=row.requested_runtime,
                requested_cores=row.requested_cores,
                stdout_path=row.stdout_path,
                stderr_path=row.stderr_path,
                stdout_tail=last_lines(row.stdout_tail, tail_lines),
                stderr_tail=last_lines(row.stderr_tail, tail_lines),
                error=last_error.get(row.id, (None, None))[0],
                exit_class=last_error.get(row.id, (None, None))[1],
            )
            for row in attempts
        ],
    )


def task_dependencies(session: Session, task_id: int) -> schemas.DependenciesOut:
    """The task's direct upstream and downstream tasks in its workflow, with their statuses."""
    task = require_task(session, task_id)
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


def task_out(row: models.Task) -> schemas.TaskOut:
    """The columns of a task that listings show."""
    return schemas.TaskOut(
        id=row.id,
        name=row.name,
        status=row.status,
        node_id=row.node_id,
        array_id=row.array_id,
        command=row.command,
        num_attempts=row.num_attempts,
        max_attempts=row.max_attempts,
    )


class TaskSort(enum.StrEnum):
    """Orders of a task listing: by id (ascending), or the largest first by the most any
    attempt ran (seconds), used (bytes of memory), or by attempts made."""

    ID = "id"
    RUNTIME = "runtime"
    MEMORY = "memory"
    ATTEMPTS = "attempts"


@dataclass(frozen=True)
class TaskFilter:
    """What a task listing keeps; None or empty keeps everything.

    ``name`` matches anywhere in the task's name, ignoring case; ``min_attempts`` keeps tasks
    attempted at least that often; ``signature`` keeps tasks with an error of that signature.
    """

    statuses: tuple[str, ...] = ()
    template: str | None = None
    name: str | None = None
    min_attempts: int | None = None
    signature: str | None = None


@dataclass(frozen=True)
class TaskRow:
    """A task as listings show it; ``runtime`` and ``memory`` are the most any of its
    attempts ran and used (None before its first report of usage)."""

    id: int
    name: str
    status: str
    template: str
    num_attempts: int
    max_attempts: int
    runtime: float | None
    memory: int | None


@dataclass(frozen=True)
class TaskPage:
    """A page of tasks, and the cursor of the next page (None on the last)."""

    tasks: list[TaskRow]
    next_after: str | None


def task_page(
    session: Session,
    workflow_id: int,
    filters: TaskFilter,
    sort: TaskSort,
    after: str | None,
    limit: int,
) -> TaskPage:
    """A page of the workflow's tasks that ``filters`` keep, in ``sort`` order.

    Keyset paging: ``after`` is the cursor a page ends with (``"<value>:<id>"``, or the id
    when sorting by id), so a page costs about the same however deep it is. Sorting by runtime
    or memory takes each kept task's largest over its attempts first, which reads all of the
    workflow's attempts (one GROUP BY); by id or attempts only what the page needs is read.
    """
    require_workflow(session, workflow_id)
    task = models.Task
    usage = _usage_by_task(workflow_id)
    key: _Key
    if sort is TaskSort.RUNTIME:
        key = func.coalesce(usage.c.runtime, -1.0)
    elif sort is TaskSort.MEMORY:
        key = func.coalesce(usage.c.memory, -1)
    elif sort is TaskSort.ATTEMPTS:
        key = task.num_attempts
    else:
        key = task.id
    query = select(task.id, key).where(task.workflow_id == workflow_id)
    if sort in (TaskSort.RUNTIME, TaskSort.MEMORY):
        query = query.outerjoin(usage, usage.c.task_id == task.id)
    query = query.where(*_kept(workflow_id, filters))
    if after:
        query = query.where(_after(sort, key, after))
    if sort is TaskSort.ID:
        found = _by_id(session, query, filters.statuses, limit + 1)
    else:
        ordered = query.order_by(key.desc(), task.id).limit(limit + 1)
        found = list(session.execute(ordered).tuples().all())
    more = len(found) > limit
    found = found[:limit]
    ids = [task_id for task_id, _ in found]
    rows = _task_rows(session, ids)
    next_after = None
    if more:
        last_id, last_key = found[-1]
        next_after = str(last_id) if sort is TaskSort.ID else f"{last_key}:{last_id}"
    return TaskPage([rows[i] for i in ids], next_after)


_Key = ColumnElement[float] | ColumnElement[int] | InstrumentedAttribute[int]


def _by_id(
    session: Session, query: Select[int, Any], statuses: Sequence[str], limit: int
) -> list[tuple[int, Any]]:
    """The first ``limit`` rows of ``query`` by task id, one status at a time, merged.

    Each status's rows come from the (workflow, status) index in id order and stop at
    ``limit``, so a page reads at most ``limit`` rows per status. Asked in one piece, the
    planner walks every task of the workflow and sorts them, on every page.
    """
    task = models.Task
    found: list[tuple[int, Any]] = []
    for status in statuses or [status.value for status in TaskStatus]:
        found.extend(
            session.execute(query.where(task.status == status).order_by(task.id).limit(limit))
            .tuples()
            .all()
        )
    return sorted(found, key=lambda row: row[0])[:limit]


def _usage_by_task(workflow_id: int) -> Subquery:
    """Each attempted task of the workflow with the most any attempt ran and used."""
    instance, run = models.TaskInstance, models.WorkflowRun
    runs = select(run.id).where(run.workflow_id == workflow_id)
    return (
        select(
            instance.task_id.label("task_id"),
            func.max(instance.wall_time).label("runtime"),
            func.max(instance.max_rss).label("memory"),
        )
        .where(instance.workflow_run_id.in_(runs))
        .group_by(instance.task_id)
        .subquery("usage")
    )


def filter_clauses(workflow_id: int, filters: TaskFilter) -> list[ColumnElement[bool]]:
    """The WHERE clauses of ``filters`` on the task table (with ``workflow_id``'s own)."""
    return _kept(workflow_id, filters)


def _kept(workflow_id: int, filters: TaskFilter) -> list[ColumnElement[bool]]:
    task = models.Task
    where: list[ColumnElement[bool]] = []
    if filters.statuses:
        where.append(task.status.in_(filters.statuses))
    if filters.template:
        arrays = with_template_names(select(models.Array.id)).where(
            models.Array.workflow_id == workflow_id, models.TaskTemplate.name == filters.template
        )
        where.append(task.array_id.in_(arrays))
    if filters.name:
        where.append(func.lower(task.name).contains(filters.name.lower(), autoescape=True))
    if filters.min_attempts is not None:
        where.append(task.num_attempts >= filters.min_attempts)
    if filters.signature:
        log, instance = models.TaskInstanceErrorLog, models.TaskInstance
        failed = (
            select(instance.task_id)
            .join(log, log.task_instance_id == instance.id)
            .where(log.workflow_id == workflow_id, log.signature == filters.signature)
        )
        where.append(task.id.in_(failed))
    return where


def _after(sort: TaskSort, key: _Key, cursor: str) -> ColumnElement[bool]:
    """Rows after the keyset cursor ``cursor`` in ``sort`` order (the key descending, then
    ids ascending)."""
    task = models.Task
    try:
        if sort is TaskSort.ID:
            return task.id > int(cursor)
        text, _, last_id = cursor.rpartition(":")
        value: float = float(text) if sort is TaskSort.RUNTIME else int(text)
        return or_(key < value, and_(key == value, task.id > int(last_id)))
    except ValueError:
        raise InvalidInputError(
            f"after {cursor!r} is not a cursor of this listing sorted by {sort}; start again "
            "from the first page",
            details={"fields": ["after"]},
        ) from None


def _task_rows(session: Session, ids: Sequence[int]) -> dict[int, TaskRow]:
    """The listing's columns of the given tasks (a page: a few hundred at most)."""
    if not ids:
        return {}
    task, instance = models.Task, models.TaskInstance
    usage = {
        task_id: (runtime, memory)
        for task_id, runtime, memory in session.execute(
            select(instance.task_id, func.max(instance.wall_time), func.max(instance.max_rss))
            .where(instance.task_id.in_(ids))
            .group_by(instance.task_id)
        ).tuples()
    }
    rows = session.execute(
        with_template_names(
            select(
                task.id,
                task.name,
                task.status,
                models.TaskTemplate.name,
                task.num_attempts,
                task.max_attempts,
            ).join(models.Array, models.Array.id == task.array_id)
        ).where(task.id.in_(ids))
    ).tuples()
    return {
        task_id: TaskRow(
            task_id, name, status, template, attempts, most, *usage.get(task_id, (None, None))
        )
        for task_id, name, status, template, attempts, most in rows
    }


@dataclass(frozen=True)
class NeighbourPage:
    """A page of a task's upstream or downstream tasks by id, and the id to go on after."""

    tasks: list[schemas.NeighbourOut]
    next_after: int | None


def neighbour_page(
    session: Session,
    task_id: int,
    direction: Literal["upstream", "downstream"],
    after: int | None,
    limit: int,
) -> NeighbourPage:
    """A page of the task's direct upstream (or downstream) tasks, with their statuses.

    Unlike :func:`neighbours`, bounded: a task may have a million downstream tasks.
    """
    task = require_task(session, task_id)
    query = _neighbours_query(session, task, direction)
    if after is not None:
        query = query.where(models.Task.id > after)
    rows = session.execute(query.order_by(models.Task.id).limit(limit + 1)).tuples().all()
    more = len(rows) > limit
    rows = rows[:limit]
    return NeighbourPage(
        [schemas.NeighbourOut(id=i, name=name, status=status) for i, name, status in rows],
        rows[-1][0] if more else None,
    )


def _neighbours_query(
    session: Session, task: models.Task, direction: Literal["upstream", "downstream"]
) -> Select[int, str, str]:
    """The task's direct upstream (or downstream) tasks: their nodes from the edge index,
    then each task through the (workflow, node) index.

    Written as ``IN (edges)`` so that planners start from the task's few edges; as a join,
    SQLite may instead walk every task of the workflow when the query is grouped.
    """
    dag_id = session.scalar(
        select(models.Workflow.dag_id).where(models.Workflow.id == task.workflow_id)
    )
    other, edge = models.Task, models.Edge
    if direction == "upstream":
        nodes = select(edge.upstream_node_id).where(
            edge.dag_id == dag_id, edge.downstream_node_id == task.node_id
        )
    else:
        nodes = select(edge.downstream_node_id).where(
            edge.dag_id == dag_id, edge.upstream_node_id == task.node_id
        )
    return select(other.id, other.name, other.status).where(
        other.workflow_id == task.workflow_id, other.node_id.in_(nodes)
    )


def _upstream_statuses(session: Session, task: models.Task) -> dict[str, int]:
    """The task's upstream tasks counted by status, read from its edges.

    The status is a correlated look-up per edge, so the query can only start from the task's
    edges: grouped as a join, SQLite prefers walking every task of the workflow in status
    order.
    """
    dag_id = session.scalar(
        select(models.Workflow.dag_id).where(models.Workflow.id == task.workflow_id)
    )
    other, edge = models.Task, models.Edge
    status = (
        select(other.status)
        .where(other.workflow_id == task.workflow_id, other.node_id == edge.upstream_node_id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(status, func.count())
        .where(edge.dag_id == dag_id, edge.downstream_node_id == task.node_id)
        .group_by(status)
    ).tuples()
    return {found: count for found, count in rows if found is not None}


_ACTIVE = lifecycle.statuses_of(lifecycle.ACTIVE_TASK_STATUSES)


@dataclass(frozen=True)
class Blockers:
    """The facts that say why a task is not running: its upstream tasks not done (the first
    few and how many), its template's and its workflow's concurrency limits with the tasks
    counting against them, and its workflow's newest run (None if it never ran)."""

    task_id: int
    status: str
    num_attempts: int
    max_attempts: int
    upstream_not_done: list[schemas.NeighbourOut]
    upstream_not_done_count: int
    template: str
    template_limit: int
    template_active: int
    workflow_status: str
    workflow_limit: int
    workflow_active: int
    run_id: int | None
    run_status: str | None
    upstream_statuses: dict[str, int] = field(default_factory=dict)


def task_blockers(session: Session, task_id: int, listed: int) -> Blockers:
    """What holds the task back, counted with bounded reads: its upstream tasks by status
    (the first ``listed`` not done), and the active tasks of its workflow through the
    (workflow, status) index."""
    task = require_task(session, task_id)
    workflow = session.get_one(models.Workflow, task.workflow_id)
    upstream = _neighbours_query(session, task, "upstream").subquery()
    by_status = _upstream_statuses(session, task)
    not_done = session.execute(
        select(upstream.c.id, upstream.c.name, upstream.c.status)
        .where(upstream.c.status != TaskStatus.DONE.value)
        .order_by(upstream.c.id)
        .limit(listed)
    ).tuples()
    active = models.Task
    active_by_array = dict(
        session.execute(
            select(active.array_id, func.count())
            .where(active.workflow_id == task.workflow_id, active.status.in_(_ACTIVE))
            .group_by(active.array_id)
        )
        .tuples()
        .all()
    )
    template, limit = session.execute(
        with_template_names(
            select(models.TaskTemplate.name, models.Array.max_concurrently_running).select_from(
                models.Array
            )
        ).where(models.Array.id == task.array_id)
    ).one()
    run = session.execute(
        select(models.WorkflowRun.id, models.WorkflowRun.status)
        .where(models.WorkflowRun.workflow_id == task.workflow_id)
        .order_by(models.WorkflowRun.id.desc())
        .limit(1)
    ).first()
    return Blockers(
        task_id=task.id,
        status=task.status,
        num_attempts=task.num_attempts,
        max_attempts=task.max_attempts,
        upstream_not_done=[
            schemas.NeighbourOut(id=i, name=name, status=status) for i, name, status in not_done
        ],
        upstream_not_done_count=sum(
            n for status, n in by_status.items() if status != TaskStatus.DONE.value
        ),
        template=template,
        template_limit=limit,
        template_active=active_by_array.get(task.array_id, 0),
        workflow_status=workflow.status,
        workflow_limit=workflow.max_concurrently_running,
        workflow_active=sum(active_by_array.values()),
        run_id=run.id if run is not None else None,
        run_status=run.status if run is not None else None,
        upstream_statuses=by_status,
    )
