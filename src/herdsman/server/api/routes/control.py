"""Routes that steer a workflow from outside its run: limits, stop, reset, task updates, and
attributes added after binding."""

from __future__ import annotations

from fastapi import APIRouter

from herdsman.core.schemas import control as schemas
from herdsman.core.schemas.client import AttributesIn, AttributesOut
from herdsman.core.schemas.swarm import ConcurrencyOut, RunStatusOut
from herdsman.core.schemas.types import Id
from herdsman.server.api import input_limits
from herdsman.server.api.access import CallerDep
from herdsman.server.api.deps import DatabaseDep, FeedWriterDep, LimitsDep
from herdsman.server.api.responses import METERED_ERRORS, errors
from herdsman.server.domain import attributes, owner_actions

__all__ = ["router"]

router = APIRouter(tags=["control"], responses=METERED_ERRORS)


@router.put("/workflows/{workflow_id}/max_concurrently_running", responses=errors(404))
def put_workflow_limit(
    workflow_id: Id, request: schemas.ConcurrencyLimitIn, write: FeedWriterDep, caller: CallerDep
) -> ConcurrencyOut:
    """Set the workflow's limit; 0 pauses launching. Answers the limits now in force."""
    limit = request.max_concurrently_running
    return write(
        lambda s, changes: owner_actions.set_workflow_limit(
            s, workflow_id, limit, caller.user, changes
        )
    )


# ":path" so a template name may contain "/" (sent percent-encoded, decoded before routing).
@router.put(
    "/workflows/{workflow_id}/task_templates/{template_name:path}/max_concurrently_running",
    responses=errors(404),
)
def put_template_limit(
    workflow_id: Id,
    template_name: str,
    request: schemas.ConcurrencyLimitIn,
    write: FeedWriterDep,
    caller: CallerDep,
) -> ConcurrencyOut:
    """Set the limit of the workflow's array(s) of this task template."""
    limit = request.max_concurrently_running
    return write(
        lambda s, changes: owner_actions.set_template_limit(
            s, workflow_id, template_name, limit, caller.user, changes
        )
    )


@router.post("/workflows/{workflow_id}/stop", responses=errors(404, 409))
def post_stop(workflow_id: Id, write: FeedWriterDep, caller: CallerDep) -> RunStatusOut:
    """Stop the run that holds the workflow; its jobs are killed. Answers the run's status."""
    return write(
        lambda s, changes: owner_actions.stop_workflow(s, workflow_id, caller.user, changes)
    )


@router.post("/workflows/{workflow_id}/reset", responses=errors(404, 409))
def post_reset(
    workflow_id: Id, request: schemas.WorkflowResetIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.OwnerUpdateOut:
    """The owner resets a workflow whose last run failed, so that it runs again on resume."""
    return write(
        lambda s, changes: owner_actions.reset_workflow(
            s, workflow_id, request, caller.user, changes
        )
    )


@router.post("/workflows/{workflow_id}/task_updates", responses=errors(404, 409))
def post_task_updates(
    workflow_id: Id, request: schemas.TaskUpdateIn, write: FeedWriterDep, caller: CallerDep
) -> schemas.OwnerUpdateOut:
    """The owner sets tasks done or back to registering (downstream tasks follow a reset)."""
    return write(
        lambda s, changes: owner_actions.update_tasks(s, workflow_id, request, caller.user, changes)
    )


@router.put("/workflows/{workflow_id}/attributes", responses=errors(404))
def put_workflow_attributes(
    workflow_id: Id, request: AttributesIn, db: DatabaseDep, limits: LimitsDep
) -> AttributesOut:
    """Add or update attributes of a bound workflow; answers all its attributes."""
    input_limits.check_workflow(limits, request)
    return AttributesOut(
        attributes=db.write(
            lambda s: attributes.set_workflow_attributes(s, workflow_id, request.attributes)
        )
    )


@router.put("/tasks/{task_id}/attributes", responses=errors(404))
def put_task_attributes(
    task_id: Id, request: AttributesIn, db: DatabaseDep, limits: LimitsDep
) -> AttributesOut:
    """Add or update attributes of a bound task; answers all its attributes."""
    input_limits.check_workflow(limits, request)
    return AttributesOut(
        attributes=db.write(
            lambda s: attributes.set_task_attributes(s, task_id, request.attributes)
        )
    )
