"""Routes the swarm calls to adjust resources: store new requests, read stored ones."""

from __future__ import annotations

from fastapi import APIRouter

from herdsman.core.schemas import swarm as schemas
from herdsman.server.api.deps import DatabaseDep
from herdsman.server.domain import resources as task_resources

__all__ = ["router"]

router = APIRouter(tags=["task resources"])


@router.post("/workflows/{workflow_id}/adjusted_resources")
def post_adjusted_resources(
    workflow_id: int, request: schemas.AdjustedResourcesIn, db: DatabaseDep
) -> schemas.AdjustedResourcesOut:
    """Store new requests for tasks of the workflow; queue the tasks with the ids returned.

    Not idempotent by content, on purpose: every try is kept. A retried request leaves rows
    no task points at, which change nothing.
    """
    return db.write(lambda s: task_resources.create_adjusted_resources(s, workflow_id, request))


@router.post("/task_resources/query")
def post_task_resources_query(
    request: schemas.TaskResourcesQueryIn, db: DatabaseDep
) -> schemas.TaskResourcesOut:
    """Stored requests by id, and tasks' current ones by task id (a read; POST for long lists)."""
    return db.read(lambda s: task_resources.read_resources(s, request))
