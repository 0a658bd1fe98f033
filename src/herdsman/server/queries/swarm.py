"""Reads that load a workflow into a swarm: its tasks and dependencies, a page at a time."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from herdsman.core.schemas import swarm as schemas
from herdsman.server.database import models
from herdsman.server.database.bulk import chunked
from herdsman.server.queries.lookups import require_workflow

__all__ = ["swarm_edges", "swarm_tasks"]


def swarm_tasks(
    session: Session, workflow_id: int, after_task_id: int, limit: int
) -> schemas.SwarmTasksOut:
    """Tasks with ids above ``after_task_id``, in id order, with their number of upstreams."""
    workflow = require_workflow(session, workflow_id)
    task = models.Task
    rows = session.execute(
        select(
            task.id,
            task.node_id,
            task.array_id,
            task.status,
            task.task_resources_id,
            task.max_attempts,
            task.num_attempts,
            task.resource_scales,
            task.fallback_queues,
        )
        # A task a resume removed is not in the workflow's DAG: never loaded, run or waited on.
        .where(
            task.workflow_id == workflow_id, task.id > after_task_id, task.removed_date.is_(None)
        )
        .order_by(task.id)
        .limit(limit)
    ).all()
    upstream_counts: dict[int, int] = {}
    edge = models.Edge
    for part in chunked([row[1] for row in rows], 2000):
        upstream_counts.update(
            session.execute(
                select(edge.downstream_node_id, func.count())
                .where(edge.dag_id == workflow.dag_id, edge.downstream_node_id.in_(part))
                .group_by(edge.downstream_node_id)
            )
            .tuples()
            .all()
        )
    tasks = [
        schemas.SwarmTaskOut(
            task_id=row[0],
            array_id=row[2],
            status=row[3],
            num_upstreams=upstream_counts.get(row[1], 0),
            task_resources_id=row[4],
            max_attempts=row[5],
            num_attempts=row[6],
            resource_scales=row[7],
            fallback_queues=row[8],
        )
        for row in rows
    ]
    return schemas.SwarmTasksOut(
        tasks=tasks, next_task_id=rows[-1][0] if len(rows) == limit else None
    )


def swarm_edges(
    session: Session, workflow_id: int, offset: int, limit: int
) -> schemas.SwarmEdgesOut:
    """Edges into the next ``limit`` tasks after task id ``offset`` (a cursor, not a count).

    Paging by downstream task keeps every page an index range scan, where an OFFSET would
    rescan all earlier edges on every page of a million-edge workflow.
    """
    workflow = require_workflow(session, workflow_id)
    task = models.Task
    downstream = session.execute(
        select(task.node_id, task.id)
        .where(task.workflow_id == workflow_id, task.id > offset, task.removed_date.is_(None))
        .order_by(task.id)
        .limit(limit)
    ).all()
    task_of_node = {node_id: task_id for node_id, task_id in downstream}
    pairs: list[tuple[int, int]] = []
    edge = models.Edge
    for part in chunked(list(task_of_node), 2000):
        pairs += session.execute(
            select(edge.upstream_node_id, edge.downstream_node_id).where(
                edge.dag_id == workflow.dag_id, edge.downstream_node_id.in_(part)
            )
        ).tuples()
    upstream_nodes = list({up for up, _ in pairs})
    for part in chunked(upstream_nodes, 2000):
        task_of_node.update(
            session.execute(
                select(task.node_id, task.id).where(
                    task.workflow_id == workflow_id,
                    task.node_id.in_(part),
                    task.removed_date.is_(None),
                )
            )
            .tuples()
            .all()
        )
    # An upstream node without a task in the workflow was removed by a resume: not an edge.
    edges = [(task_of_node[up], task_of_node[down]) for up, down in pairs if up in task_of_node]
    edges.sort(key=lambda pair: (pair[1], pair[0]))
    next_offset = downstream[-1][1] if len(downstream) == limit else None
    return schemas.SwarmEdgesOut(edges=edges, next_offset=next_offset)
