"""Reads of one task: its detail, its attempts and its upstream and downstream tasks."""

from __future__ import annotations

import enum
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVarTuple

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from herdsman.core import lifecycle
from herdsman.core.errors import InvalidInputError, NotFoundError
from herdsman.core.schemas import queries as schemas
from herdsman.core.statuses import TaskStatus
from herdsman.server.database import models
from herdsman.server.queries.diagnostics import last_lines
from herdsman.server.queries.lookups import (
    array_of_template,
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
        removed_date=task.removed_date.isoformat() if task.removed_date else None,
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
        .where(other.workflow_id == task.workflow_id, other.removed_date.is_(None))
        .order_by(other.id)
        .limit(limit)
    ).all()
    downstream = session.scalars(
        select(other.id)
        .join(edge, edge.downstream_node_id == other.node_id)
        .where(edge.dag_id == dag_id, edge.upstream_node_id == task.node_id)
        .where(other.workflow_id == task.workflow_id, other.removed_date.is_(None))
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

    Keyset paging: ``after`` is the cursor a page ends with (``"<value>:<id>"``, ``"-:<id>"``
    among tasks without a value yet, or the id when sorting by id), so a page costs about the
    same however deep it is. Every order is read from an index in its order and stops at the
    page's end: no page groups or sorts a workflow's tasks.
    """
    require_workflow(session, workflow_id)
    where = filter_clauses(session, workflow_id, filters)
    if sort is TaskSort.ID:
        found = _by_id(session, workflow_id, filters, where, after, limit + 1)
    else:
        found = _by_key(session, _SORT_KEYS[sort], filters, where, after, limit + 1)
    more = len(found) > limit
    found = found[:limit]
    ids = [task_id for task_id, _ in found]
    rows = _task_rows(session, ids)
    next_after = None
    if more:
        last_id, last_key = found[-1]
        if sort is TaskSort.ID:
            next_after = str(last_id)
        else:
            next_after = f"{'-' if last_key is None else last_key}:{last_id}"
    return TaskPage([rows[i] for i in ids], next_after)


_SORT_KEYS: dict[TaskSort, InstrumentedAttribute[Any]] = {
    TaskSort.RUNTIME: models.Task.peak_wall_time,
    TaskSort.MEMORY: models.Task.peak_rss,
    TaskSort.ATTEMPTS: models.Task.num_attempts,
}
_Found = list[tuple[int, Any]]


def _by_key(
    session: Session,
    key: InstrumentedAttribute[Any],
    filters: TaskFilter,
    where: list[ColumnElement[bool]],
    after: str | None,
    limit: int,
) -> _Found:
    """Tasks by ``key`` descending, then id descending: those with a value first, then those
    without (not yet reported) by id descending.

    Those with a value walk the (workflow, key, id) index backwards; it holds no others (see
    :class:`~herdsman.server.database.models.Task`), so those without are read per status
    through the (workflow or array, status, id) index, backwards, and merged. NULLs are read
    apart in any case because the engines disagree on where they sort.
    """
    task = models.Task
    value, last_id = _key_cursor(key, after)
    found: _Found = []
    if value is not _NO_VALUE:
        valued = select(task.id, key).where(*where, key.is_not(None))
        if value is not None:
            valued = valued.where(or_(key < value, and_(key == value, task.id < last_id)))
        ordered = valued.order_by(key.desc(), task.id.desc()).limit(limit)
        found = list(session.execute(ordered).tuples().all())
        last_id = None
    if len(found) < limit and models.Task.__table__.c[key.key].nullable:
        empty = select(task.id, key).where(*where, key.is_(None))
        if last_id is not None:
            empty = empty.where(task.id < last_id)
        parts = _per_status(filters)
        found.extend(_merged(session, empty, parts, limit - len(found), descending=True))
    return found


class _NoValue:
    """The cursor is among the tasks without a value."""


_NO_VALUE = _NoValue()


def _key_cursor(
    key: InstrumentedAttribute[Any], cursor: str | None
) -> tuple[float | int | _NoValue | None, int | None]:
    """The cursor's (value, id): (None, None) at the start, (_NO_VALUE, id) among the tasks
    without a value."""
    if not cursor:
        return None, None
    text, _, last_id = cursor.rpartition(":")
    try:
        if text == "-":
            return _NO_VALUE, int(last_id)
        number = float(text) if key is models.Task.peak_wall_time else int(text)
        return number, int(last_id)
    except ValueError:
        raise _bad_cursor(cursor, key.key) from None


def _bad_cursor(cursor: str, sort: str) -> InvalidInputError:
    return InvalidInputError(
        f"after {cursor!r} is not a cursor of this listing sorted by {sort}; start again "
        "from the first page",
        details={"fields": ["after"]},
    )


def _by_id(
    session: Session,
    workflow_id: int,
    filters: TaskFilter,
    where: list[ColumnElement[bool]],
    after: str | None,
    limit: int,
) -> _Found:
    """The first ``limit`` kept tasks by id after ``after``.

    Read per value of an indexed column and merged (:func:`_merged`): per number of attempts
    when a least number is asked (the (workflow, attempts, id) index), else per status (the
    template's (array, status, id) index, or the workflow's (workflow, status, id)). An error
    group is read from the error log.
    """
    task = models.Task
    try:
        last = int(after) if after else 0
    except ValueError:
        raise _bad_cursor(after or "", "id") from None
    if filters.signature:
        return _by_signature(session, workflow_id, filters, last, limit)
    parts: list[ColumnElement[bool]]
    if filters.min_attempts is not None:
        most = session.scalar(
            select(func.max(task.num_attempts)).where(task.workflow_id == workflow_id)
        )
        parts = [
            and_(task.workflow_id == workflow_id, task.num_attempts == k)
            for k in range(filters.min_attempts, (most or 0) + 1)
        ]
    else:
        parts = _per_status(filters)
    return _merged(session, select(task.id, task.id).where(*where, task.id > last), parts, limit)


def _per_status(filters: TaskFilter) -> list[ColumnElement[bool]]:
    """One clause per status the filters keep, to read each through a status index."""
    statuses = filters.statuses or [status.value for status in TaskStatus]
    return [models.Task.status == status for status in statuses]


def _merged(
    session: Session,
    query: Select[int, Any],
    parts: Sequence[ColumnElement[bool]],
    limit: int,
    *,
    descending: bool = False,
) -> _Found:
    """The first ``limit`` rows of ``query`` in id order, read a part at a time and merged.

    Each part is one value of an indexed column, so its read walks that index in id order and
    stops at ``limit``; asked in one piece, a planner walks every task of the workflow and
    sorts them, on every page.
    """
    task = models.Task
    order = task.id.desc() if descending else task.id
    found: _Found = []
    for part in parts:
        rows = session.execute(query.where(part).order_by(order).limit(limit)).tuples().all()
        found.extend(rows)
    return sorted(found, reverse=descending)[:limit]


_BY_SIGNATURE_BATCH = 500


def _by_signature(
    session: Session, workflow_id: int, filters: TaskFilter, last: int, limit: int
) -> _Found:
    """The first ``limit`` kept tasks after ``last`` with an error of the group: the group's
    task ids in order from the error log's (workflow, signature, task) index, a batch at a
    time, each batch then checked against the other filters."""
    log, task = models.TaskInstanceErrorLog, models.Task
    # The group's tasks are the workflow's: only a template needs checking beside the rest.
    others = _narrowing(workflow_id, replace(filters, signature=None))
    if filters.template:
        others.append(_scope(session, workflow_id, filters))
    found: _Found = []
    while len(found) < limit:
        group = (
            select(log.task_id)
            .distinct()
            .where(
                log.workflow_id == workflow_id,
                log.signature == filters.signature,
                log.task_id > last,
            )
            .order_by(log.task_id)
            .limit(_BY_SIGNATURE_BATCH)
        )
        batch = [task_id for task_id in session.scalars(group) if task_id is not None]
        if not batch:
            break
        kept = session.scalars(select(task.id).where(*others, task.id.in_(batch)).order_by(task.id))
        found.extend((task_id, task_id) for task_id in kept)
        last = batch[-1]
    return found[:limit]


def filter_clauses(
    session: Session, workflow_id: int, filters: TaskFilter
) -> list[ColumnElement[bool]]:
    """The WHERE clauses on the task table that keep the workflow's tasks ``filters`` keep."""
    return [_scope(session, workflow_id, filters), *_narrowing(workflow_id, filters)]


def _scope(session: Session, workflow_id: int, filters: TaskFilter) -> ColumnElement[bool]:
    """The workflow's tasks, or its template's: the template's array is the workflow's, and a
    workflow clause beside it would draw planners to the (workflow, status) index."""
    task = models.Task
    if filters.template:
        return task.array_id == array_of_template(session, workflow_id, filters.template)
    return task.workflow_id == workflow_id


def _narrowing(workflow_id: int, filters: TaskFilter) -> list[ColumnElement[bool]]:
    """The filters' clauses other than which workflow or template (tasks a resume removed
    are never kept)."""
    task = models.Task
    where: list[ColumnElement[bool]] = [task.removed_date.is_(None)]
    if filters.statuses:
        where.append(task.status.in_(filters.statuses))
    if filters.name:
        where.append(func.lower(task.name).contains(filters.name.lower(), autoescape=True))
    if filters.min_attempts is not None:
        where.append(task.num_attempts >= filters.min_attempts)
    if filters.signature:
        log = models.TaskInstanceErrorLog
        failed = select(log.task_id).where(
            log.workflow_id == workflow_id, log.signature == filters.signature
        )
        where.append(task.id.in_(failed))
    return where


def _task_rows(session: Session, ids: Sequence[int]) -> dict[int, TaskRow]:
    """The listing's columns of the given tasks (a page: a few hundred at most)."""
    if not ids:
        return {}
    task = models.Task
    rows = session.execute(
        with_template_names(
            select(
                task.id,
                task.name,
                task.status,
                models.TaskTemplate.name,
                task.num_attempts,
                task.max_attempts,
                task.peak_wall_time,
                task.peak_rss,
            ).join(models.Array, models.Array.id == task.array_id)
        ).where(task.id.in_(ids))
    ).tuples()
    return {row[0]: TaskRow(*row) for row in rows}


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
        other.workflow_id == task.workflow_id,
        other.node_id.in_(nodes),
        other.removed_date.is_(None),
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
        .where(
            other.workflow_id == task.workflow_id,
            other.node_id == edge.upstream_node_id,
            other.removed_date.is_(None),
        )
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
            .where(
                active.workflow_id == task.workflow_id,
                active.status.in_(_ACTIVE),
                active.removed_date.is_(None),
            )
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
