"""Read-only routes for the CLI and the web GUI: workflows, their tasks, edges and resources."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from herdsman.core.schemas import gui as schemas
from herdsman.server import queries
from herdsman.server.deps import DatabaseDep

__all__ = ["router"]

router = APIRouter(tags=["gui"])

Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/workflows/{workflow_id}/clusters")
def get_workflow_clusters(workflow_id: int, db: DatabaseDep) -> schemas.WorkflowClustersOut:
    return db.read(lambda s: queries.workflow_clusters(s, workflow_id))


@router.get("/workflows/{workflow_id}")
def get_workflow(workflow_id: int, db: DatabaseDep) -> schemas.WorkflowDetailOut:
    return db.read(lambda s: queries.workflow_detail(s, workflow_id))


@router.get("/workflows/{workflow_id}/tasks")
def get_workflow_tasks(
    workflow_id: int, db: DatabaseDep, offset: Offset = 0, limit: Limit = 1000
) -> schemas.TasksPageOut:
    return db.read(lambda s: queries.workflow_tasks(s, workflow_id, offset, limit))


@router.get("/workflows/{workflow_id}/edges")
def get_workflow_edges(
    workflow_id: int, db: DatabaseDep, offset: Offset = 0, limit: Limit = 1000
) -> schemas.EdgesOut:
    return db.read(lambda s: queries.workflow_edges(s, workflow_id, offset, limit))


@router.get("/tasks/{task_id}")
def get_task(task_id: int, db: DatabaseDep) -> schemas.TaskDetailOut:
    return db.read(lambda s: queries.task_detail(s, task_id))


@router.get("/workflows/{workflow_id}/errors")
def get_workflow_errors(
    workflow_id: int, db: DatabaseDep, limit: Limit = 1000
) -> schemas.WorkflowErrorsOut:
    return db.read(lambda s: queries.workflow_errors(s, workflow_id, limit))
