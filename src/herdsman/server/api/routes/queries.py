"""Read-only routes for the CLI and the web GUI: workflows, tasks, edges, attempts, errors,
log paths and resource usage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from herdsman.core.errors import InvalidInputError
from herdsman.core.schemas import queries as schemas
from herdsman.core.schemas.types import INT64_MAX, Id
from herdsman.server.api.access import CallerDep
from herdsman.server.api.deps import DatabaseDep
from herdsman.server.api.responses import METERED_ERRORS, errors
from herdsman.server.queries import (
    diagnostics,
    history,
    resumes,
    tasks,
    timeline,
    usage,
    workflows,
)

__all__ = ["router"]

router = APIRouter(tags=["gui"], responses=METERED_ERRORS)

Offset = Annotated[int, Query(ge=0, le=INT64_MAX)]
Limit = Annotated[int, Query(ge=1, le=10_000)]


@router.get("/workflows/{workflow_id}/clusters", responses=errors(404))
def get_workflow_clusters(workflow_id: Id, db: DatabaseDep) -> schemas.WorkflowClustersOut:
    return db.read(lambda s: workflows.workflow_clusters(s, workflow_id))


@router.get("/workflows/{workflow_id}/killed_for_resources", responses=errors(404))
def get_killed_for_resources(workflow_id: Id, db: DatabaseDep) -> schemas.KilledForResourcesOut:
    """The workflow's fatal and adjusting tasks whose last attempt was killed for resources,
    in one answer: a resume scales their requests before it queues them."""
    return db.read(lambda s: resumes.killed_for_resources(s, workflow_id))


@router.get("/workflows/{workflow_id}", responses=errors(404))
def get_workflow(workflow_id: Id, db: DatabaseDep) -> schemas.WorkflowDetailOut:
    return db.read(lambda s: workflows.workflow_detail(s, workflow_id))


@router.get("/workflows/{workflow_id}/tasks", responses=errors(404))
def get_workflow_tasks(
    workflow_id: Id,
    db: DatabaseDep,
    offset: Offset = 0,
    limit: Limit = 1000,
    status: Annotated[list[str] | None, Query()] = None,
) -> schemas.TasksPageOut:
    """A page of the workflow's tasks by id, of the given statuses (letters) if any."""
    statuses = status or []
    return db.read(lambda s: workflows.workflow_tasks(s, workflow_id, offset, limit, statuses))


@router.get("/workflows/{workflow_id}/edges", responses=errors(404))
def get_workflow_edges(
    workflow_id: Id, db: DatabaseDep, offset: Offset = 0, limit: Limit = 1000
) -> schemas.EdgesOut:
    return db.read(lambda s: workflows.workflow_edges(s, workflow_id, offset, limit))


@router.get("/tasks/{task_id}", responses=errors(404))
def get_task(task_id: Id, db: DatabaseDep) -> schemas.TaskDetailOut:
    return db.read(lambda s: tasks.task_detail(s, task_id))


@router.get("/workflows/{workflow_id}/errors", responses=errors(404))
def get_workflow_errors(
    workflow_id: Id, db: DatabaseDep, limit: Limit = 1000
) -> schemas.WorkflowErrorsOut:
    return db.read(lambda s: diagnostics.workflow_errors(s, workflow_id, limit))


@router.get("/workflows/{workflow_id}/error_groups", responses=errors(404))
def get_error_groups(
    workflow_id: Id,
    db: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    tail_lines: Annotated[int, Query(ge=0, le=10_000)] = 20,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> schemas.ErrorGroupsOut:
    """The workflow's errors grouped by signature and exit class, largest group first, each
    with counts, first and last time seen, and its newest error with the last ``tail_lines``
    lines of that attempt's output (0 for all the worker kept); ``offset`` skips the first
    groups, for paging."""
    return db.read(
        lambda s: diagnostics.error_groups(s, workflow_id, limit, tail_lines, offset=offset)
    )


@router.get("/workflows/{workflow_id}/timeline", responses=errors(404))
def get_workflow_timeline(
    workflow_id: Id,
    db: DatabaseDep,
    buckets: Annotated[int, Query(ge=1, le=timeline.MAX_BUCKETS)] = 120,
) -> schemas.TimelineOut:
    """The workflow's tasks by status over time, in up to ``buckets`` equal buckets, and its
    running tasks beside its concurrency limit (what the workflow page draws)."""
    return db.read(lambda s: timeline.workflow_timeline(s, workflow_id, buckets))


@router.get("/workflows/{workflow_id}/usage_totals", responses=errors(404))
def get_usage_totals(workflow_id: Id, db: DatabaseDep) -> schemas.UsageTotalsOut:
    """Core-hours and memory GiB-hours the workflow's attempts asked for and used."""
    return db.read(lambda s: usage.usage_totals(s, workflow_id))


@router.get("/workflow_summaries")
def get_workflow_summaries(
    request: Request,
    db: DatabaseDep,
    caller: CallerDep,
    workflow_id: Annotated[list[Id] | None, Query()] = None,
    user: str | None = None,
    limit: Limit = 20,
) -> schemas.WorkflowSummariesOut:
    """The newest workflows (of ``user``, or the ids given) with their tasks counted.

    Where only owners may read, a user sees their own workflows whatever ``user`` says.
    """
    if request.app.state.owners_only_read and not caller.is_admin:
        user = caller.user
    ids = workflow_id or []
    return db.read(lambda s: workflows.workflow_summaries(s, ids, user, limit))


@router.get("/tasks/{task_id}/attempts", responses=errors(404))
def get_task_attempts(
    task_id: Id,
    db: DatabaseDep,
    tail_lines: Annotated[int, Query(ge=0, le=10_000)] = 0,
) -> schemas.TaskAttemptsOut:
    """Every attempt with its usage, request, last error and output tails: the last
    ``tail_lines`` lines of each, or all the worker kept (up to 10,000 characters) for 0."""
    return db.read(lambda s: tasks.task_attempts(s, task_id, tail_lines))


@router.get("/tasks/{task_id}/dependencies", responses=errors(404))
def get_task_dependencies(task_id: Id, db: DatabaseDep) -> schemas.DependenciesOut:
    return db.read(lambda s: tasks.task_dependencies(s, task_id))


@router.get("/workflows/{workflow_id}/log_paths", responses=errors(404))
def get_log_paths(
    workflow_id: Id, db: DatabaseDep, task_template: str | None = None, limit: Limit = 1000
) -> schemas.LogPathsOut:
    return db.read(lambda s: diagnostics.log_paths(s, workflow_id, task_template, limit))


@router.get("/workflows/{workflow_id}/error_messages", responses=errors(404))
def get_error_messages(
    workflow_id: Id, db: DatabaseDep, limit: Limit = 10_000
) -> schemas.ErrorMessagesOut:
    return db.read(lambda s: diagnostics.error_messages(s, workflow_id, limit))


@router.get("/resource_usage", responses=errors(404))
def get_resource_usage(
    db: DatabaseDep,
    task_template: str | None = None,
    workflow_id: Annotated[list[Id] | None, Query()] = None,
    tool: Annotated[str | None, Query(max_length=255)] = None,
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


@router.get("/workflows/{workflow_id}/history", responses=errors(404))
def get_workflow_history(
    workflow_id: Id, db: DatabaseDep, limit: Limit = 1000
) -> schemas.HistoryOut:
    """Who changed the workflow, when, how, and the answer (refused attempts included)."""
    return db.read(lambda s: history.workflow_history(s, workflow_id, limit))
