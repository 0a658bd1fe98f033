"""Changing a workflow's concurrency limits while it runs.

The limits live on the workflow and array rows; the running swarm reads them from every
heartbeat reply (see :func:`herdsman.server.runs.run_heartbeat`), so a change here reaches it
within one heartbeat interval, and nothing else needs telling. A later re-bind of the same
workflow keeps the value set here unless the client sends a new one (see
:func:`herdsman.server.bind.bind_arrays`).
"""

from __future__ import annotations

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from herdsman.core.errors import NotFoundError
from herdsman.core.schemas import swarm as schemas
from herdsman.server import models
from herdsman.server.runs import concurrency

__all__ = ["set_template_limit", "set_workflow_limit"]

logger = structlog.get_logger(__name__)


def set_workflow_limit(session: Session, workflow_id: int, limit: int) -> schemas.ConcurrencyOut:
    """At most ``limit`` of the workflow's tasks active at once; answers the limits in force."""
    _require_workflow(session, workflow_id)
    session.execute(
        update(models.Workflow)
        .where(models.Workflow.id == workflow_id)
        .values(max_concurrently_running=limit)
    )
    logger.info("workflow_limit_set", workflow_id=workflow_id, max_concurrently_running=limit)
    return concurrency(session, workflow_id)


def set_template_limit(
    session: Session, workflow_id: int, template_name: str, limit: int
) -> schemas.ConcurrencyOut:
    """At most ``limit`` active tasks in each of the workflow's arrays of this template.

    A workflow has one array per template version it uses, so a template bound in two versions
    has two arrays; both get the limit. Raises NotFoundError naming the workflow's templates
    when it has none called ``template_name``.
    """
    _require_workflow(session, workflow_id)
    array_ids = session.scalars(
        select(models.Array.id)
        .join(
            models.TaskTemplateVersion,
            models.TaskTemplateVersion.id == models.Array.task_template_version_id,
        )
        .join(
            models.TaskTemplate,
            models.TaskTemplate.id == models.TaskTemplateVersion.task_template_id,
        )
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
    session.execute(
        update(models.Array)
        .where(models.Array.id.in_(array_ids))
        .values(max_concurrently_running=limit)
    )
    logger.info(
        "template_limit_set",
        workflow_id=workflow_id,
        task_template_name=template_name,
        array_ids=list(array_ids),
        max_concurrently_running=limit,
    )
    return concurrency(session, workflow_id)


def _template_names(session: Session, workflow_id: int) -> list[str]:
    names = session.scalars(
        select(models.TaskTemplate.name)
        .join(
            models.TaskTemplateVersion,
            models.TaskTemplateVersion.task_template_id == models.TaskTemplate.id,
        )
        .join(models.Array, models.Array.task_template_version_id == models.TaskTemplateVersion.id)
        .where(models.Array.workflow_id == workflow_id)
        .distinct()
    ).all()
    return sorted(names)


def _require_workflow(session: Session, workflow_id: int) -> None:
    found = session.scalar(select(models.Workflow.id).where(models.Workflow.id == workflow_id))
    if found is None:
        raise NotFoundError(
            f"workflow {workflow_id} does not exist", details={"value": workflow_id}
        )
