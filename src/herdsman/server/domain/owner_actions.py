"""What a workflow's owner does to it by hand: change its limits, stop it, reset it, update
its tasks.

Limits live on the workflow and array rows; the running swarm reads them from every heartbeat
reply (see :func:`herdsman.server.domain.runs.run_heartbeat`), so a change reaches it within one
heartbeat interval, and nothing else needs telling. A later re-bind of the same workflow keeps
the value set here unless the client sends a new one (see
:func:`herdsman.server.domain.binding.bind_arrays`).

A stop ends the run that holds the workflow and has its jobs killed.

Resets and task updates overrule the scheduler (a done task may run again; a failed one may be
declared done), so they are guarded:

* only the workflow's owner or an admin may make them (the access policy checks that before
  the route runs; see :mod:`herdsman.server.auth.policy`);
* no run may hold the workflow: the swarm would otherwise act on statuses changed under it;
* a done workflow is reopened only by setting tasks back to registering, which makes it
  failed again (F) so that a resume runs them, as in Jobmon; declaring its tasks done changes
  nothing and is refused;
* resetting a task resets every task downstream of it, transitively: their results were made
  from the output that is about to be replaced.

Every action is logged at warning with the user who asked, and audited by the route.

Each request is one transaction with the workflow row locked, validated by the owner table
:data:`~herdsman.core.statuses.TASK_BY_OWNER`, and every status change goes on the change feed.
Tasks already in the requested status are left alone, so a repeated request changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from herdsman.core import lifecycle
from herdsman.core.errors import ConflictError, NotFoundError
from herdsman.core.schemas import control as schemas
from herdsman.core.schemas.swarm import ConcurrencyOut, RunStatusIn, RunStatusOut
from herdsman.core.statuses import (
    TASK_BY_OWNER,
    TaskStatus,
    Transition,
    WorkflowRunStatus,
    WorkflowStatus,
)
from herdsman.server.database import models, sql
from herdsman.server.database.bulk import chunked
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain.runs import (
    concurrency,
    count_unfinished,
    set_run_status,
    workflow_for_update,
)
from herdsman.server.queries.lookups import require_workflow, with_template_names
from herdsman.server.queries.tasks import TaskFilter, filter_clauses

__all__ = [
    "FilteredUpdate",
    "StatusChangePlan",
    "latest_run",
    "plan_tasks_by_filter",
    "reset_workflow",
    "set_template_limit",
    "set_workflow_limit",
    "stop_workflow",
    "summarise_plan",
    "update_tasks",
    "update_tasks_by_filter",
]

logger = structlog.get_logger(__name__)

_CHUNK = 1000


def set_workflow_limit(
    session: Session, workflow_id: int, limit: int, user: str, recorder: ChangeRecorder
) -> ConcurrencyOut:
    """At most ``limit`` of the workflow's tasks active at once; answers the limits in force.

    A change goes into the workflow's change feed, so a running swarm applies it at once; the
    same value again (a replay) changes nothing and records nothing.
    """
    require_workflow(session, workflow_id)
    current = session.scalar(
        select(models.Workflow.max_concurrently_running).where(models.Workflow.id == workflow_id)
    )
    if current != limit:
        session.execute(
            update(models.Workflow)
            .where(models.Workflow.id == workflow_id)
            .values(max_concurrently_running=limit)
        )
        recorder.limits(workflow_id)
    logger.warning(
        "workflow_limit_set", workflow_id=workflow_id, max_concurrently_running=limit, user=user
    )
    return concurrency(session, workflow_id)


def set_template_limit(
    session: Session,
    workflow_id: int,
    template_name: str,
    limit: int,
    user: str,
    recorder: ChangeRecorder,
) -> ConcurrencyOut:
    """At most ``limit`` active tasks in each of the workflow's arrays of this template.

    A workflow has one array per template version it uses, so a template bound in two versions
    has two arrays; both get the limit. Raises NotFoundError naming the workflow's templates
    when it has none called ``template_name``.
    """
    require_workflow(session, workflow_id)
    array_ids = session.scalars(
        with_template_names(select(models.Array.id))
        .where(models.Array.workflow_id == workflow_id, models.TaskTemplate.name == template_name)
        .order_by(models.Array.id)
    ).all()
    if not array_ids:
        known = _template_names(session, workflow_id)
        raise NotFoundError(
            f"workflow {workflow_id} has no task template {template_name!r}; its task templates "
            f"are: {', '.join(known) if known else '(none)'}",
            details={"workflow_id": workflow_id, "task_template_name": template_name},
        )
    changed = session.scalars(
        select(models.Array.id).where(
            models.Array.id.in_(array_ids), models.Array.max_concurrently_running != limit
        )
    ).all()
    if changed:
        session.execute(
            update(models.Array)
            .where(models.Array.id.in_(changed))
            .values(max_concurrently_running=limit)
        )
        recorder.limits(workflow_id)
    logger.warning(
        "template_limit_set",
        user=user,
        workflow_id=workflow_id,
        task_template_name=template_name,
        array_ids=list(array_ids),
        max_concurrently_running=limit,
    )
    return concurrency(session, workflow_id)


def _template_names(session: Session, workflow_id: int) -> list[str]:
    names = session.scalars(
        with_template_names(select(models.TaskTemplate.name).select_from(models.Array))
        .where(models.Array.workflow_id == workflow_id)
        .distinct()
    ).all()
    return sorted(names)


def stop_workflow(
    session: Session, workflow_id: int, user: str, recorder: ChangeRecorder
) -> RunStatusOut:
    """Stop the run that holds the workflow (-> S) and have its jobs killed.

    The swarm sees the stopped status in its next heartbeat reply and ends; the distributor
    kills the jobs. Stopping a stopped run again answers with its status, so a retried request
    is harmless. A workflow no run holds is refused: there is nothing to stop.
    """
    require_workflow(session, workflow_id)
    run = latest_run(session, workflow_id)
    if run is None:
        raise ConflictError(
            f"workflow {workflow_id} has never run; there is nothing to stop",
            details={"workflow_id": workflow_id},
        )
    status = WorkflowRunStatus(run.status)
    if (
        status is not WorkflowRunStatus.STOPPED
        and status not in lifecycle.LIVE_WORKFLOW_RUN_STATUSES
    ):
        raise ConflictError(
            f"workflow {workflow_id} is not running: its last run {run.id} ended as "
            f"{status.name.lower()} ({status.value})",
            details={"workflow_id": workflow_id, "status": status.value},
        )
    logger.warning(
        "workflow_stop_requested", workflow_id=workflow_id, workflow_run_id=run.id, user=user
    )
    return set_run_status(
        session,
        run.id,
        RunStatusIn(status=WorkflowRunStatus.STOPPED.value, message=f"stopped by {user}"),
        recorder,
    )


def latest_run(session: Session, workflow_id: int) -> models.WorkflowRun | None:
    """The workflow's newest run, the one that speaks for it; None if it never ran."""
    return session.scalars(
        select(models.WorkflowRun)
        .where(models.WorkflowRun.workflow_id == workflow_id)
        .order_by(models.WorkflowRun.id.desc())
        .limit(1)
    ).first()


def reset_workflow(
    session: Session,
    workflow_id: int,
    request: schemas.WorkflowResetIn,
    user: str,
    recorder: ChangeRecorder,
) -> schemas.OwnerUpdateOut:
    """Set the tasks of a workflow whose last run failed back to registering, attempts unspent.

    A full reset runs every task again at the next resume; a partial one keeps done tasks.
    The workflow stays failed (F) until that resume: its last run did fail, and a failed
    workflow whose tasks the owner then marks done can still become done.
    """
    workflow = workflow_for_update(session, workflow_id)
    run = _require_idle(session, workflow)
    if run is None or run.status != WorkflowRunStatus.ERROR.value:
        if run is None:
            ended = "it never ran"
        else:
            name = WorkflowRunStatus(run.status).name.lower()
            ended = f"its last run {run.id} ended {name} ({run.status})"
        raise ConflictError(
            f"workflow {workflow_id} can only be reset after a failed run (E); {ended}",
            details={"workflow_id": workflow_id, "status": workflow.status},
        )
    task = models.Task
    query = select(task.id, task.status, task.num_attempts, task.array_id).where(
        task.workflow_id == workflow_id, task.removed_date.is_(None)
    )
    if request.partial:
        query = query.where(task.status != TaskStatus.DONE.value)
    rows = session.execute(query).tuples().all()
    changed = _set_tasks(session, workflow_id, rows, TaskStatus.REGISTERING, recorder)
    logger.warning(
        "workflow_reset",
        workflow_id=workflow_id,
        partial=request.partial,
        tasks_changed=len(changed),
        user=user,
    )
    return schemas.OwnerUpdateOut(
        workflow_id=workflow_id, workflow_status=workflow.status, changed_task_ids=changed
    )


def update_tasks(
    session: Session,
    workflow_id: int,
    request: schemas.TaskUpdateIn,
    user: str,
    recorder: ChangeRecorder,
) -> schemas.OwnerUpdateOut:
    """Set tasks to done or back to registering (see the module docstring for the rules).

    When the update leaves every task of a failed or halted workflow done, the workflow is
    done too.
    """
    workflow = workflow_for_update(session, workflow_id)
    target = TaskStatus(request.status)
    reopened = lifecycle.workflow_reopened_by_owner(WorkflowStatus(workflow.status), target)
    if reopened is None:
        _require_open(session, workflow)
    else:
        _require_idle(session, workflow)
    named = set(request.task_ids)
    found = _chosen_by_ids(session, workflow_id, named)
    if found.keys() != named:
        absent = sorted(named - found.keys())
        raise NotFoundError(
            f"workflow {workflow_id} has no task {', '.join(str(i) for i in absent)}",
            details={"workflow_id": workflow_id, "value": absent},
        )
    rows = _plan_rows(session, workflow, found, target, recursive=request.recursive)
    changed = _set_tasks(session, workflow_id, rows, target, recorder)
    if reopened is not None and changed:
        workflow.status = reopened.value
        workflow.status_date = models.utcnow()
        logger.warning("workflow_reopened_by_owner", workflow_id=workflow_id, status=reopened)
    _close_if_done(session, workflow, target)
    logger.warning(
        "tasks_updated_by_owner",
        workflow_id=workflow_id,
        status=target.value,
        requested=len(found),
        tasks_changed=len(changed),
        user=user,
    )
    return schemas.OwnerUpdateOut(
        workflow_id=workflow_id, workflow_status=workflow.status, changed_task_ids=changed
    )


def _require_open(session: Session, workflow: models.Workflow) -> None:
    """Refuse a workflow a run holds, or one that is done (see the module docstring)."""
    _require_idle(session, workflow)
    if workflow.status == WorkflowStatus.DONE.value:
        raise ConflictError(
            f"workflow {workflow.id} is done: every task is done already; to run tasks "
            "again, set them back to registering (`herdsman task update -s G`), which "
            "reopens the workflow, and resume it",
            details={"workflow_id": workflow.id, "status": workflow.status},
        )


def _close_if_done(session: Session, workflow: models.Workflow, target: TaskStatus) -> None:
    """A failed or halted workflow whose tasks are now all done is done."""
    if target is TaskStatus.DONE and lifecycle.workflow_done_by_tasks(
        WorkflowStatus(workflow.status),
        tasks_unfinished=count_unfinished(session, workflow.id) > 0,
    ):
        workflow.status = WorkflowStatus.DONE.value
        workflow.status_date = models.utcnow()


# (task id, status, attempts spent, array id)
_PlanRow = tuple[int, str, int, int]
_PLAN_COLUMNS = (models.Task.id, models.Task.status, models.Task.num_attempts, models.Task.array_id)


def _plan_rows(
    session: Session,
    workflow: models.Workflow,
    chosen: dict[int, _Chosen],
    target: TaskStatus,
    *,
    recursive: bool,
) -> list[_PlanRow]:
    """The tasks a change of ``chosen`` to ``target`` touches, in id order: a reset takes
    every task downstream, ``recursive`` done every task upstream."""
    rows = {task_id: found.row for task_id, found in chosen.items()}
    if target is TaskStatus.REGISTERING or recursive:
        nodes = {found.node_id for found in chosen.values()}
        downstream = target is TaskStatus.REGISTERING
        rows.update(_closure(session, workflow, nodes, downstream=downstream))
    return [rows[task_id] for task_id in sorted(rows)]


@dataclass(frozen=True)
class _Chosen:
    """A task a status change names, with its node (where the DAG is walked from)."""

    row: _PlanRow
    node_id: int


def _chosen_by_ids(session: Session, workflow_id: int, ids: set[int]) -> dict[int, _Chosen]:
    task = models.Task
    chosen: dict[int, _Chosen] = {}
    for part in chunked(sorted(ids), _CHUNK):  # an IN of a million ids is refused
        query = select(*_PLAN_COLUMNS, task.node_id).where(
            task.workflow_id == workflow_id,
            sql.column_in(session, task.id, part),
            task.removed_date.is_(None),  # a resume removed it: out of the workflow
        )
        _add_chosen(chosen, session.execute(query).tuples())
    return chosen


def _add_chosen(chosen: dict[int, _Chosen], rows: Iterable[tuple[int, str, int, int, int]]) -> None:
    """Rows of :data:`_PLAN_COLUMNS` and the node id, by task id."""
    for task_id, status, attempts, array_id, node_id in rows:
        chosen[task_id] = _Chosen((task_id, status, attempts, array_id), node_id)


def _chosen_by_filter(
    session: Session, workflow_id: int, filters: TaskFilter
) -> dict[int, _Chosen]:
    """The workflow's tasks that ``filters`` keep, read ``_CHUNK`` at a time in id order
    (keyset), so no single read holds a million rows."""
    task = models.Task
    query = (
        select(*_PLAN_COLUMNS, task.node_id)
        .where(*filter_clauses(session, workflow_id, filters))
        .order_by(task.id)
        .limit(_CHUNK)
    )
    chosen: dict[int, _Chosen] = {}
    last = 0
    while True:
        part = session.execute(query.where(task.id > last)).tuples().all()
        _add_chosen(chosen, part)
        if len(part) < _CHUNK:
            return chosen
        last = part[-1][0]


@dataclass(frozen=True)
class StatusChangePlan:
    """What a status change by filter would do, before it is applied.

    ``chosen`` tasks match the filter; ``touched`` adds those the DAG brings along (downstream
    of a reset, upstream of a recursive done); ``changing`` of them get a new status or their
    attempts back (the count the change answers); ``active`` are queued, launched or running
    now; ``by_template`` counts the touched tasks of each template.
    """

    target: str
    chosen: int
    touched: int
    changing: int
    active: int
    by_status: dict[str, int]
    by_template: dict[str, int]
    blocked: str | None = None
    """Why the change cannot be applied now (a run holds the workflow, it is done), or None."""


def summarise_plan(
    rows: Iterable[tuple[int, str, int, str]], chosen: int, target: TaskStatus
) -> StatusChangePlan:
    """Count what setting the tasks ``rows`` (id, status, attempts, template) to ``target``
    does, by the same owner table as :func:`_set_tasks`."""
    # Counted by kind first: a preview may count a million tasks, and few kinds.
    kinds: Counter[tuple[str, bool, str]] = Counter(
        (status, attempts > 0, template) for _task_id, status, attempts, template in rows
    )
    by_status: Counter[str] = Counter()
    by_template: Counter[str] = Counter()
    changing = 0
    for (status, attempted, template), number in kinds.items():
        by_status[status] += number
        by_template[template] += number
        decision = TASK_BY_OWNER.decide(TaskStatus(status), target)
        if decision is Transition.VALID or (target is TaskStatus.REGISTERING and attempted):
            changing += number
    active = sum(by_status[s.value] for s in lifecycle.ACTIVE_TASK_STATUSES)
    return StatusChangePlan(
        target=target.value,
        chosen=chosen,
        touched=sum(by_status.values()),
        changing=changing,
        active=active,
        by_status=dict(sorted(by_status.items())),
        by_template=dict(sorted(by_template.items())),
    )


def _template_of_arrays(session: Session, array_ids: Iterable[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for part in chunked(sorted(set(array_ids)), _CHUNK):
        found.update(
            session.execute(
                with_template_names(select(models.Array.id, models.TaskTemplate.name)).where(
                    models.Array.id.in_(part)
                )
            )
            .tuples()
            .all()
        )
    return found


def plan_tasks_by_filter(
    session: Session,
    workflow_id: int,
    filters: TaskFilter,
    target: TaskStatus,
    *,
    recursive: bool = False,
) -> StatusChangePlan:
    """Preview :func:`update_tasks_by_filter`: the same tasks, counted, nothing changed."""
    workflow = require_workflow(session, workflow_id)
    chosen = _chosen_by_filter(session, workflow_id, filters)
    rows = _plan_rows(session, workflow, chosen, target, recursive=recursive)
    names = _template_of_arrays(session, (row[3] for row in rows))
    plan = summarise_plan(
        ((i, s, a, names.get(array_id, "")) for i, s, a, array_id in rows), len(chosen), target
    )
    try:
        _require_open(session, workflow)
    except ConflictError as error:
        return replace(plan, blocked=error.message)
    return plan


@dataclass(frozen=True)
class FilteredUpdate:
    """What a status change by filter did: ``changed`` tasks of the ``chosen`` ones and
    those the DAG brought along."""

    workflow_id: int
    workflow_status: str
    chosen: int
    changed: int


def update_tasks_by_filter(
    session: Session,
    workflow_id: int,
    filters: TaskFilter,
    target: TaskStatus,
    user: str,
    recorder: ChangeRecorder,
    *,
    recursive: bool = False,
    expected: int | None = None,
) -> FilteredUpdate:
    """:func:`update_tasks` for the tasks ``filters`` keep instead of a list of ids, so a
    million tasks are changed without a million ids crossing the network.

    Ids are read and tasks updated ``_CHUNK`` at a time, all in one transaction with the
    workflow row locked: the change happens whole or not at all. With ``expected`` (the
    ``changing`` count of a preview) a change that would now touch another number of tasks is
    refused, so what the owner confirmed is what happens.
    """
    if target not in (TaskStatus.DONE, TaskStatus.REGISTERING):
        raise ConflictError(f"tasks are set to D or G by their owner, not {target.value}")
    workflow = workflow_for_update(session, workflow_id)
    _require_open(session, workflow)
    chosen = _chosen_by_filter(session, workflow_id, filters)
    rows = _plan_rows(session, workflow, chosen, target, recursive=recursive)
    if expected is not None:
        changing = summarise_plan(((*row[:3], "") for row in rows), len(chosen), target).changing
        if changing != expected:
            raise ConflictError(
                f"the filter now changes {changing} tasks, not the {expected} of the preview: "
                "their statuses changed since; preview again",
                details={"workflow_id": workflow_id, "value": changing},
            )
    changed = _set_tasks(session, workflow_id, rows, target, recorder)
    _close_if_done(session, workflow, target)
    logger.warning(
        "tasks_updated_by_owner_filter",
        workflow_id=workflow_id,
        status=target.value,
        chosen=len(chosen),
        tasks_changed=len(changed),
        filters=str(filters),
        user=user,
    )
    return FilteredUpdate(workflow_id, workflow.status, len(chosen), len(changed))


def _set_tasks(
    session: Session,
    workflow_id: int,
    rows: Iterable[_PlanRow],
    target: TaskStatus,
    recorder: ChangeRecorder,
) -> list[int]:
    """Move each task to ``target`` as the owner table allows; the ids that changed.

    A reset also gives back the task's attempts, so it gets its full ``max_attempts`` again; a
    task already registering with attempts spent counts as changed for that reason.
    """
    moved: list[tuple[int, str, int, int]] = []
    refreshed: list[tuple[int, str, int, int]] = []
    # By id, so the change feed lists the changes in the same order on every engine.
    for task_id, status, attempts, array_id in sorted(rows):
        decision = TASK_BY_OWNER.decide(TaskStatus(status), target)
        if decision is Transition.VALID:
            moved.append((task_id, status, array_id, attempts))
        elif target is TaskStatus.REGISTERING and attempts:
            refreshed.append((task_id, status, array_id, attempts))
        elif decision is Transition.REFUSED:  # pragma: no cover - the owner table allows all
            raise ConflictError(f"task {task_id} cannot go from {status} to {target.value}")
    values: dict[str, object] = {"status": target.value, "status_date": models.utcnow()}
    if target is TaskStatus.REGISTERING:
        values["num_attempts"] = 0
    moved_ids = [row[0] for row in moved]
    refreshed_ids = [row[0] for row in refreshed]
    for part in chunked([*moved_ids, *refreshed_ids], _CHUNK):
        session.execute(update(models.Task).where(models.Task.id.in_(part)).values(**values))
    after = 0 if target is TaskStatus.REGISTERING else None
    for task_id, status, array_id, attempts in moved:
        recorder.task(
            workflow_id,
            task_id,
            target,
            previous=status,
            array_id=array_id,
            attempts=attempts,
            attempts_after=after,
        )
    for _, status, array_id, attempts in refreshed:
        recorder.task_attempts(workflow_id, array_id, status, attempts, 0)
    return sorted([*moved_ids, *refreshed_ids])


def _closure(
    session: Session, workflow: models.Workflow, start: set[int], *, downstream: bool
) -> dict[int, _PlanRow]:
    """Every task reachable from the nodes ``start`` along the DAG's edges, one way (the
    tasks of ``start`` itself excluded)."""
    task, edge = models.Task, models.Edge
    near, far = (
        (edge.upstream_node_id, edge.downstream_node_id)
        if downstream
        else (edge.downstream_node_id, edge.upstream_node_id)
    )
    reached_tasks: dict[int, _PlanRow] = {}
    seen_nodes = set(start)
    frontier = set(start)
    while frontier:
        reached: set[int] = set()
        for part in chunked(sorted(frontier), _CHUNK):
            reached.update(
                session.scalars(
                    select(far).where(
                        edge.dag_id == workflow.dag_id, sql.column_in(session, near, part)
                    )
                ).all()
            )
        frontier = reached - seen_nodes
        seen_nodes |= frontier
        for part in chunked(sorted(frontier), _CHUNK):
            rows = session.execute(
                select(*_PLAN_COLUMNS).where(
                    task.workflow_id == workflow.id,
                    sql.column_in(session, task.node_id, part),
                    task.removed_date.is_(None),
                )
            ).tuples()
            reached_tasks.update((row[0], row) for row in rows)
    return reached_tasks


def _require_idle(session: Session, workflow: models.Workflow) -> models.WorkflowRun | None:
    """Refuse any workflow a run still holds; the latest run."""
    run = latest_run(session, workflow.id)
    if run is not None and WorkflowRunStatus(run.status) in lifecycle.LIVE_WORKFLOW_RUN_STATUSES:
        raise ConflictError(
            f"workflow {workflow.id} is running (run {run.id} is {run.status}); stop it first "
            "with `herdsman workflow stop`",
            details={"workflow_id": workflow.id, "status": workflow.status},
        )
    return run
