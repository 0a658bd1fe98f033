"""Changes a workflow's owner makes by hand: resetting a failed workflow, updating tasks.

These overrule the scheduler (a done task may run again; a failed one may be declared done),
so they are guarded:

* only the owner may make them: the user recorded on the workflow or on its latest run;
* no run may hold the workflow: the swarm would otherwise act on statuses changed under it;
* a done workflow is not reopened: its record is final (resume a copy with new
  ``workflow_args`` instead);
* resetting a task resets every task downstream of it, transitively: their results were made
  from the output that is about to be replaced.

Each request is one transaction with the workflow row locked, validated by the owner table
:data:`~herdsman.core.statuses.TASK_BY_OWNER`, and every status change goes on the change feed.
Tasks already in the requested status are left alone, so a repeated request changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from herdsman.core.errors import ConflictError, NotFoundError
from herdsman.core.lifecycle import LIVE_WORKFLOW_RUN_STATUSES
from herdsman.core.schemas import control as schemas
from herdsman.core.statuses import (
    TASK_BY_OWNER,
    TaskStatus,
    Transition,
    WorkflowRunStatus,
    WorkflowStatus,
    decide,
)
from herdsman.server.database import models
from herdsman.server.database.bulk import chunked
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain.owner_actions import latest_run, require_owner
from herdsman.server.domain.runs import count_unfinished, workflow_for_update

__all__ = ["reset_workflow", "update_tasks"]

logger = structlog.get_logger(__name__)

_CHUNK = 1000


def reset_workflow(
    session: Session, workflow_id: int, request: schemas.WorkflowResetIn, recorder: ChangeRecorder
) -> schemas.OwnerUpdateOut:
    """Set the tasks of a workflow whose last run failed back to registering, attempts unspent.

    A full reset runs every task again at the next resume; a partial one keeps done tasks.
    The workflow stays failed (F) until that resume: its last run did fail, and a failed
    workflow whose tasks the owner then marks done can still become done.
    """
    workflow = workflow_for_update(session, workflow_id)
    run = _require_owner_and_idle(session, workflow, request.user)
    if run is None or run.status != WorkflowRunStatus.ERROR.value:
        ended = "never ran" if run is None else f"last run {run.id} is {run.status}"
        raise ConflictError(
            f"workflow {workflow_id} can only be reset after a failed run (E); it {ended}",
            details={"workflow_id": workflow_id, "status": workflow.status},
        )
    task = models.Task
    query = select(task.id, task.status, task.num_attempts).where(task.workflow_id == workflow_id)
    if request.partial:
        query = query.where(task.status != TaskStatus.DONE.value)
    rows = session.execute(query).tuples().all()
    changed = _set_tasks(session, workflow_id, rows, TaskStatus.REGISTERING, recorder)
    logger.info(
        "workflow_reset",
        workflow_id=workflow_id,
        partial=request.partial,
        tasks_changed=len(changed),
        user=request.user,
    )
    return schemas.OwnerUpdateOut(
        workflow_id=workflow_id, workflow_status=workflow.status, changed_task_ids=changed
    )


def update_tasks(
    session: Session, workflow_id: int, request: schemas.TaskUpdateIn, recorder: ChangeRecorder
) -> schemas.OwnerUpdateOut:
    """Set tasks to done or back to registering (see the module docstring for the rules).

    When the update leaves every task of a failed or halted workflow done, the workflow is
    done too.
    """
    workflow = workflow_for_update(session, workflow_id)
    _require_owner_and_idle(session, workflow, request.user)
    if workflow.status == WorkflowStatus.DONE.value:
        raise ConflictError(
            f"workflow {workflow_id} is done and its record is final; to run tasks again, "
            "create the workflow with new workflow_args",
            details={"workflow_id": workflow_id, "status": workflow.status},
        )
    task = models.Task
    named = set(request.task_ids)
    found = set(
        session.scalars(
            select(task.id).where(task.workflow_id == workflow_id, task.id.in_(named))
        ).all()
    )
    if found != named:
        missing = ", ".join(str(i) for i in sorted(named - found))
        raise NotFoundError(
            f"workflow {workflow_id} has no task {missing}",
            details={"workflow_id": workflow_id, "value": sorted(named - found)},
        )
    target = TaskStatus(request.status)
    if target is TaskStatus.REGISTERING:
        ids = _closure(session, workflow, found, downstream=True)
    elif request.recursive:
        ids = _closure(session, workflow, found, downstream=False)
    else:
        ids = found
    rows: list[tuple[int, str, int]] = []
    for part in chunked(sorted(ids), _CHUNK):
        rows.extend(
            session.execute(
                select(task.id, task.status, task.num_attempts).where(task.id.in_(part))
            ).tuples()
        )
    changed = _set_tasks(session, workflow_id, rows, target, recorder)
    finished = target is TaskStatus.DONE and count_unfinished(session, workflow_id) == 0
    if (
        finished
        and decide(WorkflowStatus(workflow.status), WorkflowStatus.DONE) is Transition.VALID
    ):
        workflow.status = WorkflowStatus.DONE.value
        workflow.status_date = models.utcnow()
    logger.info(
        "tasks_updated_by_owner",
        workflow_id=workflow_id,
        status=target.value,
        requested=len(found),
        tasks_changed=len(changed),
        user=request.user,
    )
    return schemas.OwnerUpdateOut(
        workflow_id=workflow_id, workflow_status=workflow.status, changed_task_ids=changed
    )


def _set_tasks(
    session: Session,
    workflow_id: int,
    rows: Iterable[tuple[int, str, int]],
    target: TaskStatus,
    recorder: ChangeRecorder,
) -> list[int]:
    """Move each task to ``target`` as the owner table allows; the ids that changed.

    A reset also gives back the task's attempts, so it gets its full ``max_attempts`` again; a
    task already registering with attempts spent counts as changed for that reason.
    """
    moved: list[int] = []
    refreshed: list[int] = []
    # By id, so the change feed lists the changes in the same order on every engine.
    for task_id, status, attempts in sorted(rows):
        decision = TASK_BY_OWNER.decide(TaskStatus(status), target)
        if decision is Transition.VALID:
            moved.append(task_id)
        elif target is TaskStatus.REGISTERING and attempts:
            refreshed.append(task_id)
        elif decision is Transition.REFUSED:  # pragma: no cover - the owner table allows all
            raise ConflictError(f"task {task_id} cannot go from {status} to {target.value}")
    values: dict[str, object] = {"status": target.value, "status_date": models.utcnow()}
    if target is TaskStatus.REGISTERING:
        values["num_attempts"] = 0
    for part in chunked([*moved, *refreshed], _CHUNK):
        session.execute(update(models.Task).where(models.Task.id.in_(part)).values(**values))
    for task_id in moved:
        recorder.task(workflow_id, task_id, target.value)
    return sorted([*moved, *refreshed])


def _closure(
    session: Session, workflow: models.Workflow, start: set[int], *, downstream: bool
) -> set[int]:
    """``start`` and every task reachable from it along the DAG's edges, one way."""
    task, edge = models.Task, models.Edge
    node_of = dict(
        session.execute(select(task.id, task.node_id).where(task.id.in_(start))).tuples().all()
    )
    seen_tasks = set(start)
    frontier = set(node_of.values())
    seen_nodes = set(frontier)
    near, far = (
        (edge.upstream_node_id, edge.downstream_node_id)
        if downstream
        else (edge.downstream_node_id, edge.upstream_node_id)
    )
    while frontier:
        reached: set[int] = set()
        for part in chunked(sorted(frontier), _CHUNK):
            reached.update(
                session.scalars(
                    select(far).where(edge.dag_id == workflow.dag_id, near.in_(part))
                ).all()
            )
        frontier = reached - seen_nodes
        seen_nodes |= frontier
        for part in chunked(sorted(frontier), _CHUNK):
            seen_tasks.update(
                session.scalars(
                    select(task.id).where(task.workflow_id == workflow.id, task.node_id.in_(part))
                ).all()
            )
    return seen_tasks


def _require_owner_and_idle(
    session: Session, workflow: models.Workflow, user: str
) -> models.WorkflowRun | None:
    """Refuse anyone but the owner, and any workflow a run still holds; the latest run."""
    run = latest_run(session, workflow.id)
    require_owner(workflow, run, user)
    if run is not None and WorkflowRunStatus(run.status) in LIVE_WORKFLOW_RUN_STATUSES:
        raise ConflictError(
            f"workflow {workflow.id} is running (run {run.id} is {run.status}); stop it first "
            "with `herdsman workflow stop`",
            details={"workflow_id": workflow.id, "status": workflow.status},
        )
    return run
