"""Resource requests the swarm computes while a workflow runs, and reads of stored requests.

Bind stores a task's original and validated requests, shared by content. A task killed for
resources gets a scaled request, and a task with a ``compute_resources_callable`` the request
its callable computed; the swarm stores those here as ``adjusted`` rows, one per attempt and
never shared with other tasks' adjustments, so a task's history shows every request it was
tried with. The queue route then points the task at its new row. A row's key is its task, the
task's attempts so far and the request: the same request sent again (a retry after a lost
answer) finds the row it made instead of making another.

The swarm computes a request from the previous one, so it also reads rows back: by id, and
the current row of tasks whose row it does not know.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import structlog
from sqlalchemy.orm import Session

from herdsman.core.errors import InvalidResourceError, NotFoundError
from herdsman.core.schemas import swarm as schemas
from herdsman.server.database import models, sql
from herdsman.server.database.bulk import IN_CHUNK, chunked, insert_ignore, lookup_ids, lookup_rows

__all__ = ["create_adjusted_resources", "read_resources"]

logger = structlog.get_logger(__name__)

ADJUSTED = "adjusted"


def create_adjusted_resources(
    session: Session, workflow_id: int, request: schemas.AdjustedResourcesIn
) -> schemas.AdjustedResourcesOut:
    """Store each item as a row of its task's attempt; the rows' ids, aligned with the items.

    Refused whole (nothing is stored) if a task is not in the workflow (404) or a request
    names no queue or a queue its task's cluster does not have (422, naming the queue).
    """
    items = request.items
    if not items:
        return schemas.AdjustedResourcesOut(task_resources_ids=[])
    tasks = _tasks_of_workflow(session, workflow_id, [item.task_id for item in items])
    queues = _queues_of_clusters(session, {cluster_id for cluster_id, _ in tasks.values()})
    rows = []
    for item in items:
        cluster_id, attempts = tasks[item.task_id]
        requested = json.dumps(item.requested, sort_keys=True)
        key = _adjustment_key(item.task_id, attempts, requested)
        rows.append((key, ADJUSTED, _queue_id(queues, cluster_id, item), requested))
    insert_ignore(session, models.TaskResources, ("hash", "kind", "queue_id", "requested"), rows)
    ids = lookup_ids(session, models.TaskResources, "hash", _unique_keys(row[0] for row in rows))
    logger.info("adjusted_resources_stored", workflow_id=workflow_id, rows=len(rows))
    return schemas.AdjustedResourcesOut(task_resources_ids=[ids[row[0]] for row in rows])


def _adjustment_key(task_id: int, attempts: int, requested: str) -> str:
    text = f"adjusted\x1f{task_id}\x1f{attempts}\x1f{requested}"
    return hashlib.sha256(text.encode()).hexdigest()


def _unique_keys(keys: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(keys))


def read_resources(
    session: Session, query: schemas.TaskResourcesQueryIn
) -> schemas.TaskResourcesOut:
    """The rows asked for by id, plus the current row of each task asked for (404 if absent)."""
    current: list[int] = []
    if query.task_ids:
        found = lookup_rows(
            session, models.Task, "id", _unique(query.task_ids), ("task_resources_id",)
        )
        _require_all(query.task_ids, found, "tasks")
        current = [found[task_id][0] for task_id in query.task_ids]
    wanted = _unique([*query.task_resources_ids, *current])
    rows = _resource_rows(session, wanted)
    _require_all(wanted, rows, "task resources")
    return schemas.TaskResourcesOut(
        resources=[rows[resources_id] for resources_id in wanted], task_resources_ids=current
    )


# --- helpers --------------------------------------------------------------------------------------


_Queues = dict[int, tuple[str, dict[str, int]]]  # cluster id -> (cluster name, queue name -> id)


def _tasks_of_workflow(
    session: Session, workflow_id: int, task_ids: list[int]
) -> dict[int, tuple[int, int]]:
    """Task id -> (cluster id, attempts so far); 404 for tasks not in the workflow."""
    found = lookup_rows(
        session,
        models.Task,
        "id",
        _unique(task_ids),
        ("cluster_id", "num_attempts"),
        where=("workflow_id", workflow_id),
    )
    missing = [task_id for task_id in _unique(task_ids) if task_id not in found]
    if missing:
        raise NotFoundError(
            f"tasks {missing[:10]} are not tasks of workflow {workflow_id}",
            details={"task_ids": missing[:100], "workflow_id": workflow_id},
        )
    return {task_id: (row[0], row[1]) for task_id, row in found.items()}


def _queues_of_clusters(session: Session, cluster_ids: Iterable[int]) -> _Queues:
    queues: _Queues = {}
    for part in chunked(sorted(cluster_ids), IN_CHUNK):
        for cluster_id, cluster_name, queue_name, queue_id in sql.fetch_all(
            session,
            "SELECT c.id, c.name, q.name, q.id FROM cluster c LEFT JOIN queue q "
            f"ON q.cluster_id = c.id WHERE c.id IN {sql.in_list(len(part))}",
            part,
        ):
            _, by_name = queues.setdefault(cluster_id, (cluster_name, {}))
            if queue_name is not None:
                by_name[queue_name] = queue_id
    return queues


def _queue_id(queues: _Queues, cluster_id: int, item: schemas.AdjustedResourcesItemIn) -> int:
    cluster_name, by_name = queues[cluster_id]
    name = item.requested.get("queue")
    known = ", ".join(sorted(by_name)) or "none"
    if not isinstance(name, str):
        raise InvalidResourceError(
            f"the new request for task {item.task_id} names no queue; add 'queue' (a queue "
            f"of cluster {cluster_name!r}: {known})",
            details={"task_id": item.task_id, "cluster": cluster_name},
        )
    queue_id = by_name.get(name)
    if queue_id is None:
        raise InvalidResourceError(
            f"queue {name!r} does not exist in cluster {cluster_name!r} of task "
            f"{item.task_id}; its queues: {known}",
            details={"task_id": item.task_id, "cluster": cluster_name, "queue": name},
        )
    return queue_id


def _resource_rows(
    session: Session, resources_ids: Sequence[int]
) -> dict[int, schemas.TaskResourcesRowOut]:
    rows: dict[int, schemas.TaskResourcesRowOut] = {}
    for part in chunked(resources_ids, IN_CHUNK):
        for resources_id, kind, requested, queue, cluster in sql.fetch_all(
            session,
            "SELECT r.id, r.kind, r.requested, q.name, c.name FROM task_resources r "
            "LEFT JOIN queue q ON q.id = r.queue_id LEFT JOIN cluster c ON c.id = q.cluster_id "
            f"WHERE r.id IN {sql.in_list(len(part))}",
            part,
        ):
            rows[resources_id] = schemas.TaskResourcesRowOut(
                id=resources_id,
                kind=kind,
                cluster=cluster,
                queue=queue,
                requested=json.loads(requested),
            )
    return rows


def _require_all(wanted: Sequence[int], found: dict[int, Any], what: str) -> None:
    missing = [key for key in wanted if key not in found]
    if missing:
        raise NotFoundError(f"{what} {missing[:10]} do not exist", details={"ids": missing[:100]})


def _unique(values: Iterable[int]) -> list[int]:
    return list(dict.fromkeys(values))
