"""Look-ups every read shares: a workflow or task by id (404 when missing), the joins to
task template names, and a page of rows with their total."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TypeVarTuple

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from herdsman.core.errors import NotFoundError
from herdsman.server.database import models

_Columns = TypeVarTuple("_Columns")

__all__ = [
    "array_of_template",
    "count_and_first",
    "iso",
    "require_task",
    "require_workflow",
    "with_task_template_names",
    "with_template_names",
]


def require_workflow(session: Session, workflow_id: int) -> models.Workflow:
    """The workflow; NotFoundError (404) if there is none with this id."""
    workflow = session.get(models.Workflow, workflow_id)
    if workflow is None:
        raise NotFoundError(
            f"workflow {workflow_id} does not exist", details={"value": workflow_id}
        )
    return workflow


def require_task(session: Session, task_id: int) -> models.Task:
    """The task; NotFoundError (404) if there is none with this id."""
    task = session.get(models.Task, task_id)
    if task is None:
        raise NotFoundError(f"task {task_id} does not exist", details={"value": task_id})
    return task


def array_of_template(session: Session, workflow_id: int, template: str) -> int:
    """The workflow's array of the named task template (-1, which matches nothing, if the
    workflow has no such template)."""
    found = session.scalar(
        with_template_names(select(models.Array.id).select_from(models.Array)).where(
            models.Array.workflow_id == workflow_id, models.TaskTemplate.name == template
        )
    )
    return -1 if found is None else found


def with_template_names(query: Select[*_Columns]) -> Select[*_Columns]:
    """``query``, which selects from arrays, joined to their task templates (for their names)."""
    return query.join(
        models.TaskTemplateVersion,
        models.TaskTemplateVersion.id == models.Array.task_template_version_id,
    ).join(
        models.TaskTemplate,
        models.TaskTemplate.id == models.TaskTemplateVersion.task_template_id,
    )


def with_task_template_names(query: Select[*_Columns]) -> Select[*_Columns]:
    """``query`` (which selects from tasks) joined through arrays to their templates' names."""
    return with_template_names(query.join(models.Array, models.Array.id == models.Task.array_id))


def count_and_first(
    session: Session, ordered: Select[*_Columns], limit: int
) -> tuple[int, Sequence[tuple[*_Columns]]]:
    """How many rows ``ordered`` matches, and the first ``limit`` of them: a page and its total."""
    count = session.scalar(select(func.count()).select_from(ordered.order_by(None).subquery()))
    return count or 0, session.execute(ordered.limit(limit)).tuples().all()


def iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
