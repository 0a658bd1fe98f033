"""Routes that change a workflow while it runs: its concurrency limits."""

from __future__ import annotations

from fastapi import APIRouter

from herdsman.core.schemas import control as schemas
from herdsman.core.schemas.swarm import ConcurrencyOut
from herdsman.server import control
from herdsman.server.deps import DatabaseDep

__all__ = ["router"]

router = APIRouter(tags=["control"])


@router.put("/workflows/{workflow_id}/max_concurrently_running")
def put_workflow_limit(
    workflow_id: int, request: schemas.ConcurrencyLimitIn, db: DatabaseDep
) -> ConcurrencyOut:
    """Set the workflow's limit; 0 pauses launching. Answers the limits now in force."""
    limit = request.max_concurrently_running
    return db.write(lambda s: control.set_workflow_limit(s, workflow_id, limit))


# ":path" so a template name may contain "/" (sent percent-encoded, decoded before routing).
@router.put("/workflows/{workflow_id}/task_templates/{template_name:path}/max_concurrently_running")
def put_template_limit(
    workflow_id: int, template_name: str, request: schemas.ConcurrencyLimitIn, db: DatabaseDep
) -> ConcurrencyOut:
    """Set the limit of the workflow's array(s) of this task template."""
    limit = request.max_concurrently_running
    return db.write(lambda s: control.set_template_limit(s, workflow_id, template_name, limit))
