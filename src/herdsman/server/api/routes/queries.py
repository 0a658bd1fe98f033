"""Read-only routes for the CLI and the web GUI: workflows, tasks, edges, attempts, errors,
log paths and resource usage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from herdsman.core.errors import InvalidInputError
from herdsman.core.schemas import queries as schemas
from herdsman.server.api.deps import DatabaseDep
from herdsman.server.queries import diagnostics, tasks, usage, workflows

__all__ = ["router"]

router = APIRouter(tags=["gui"])

Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/workflows/{workflow_id}/clusters")
def get_workflow_clusters(workflow_id: int, db: DatabaseDep) -> schemas.WorkflowClustersOut:
    return db.read(lambda s: workflows.workflow_clusters(s, workflow_id))


@router.get("/workflows/{workflow_id}")
def get_workflow(workflow_id: int, db: DatabaseDep) -> schemas.WorkflowDetailOut:
    return db.read(lambda s: workflows.workflow_detail(s, workflow_id))


@router.get("/workflows/{workflow_id}/tasks")
def get_workflow_tasks(
    workflow_id: int,
    db: DatabaseDep,
    offset: Offset = 0,
    limit: Limit = 1000,
    status: Annotated[list[str] | None, Query()] = None,
) -> schemas.TasksPageOut:
    """A page of the workflow's tasks by id, of the given statuses (letters) if any."""
    statuses = status or []
    return db.read(lambda s: workflows.workflow_tasks(s, workflow_id, offset, limit, statuses))


@router.get("/workflows/{workflow_id}/edges")
def get_workflow_edges(
    workflow_id: int, db: DatabaseDep, offset: Offset = 0, limit: Limit = 1000
) -> schemas.EdgesOut:
    return db.read(lambda s: workflows.workflow_edges(s, workflow_id, offset, limit))


@router.get("/tasks/{task_id}")
def get_task(task_id: int, db: DatabaseDep) -> schemas.TaskDetailOut:
    return db.read(lambda s: tasks.task_detail(s, task_id))


@router.get("/workflows/{workflow_id}/errors")
def get_workflow_errors(
    workflow_id: int, db: DatabaseDep, limit: Limit = 1000
) -> schemas.WorkflowErrorsOut:
    return db.read(lambda s: diagnostics.workflow_errors(s, workflow_id, limit))


@router.get("/workflows/{workflow_id}/error_groups")
def get_error_groups(
    workflow_id: int,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    tail_lines: Annotated[int, Query(ge=0, le=10_000)] = 20,
) -> schemas.ErrorGroupsOut:
    """The workflow's errors grouped by signature and exit class, largest group first, each
    with counts, first and last time seen, and its newest error with the last ``tail_lines``
    lines of that attempt's output (0 for all the worker kept)."""
    return db.read(lambda s: diagnostics.error_groups(s, workflow_id, limit, tail_lines))


@router.get("/workflow_summaries")
def get_workflow_summaries(
    db: DatabaseDep,
    workflow_id: Annotated[list[int] | None, Query()] = None,
    user: str | None = None,
    limit: Limit = 20,
) -> schemas.WorkflowSummariesOut:
    """The newest workflows (of ``user``, or the ids given) with their tasks counted."""
    ids = workflow_id or []
    return db.read(lambda s: workflows.workflow_summaries(s, ids, user, limit))


@router.get("/tasks/{task_id}/attempts")
def get_task_attempts(
    task_id: int,
    db: DatabaseDep,
    tail_lines: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> schemas.TaskAttemptsOut:
    """Every attempt with its usage, request, last error and output tails: the last
    ``tail_lines`` lines of each, or all the worker kept (up to 10,000 characters) for 0."""
    return db.read(lambda s: tasks.task_attempts(s, task_id, tail_lines))


@router.get("/tasks/{task_id}/dependencies")
def get_task_dependencies(task_id: int, db: DatabaseDep) -> schemas.DependenciesOut:
    return db.read(lambda s: tasks.task_dependencies(s, task_id))


@router.get("/workflows/{workflow_id}/log_paths")
def get_log_paths(
    workflow_id: int, db: DatabaseDep, task_template: str | None = None, limit: Limit = 1000
) -> schemas.LogPathsOut:
    return db.read(lambda s: diagnostics.log_paths(s, workflow_id, task_template, limit))


@router.get("/workflows/{workflow_id}/error_messages")
def get_error_messages(
    workflow_id: int, db: DatabaseDep, limit: Limit = 10_000
) -> schemas.ErrorMessagesOut:
    return db.read(lambda s: diagnostics.error_messages(s, workflow_id, limit))


@router.get("/resource_usage")
def get_resource_usage(
    db: DatabaseDep,
    task_template: str | None = None,
    workflow_id: Annotated[list[int] | None, Query()] = None,
    tool: str | None = None,
    node_arg: Annotated[list[str] | None, Query()] = None,
) -> schemas.ResourceUsageOut:
    """Runtime and memory statistics of done attempts, by tool, task template and cluster;
    ``node_arg`` (``name=value``, repeatable) keeps the tasks whose node has those values."""
    ids = workflow_id or []
    filters = _node_args(node_arg or [])
    return db.read(
        lambda s: usage.resource_usage(s, task_template, ids, tool=tool, node_args=filters)
    )


def _node_args(pairs: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise InvalidInputError(f"node_arg {pair!r} is not name=value", details={"value": pair})
        found[name] = value
    return found
