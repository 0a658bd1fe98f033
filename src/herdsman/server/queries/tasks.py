"""Reads of one task: its detail, its attempts and its upstream and downstream tasks."""

from __future__ import annotations

import json
from typing import TypeVarTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from herdsman.core.errors import NotFoundError
from herdsman.core.schemas import queries as schemas
from herdsman.server.database import models
from herdsman.server.queries.diagnostics import last_lines
from herdsman.server.queries.lookups import (
    iso,
    require_task,
)

_Columns = TypeVarTuple("_Columns")

__all__ = ["neighbours", "task_attempts", "task_dependencies", "task_detail", "task_out"]


def task_detail(session: Session, task_id: int) -> schemas.TaskDetailOut:
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
    upstream, downstream = neighbours(session, task)
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
