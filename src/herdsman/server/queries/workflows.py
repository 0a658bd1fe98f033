"""Read-only queries behind the CLI and GUI routes. Each takes a Session and never writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from herdsman.core.errors import NotFoundError
from herdsman.core.schemas import queries as schemas
from herdsman.server.database import models

_Columns = TypeVarTuple("_Columns")

__all__ = [
    "neighbours",
    "require_workflow",
    "task_detail",
    "with_template_names",
    "workflow_detail",
    "workflow_edges",
    "workflow_errors",
    "workflow_tasks",
]


def require_workflow(session: Session, workflow_id: int) -> models.Workflow:
    """The workflow; NotFoundError (404) if there is none with this id."""
    workflow = session.get(models.Workflow, workflow_id)
    if workflow is None:
        raise NotFoundError(
            f"workflow {workflow_id} does not exist", details={"value": workflow_id}
        )
    return workflow


def with_template_names(query: Select[*_Columns]) -> Select[*_Columns]:
    """``query``, which selects from arrays, joined to their task templates (for their names)."""
    return query.join(
        models.TaskTemplateVersion,
        models.TaskTemplateVersion.id == models.Array.task_template_version_id,
    ).join(
        models.TaskTemplate,
        models.TaskTemplate.id == models.TaskTemplateVersion.task_template_id,
    )


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
    return schemas.TasksPageOut(count=count or 0, tasks=[_task_out(row) for row in rows])


def _task_out(row: models.Task) -> schemas.TaskOut:
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


def task_detail(session: Session, task_id: int) -> schemas.TaskDetailOut:
    task = session.get(models.Task, task_id)
    if task is None:
        raise NotFoundError(f"task {task_id} does not exist")
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
    upstream, downstream = neighbours(session, task)
    base = _task_out(task)
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


def neighbours(session: Session, task: models.Task) -> tuple[list[int], list[int]]:
    """The ids of the task's direct upstream and downstream tasks in its workflow."""
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
    ).all()
    downstream = session.scalars(
        select(other.id)
        .join(edge, edge.downstream_node_id == other.node_id)
        .where(edge.dag_id == dag_id, edge.upstream_node_id == task.node_id)
        .where(other.workflow_id == task.workflow_id)
        .order_by(other.id)
    ).all()
    return list(upstream), list(downstream)


def _resources(session: Session, resources_id: int) -> schemas.ResourcesOut:
    row = session.get(models.TaskResources, resources_id)
    if row is None:  # pragma: no cover - a foreign key guarantees it
        raise NotFoundError(f"task resources {resources_id} do not exist")
    return schemas.ResourcesOut(
        id=row.id, kind=row.kind, queue_id=row.queue_id, requested=json.loads(row.requested)
    )


ERRORS_PER_TASK = 3


def workflow_errors(session: Session, workflow_id: int, limit: int) -> schemas.WorkflowErrorsOut:
    """Fatal tasks with their last errors and output tails, for a report after a failed run."""
    require_workflow(session, workflow_id)
    task = models.Task
    where = (task.workflow_id == workflow_id, task.status == "F")
    count = session.scalar(select(func.count()).select_from(task).where(*where))
    failed = session.scalars(select(task).where(*where).order_by(task.id).limit(limit)).all()
    return schemas.WorkflowErrorsOut(
        workflow_id=workflow_id,
        count=count or 0,
        tasks=[_failed_task(session, row) for row in failed],
    )


def _failed_task(session: Session, task: models.Task) -> schemas.FailedTaskOut:
    instance, log = models.TaskInstance, models.TaskInstanceErrorLog
    errors = session.execute(
        select(log.task_instance_id, log.error_time, log.description, instance.exit_code)
        .join(instance, instance.id == log.task_instance_id)
        .where(instance.task_id == task.id)
        .order_by(log.id.desc())
        .limit(ERRORS_PER_TASK)
    ).all()
    last = session.scalars(
        select(instance).where(instance.task_id == task.id).order_by(instance.id.desc()).limit(1)
    ).first()
    return schemas.FailedTaskOut(
        task_id=task.id,
        name=task.name,
        num_attempts=task.num_attempts,
        errors=[
            schemas.ErrorOut(
                task_instance_id=instance_id,
                error_time=when.isoformat(),
                description=description,
                exit_code=exit_code,
            )
            for instance_id, when, description, exit_code in errors
        ],
        stdout_tail=(last.stdout_tail or "") if last else "",
        stderr_tail=(last.stderr_tail or "") if last else "",
    )
