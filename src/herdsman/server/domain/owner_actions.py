"""Changing a running workflow from outside its swarm: its concurrency limits, or stopping it.

The limits live on the workflow and array rows; the running swarm reads them from every
heartbeat reply (see :func:`herdsman.server.domain.runs.run_heartbeat`), so a change here reaches it
within one heartbeat interval, and nothing else needs telling. A later re-bind of the same
workflow keeps the value set here unless the client sends a new one (see
:func:`herdsman.server.domain.binding.bind_arrays`).
"""

from __future__ import annotations

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from herdsman.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from herdsman.core.lifecycle import LIVE_WORKFLOW_RUN_STATUSES
from herdsman.core.schemas import swarm as schemas
from herdsman.core.statuses import WorkflowRunStatus
from herdsman.server.database import models
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain.runs import concurrency, set_run_status
from herdsman.server.queries.lookups import require_workflow, with_template_names

__all__ = [
    "latest_run",
    "require_owner",
    "set_template_limit",
    "set_workflow_limit",
    "stop_workflow",
]

logger = structlog.get_logger(__name__)


def set_workflow_limit(session: Session, workflow_id: int, limit: int) -> schemas.ConcurrencyOut:
    """At most ``limit`` of the workflow's tasks active at once; answers the limits in force."""
    require_workflow(session, workflow_id)
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
        with_template_names(select(models.TaskTemplate.name).select_from(models.Array))
        .where(models.Array.workflow_id == workflow_id)
        .distinct()
    ).all()
    return sorted(names)


def stop_workflow(
    session: Session, workflow_id: int, user: str, recorder: ChangeRecorder
) -> schemas.RunStatusOut:
    """Stop the run that holds the workflow (-> S) and have its jobs killed.

    The swarm sees the stopped status in its next heartbeat reply and ends; the distributor
    kills the jobs. Stopping a stopped run again answers with its status, so a retried request
    is harmless. A workflow no run holds is refused: there is nothing to stop. Only the owner
    may stop it: a stop kills the owner's jobs.
    """
    workflow = require_workflow(session, workflow_id)
    run = latest_run(session, workflow_id)
    require_owner(workflow, run, user)
    if run is None:
        raise ConflictError(
            f"workflow {workflow_id} has never run; there is nothing to stop",
            details={"workflow_id": workflow_id},
        )
    status = WorkflowRunStatus(run.status)
    if status is not WorkflowRunStatus.STOPPED and status not in LIVE_WORKFLOW_RUN_STATUSES:
        raise ConflictError(
            f"workflow {workflow_id} is not running: its last run {run.id} ended as "
            f"{status.name.lower()} ({status.value})",
            details={"workflow_id": workflow_id, "status": status.value},
        )
    logger.info(
        "workflow_stop_requested", workflow_id=workflow_id, workflow_run_id=run.id, user=user
    )
    return set_run_status(
        session,
        run.id,
        schemas.RunStatusIn(status=WorkflowRunStatus.STOPPED.value, message=f"stopped by {user}"),
        recorder,
    )


def require_owner(workflow: models.Workflow, run: models.WorkflowRun | None, user: str) -> None:
    """Refuse (403) anyone but the workflow's owners: its binder and its latest run's user."""
    owners = sorted({workflow.user, *([run.user] if run is not None else [])})
    if user not in owners:
        raise PermissionDeniedError(
            f"only the owner of workflow {workflow.id} ({', '.join(owners)}) may change it; "
            f"you are {user}",
            details={"workflow_id": workflow.id, "user": user},
        )


def latest_run(session: Session, workflow_id: int) -> models.WorkflowRun | None:
    """The workflow's newest run, the one that speaks for it; None if it never ran."""
    return session.scalars(
        select(models.WorkflowRun)
        .where(models.WorkflowRun.workflow_id == workflow_id)
        .order_by(models.WorkflowRun.id.desc())
        .limit(1)
    ).first()
