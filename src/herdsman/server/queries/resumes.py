"""Reads a resume from the database makes before it starts: which tasks get a scaled request.

A resume by workflow id (``herdsman workflow resume``) scales the request of every unfinished
task whose last attempt was killed for resources. A workflow that ran out of memory at scale
has thousands of them, so they are found in one statement (each task's newest attempt by the
(task, id) index), not by reading each task's attempts in a request of its own.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from herdsman.core import lifecycle
from herdsman.core.schemas import queries as schemas
from herdsman.core.statuses import TaskInstanceStatus, TaskStatus
from herdsman.server.database import models
from herdsman.server.queries.lookups import require_workflow

__all__ = ["killed_for_resources"]

_RESCALABLE = sorted(status.value for status in lifecycle.RESCALABLE_TASK_STATUSES)


def killed_for_resources(session: Session, workflow_id: int) -> schemas.KilledForResourcesOut:
    """The workflow's tasks (not those a resume removed) that a resume scales, by task id."""
    require_workflow(session, workflow_id)
    task, instance = models.Task, models.TaskInstance
    newest = (
        select(instance.task_id, func.max(instance.id).label("last_id"))
        .join(task, task.id == instance.task_id)
        .where(
            task.workflow_id == workflow_id,
            task.status.in_(_RESCALABLE),
            task.removed_date.is_(None),
        )
        .group_by(instance.task_id)
        .subquery()
    )
    rows = session.execute(
        select(
            task.id,
            task.name,
            task.status,
            task.task_resources_id,
            instance.id,
            instance.status,
            instance.requested_memory,
            instance.requested_runtime,
            instance.requested_cores,
        )
        .select_from(newest)
        .join(task, task.id == newest.c.task_id)
        .join(instance, instance.id == newest.c.last_id)
        .order_by(task.id)
    ).all()
    return schemas.KilledForResourcesOut(
        workflow_id=workflow_id,
        tasks=[
            schemas.KilledTaskOut(
                task_id=task_id,
                name=name,
                status=status,
                task_resources_id=resources_id,
                task_instance_id=instance_id,
                requested_memory=memory,
                requested_runtime=runtime,
                requested_cores=cores,
            )
            for (
                task_id,
                name,
                status,
                resources_id,
                instance_id,
                last,
                memory,
                runtime,
                cores,
            ) in rows
            if lifecycle.scaled_on_resume(TaskStatus(status), TaskInstanceStatus(last))
        ],
    )
