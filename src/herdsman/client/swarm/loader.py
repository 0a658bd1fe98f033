"""Filling a :class:`SwarmState` with a run's tasks and dependencies.

Two sources: the bound client objects, which already hold every id and status, so a fresh run
costs no reads; or the database, page by page, for a resume or a detached swarm. Either way
tasks are loaded before edges, because an edge from a DONE task is dropped on arrival (see
:meth:`SwarmState.add_edges`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import structlog

from herdsman.client.swarm.gateway import SwarmGateway
from herdsman.client.swarm.policies import StoredResourcePolicy
from herdsman.client.swarm.state import SwarmState, TaskRow
from herdsman.core.errors import InvalidInputError
from herdsman.core.statuses import TaskStatus

if TYPE_CHECKING:
    from herdsman.client.task import Task
    from herdsman.client.workflow import Workflow

__all__ = [
    "DEFAULT_EDGE_CHUNK_SIZE",
    "DEFAULT_TASK_PAGE_SIZE",
    "load_edges_from_server",
    "load_from_server",
    "load_from_workflow",
    "load_tasks_from_server",
]

logger = structlog.get_logger(__name__)

DEFAULT_TASK_PAGE_SIZE = 10_000
DEFAULT_EDGE_CHUNK_SIZE = 500


def load_from_server(
    state: SwarmState,
    gateway: SwarmGateway,
    workflow_id: int,
    *,
    edge_chunk_size: int = DEFAULT_EDGE_CHUNK_SIZE,
    task_page_size: int = DEFAULT_TASK_PAGE_SIZE,
    policy: StoredResourcePolicy | None = None,
) -> None:
    """Load every task, then every edge, of a workflow from the server.

    With ``policy``, each task's stored resource scales and fallback queues go into it.
    """
    tasks = load_tasks_from_server(
        state, gateway, workflow_id, page_size=task_page_size, policy=policy
    )
    edges = load_edges_from_server(state, gateway, workflow_id, chunk_size=edge_chunk_size)
    logger.info("swarm_loaded_from_server", workflow_id=workflow_id, tasks=tasks, edges=edges)


def load_tasks_from_server(
    state: SwarmState,
    gateway: SwarmGateway,
    workflow_id: int,
    *,
    page_size: int,
    policy: StoredResourcePolicy | None = None,
) -> int:
    """Load all tasks in id order, a page at a time; returns how many."""
    after, loaded = 0, 0
    while True:
        page = gateway.tasks_page(workflow_id, after, page_size)
        state.add_tasks(
            TaskRow(t.task_id, t.array_id, TaskStatus(t.status), t.task_resources_id)
            for t in page.tasks
        )
        if policy is not None:
            for t in page.tasks:
                policy.add(t.task_id, t.resource_scales, t.fallback_queues)
        loaded += len(page.tasks)
        if page.next_task_id is None:
            return loaded
        after = page.next_task_id


def load_edges_from_server(
    state: SwarmState, gateway: SwarmGateway, workflow_id: int, *, chunk_size: int
) -> int:
    """Load all edges, ``chunk_size`` per request; returns how many were read."""
    offset, read = 0, 0
    while True:
        page = gateway.edges_page(workflow_id, offset, chunk_size)
        state.add_edges(page.edges)
        read += len(page.edges)
        if page.next_offset is None:
            return read
        offset = page.next_offset


def load_from_workflow(
    state: SwarmState,
    workflow: Workflow,
    gateway: SwarmGateway,
    *,
    statuses_from_server: bool = False,
) -> None:
    """Load a bound workflow from its objects, and its limits from its settings.

    Needs each task's ``task_id``, ``status`` and ``array_id`` as set by ``workflow.bind()``;
    ``task_resources_id`` is used when present (tasks without it form one batch per array,
    and the server queues each with its own resources). If any task has no ``array_id``, or
    ``statuses_from_server`` (a resume changed them since the bind), the tasks are read from
    the server instead and only the edges come from the objects.
    """
    workflow_id = workflow.workflow_id
    if workflow_id is None:
        raise InvalidInputError("the workflow is not bound: call workflow.bind() first")
    tasks = list(workflow.tasks.values())
    array_limits: dict[int, int] = {}
    for task in tasks:
        if task.array_id is not None:
            array_limits[task.array_id] = workflow.array_limit(task.template_version)
    rows = None if statuses_from_server else _rows(tasks)
    if rows is not None:
        state.add_tasks(rows)
    else:
        logger.debug("swarm_tasks_read_from_server", workflow_id=workflow_id)
        load_tasks_from_server(state, gateway, workflow_id, page_size=DEFAULT_TASK_PAGE_SIZE)
    state.add_edges(_edges(tasks))
    state.set_limits(workflow.max_concurrently_running, array_limits)
    logger.info("swarm_loaded_from_workflow", workflow_id=workflow_id, tasks=len(tasks))


def _task_id(task: Task) -> int:
    if task.task_id is None:
        raise InvalidInputError(f"task {task.name!r} has no task_id: bind the workflow first")
    return task.task_id


def _rows(tasks: list[Task]) -> list[TaskRow] | None:
    """The tasks as the state holds them; None when one has no array (not bound by this
    client), so the tasks must be read from the server."""
    rows = []
    for task in tasks:
        if task.array_id is None:
            return None
        rows.append(
            TaskRow(
                _task_id(task),
                task.array_id,
                TaskStatus(task.status or TaskStatus.REGISTERING),
                # Task does not keep its resources id (yet); 0 batches the array's tasks.
                getattr(task, "task_resources_id", None) or 0,
            )
        )
    return rows


def _edges(tasks: list[Task]) -> Iterator[tuple[int, int]]:
    for task in tasks:
        downstream = _task_id(task)
        for upstream in task.iter_upstream():
            yield _task_id(upstream), downstream
