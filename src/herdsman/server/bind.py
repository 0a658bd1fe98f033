"""Domain functions behind the bind routes. Each takes a Session and never commits.

The callers (route handlers) own the unit of work; these functions only read and write rows.
All of them are get-or-create: running one twice with the same input returns the same ids and
writes nothing the second time, which is what makes a retried or resumed bind safe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import TypeVar

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from herdsman.core.errors import ConflictError, NotFoundError, WorkflowAlreadyExists
from herdsman.core.schemas import client as schemas
from herdsman.server import models
from herdsman.server.bulk import insert_ignore, lookup_ids

__all__ = [
    "bind_arrays",
    "bind_edges",
    "bind_nodes",
    "bind_resources",
    "bind_tasks",
    "complete_dag",
    "finish_workflow_bind",
    "get_cluster",
    "get_or_create_dag",
    "get_or_create_template",
    "get_or_create_template_version",
    "get_or_create_tool",
    "get_or_create_workflow",
    "new_tool_version",
]

logger = structlog.get_logger(__name__)

M = TypeVar("M")


def get_cluster(session: Session, name: str) -> schemas.ClusterOut:
    cluster = session.scalars(select(models.Cluster).where(models.Cluster.name == name)).first()
    if cluster is None:
        known = session.scalars(select(models.Cluster.name).order_by(models.Cluster.name)).all()
        raise NotFoundError(
            f"cluster {name!r} does not exist; known clusters: {', '.join(known)}",
            details={"cluster_name": name},
        )
    queues = session.scalars(
        select(models.Queue).where(models.Queue.cluster_id == cluster.id).order_by(models.Queue.id)
    ).all()
    return schemas.ClusterOut(
        id=cluster.id,
        name=cluster.name,
        plugin=cluster.plugin,
        parameters=json.loads(cluster.parameters),
        queues=[
            schemas.QueueOut(
                id=q.id, name=q.name, is_default=q.is_default, limits=json.loads(q.limits)
            )
            for q in queues
        ],
    )


def get_or_create_tool(session: Session, name: str) -> schemas.ToolOut:
    """The tool called ``name`` with its versions; a new tool gets its first version."""
    insert_ignore(session, models.Tool, [{"name": name, "created_date": models.utcnow()}])
    tool_id = session.scalars(select(models.Tool.id).where(models.Tool.name == name)).one()
    versions = _tool_version_ids(session, tool_id)
    if not versions:
        versions = [new_tool_version(session, tool_id)]
    return schemas.ToolOut(id=tool_id, name=name, version_ids=versions)


def new_tool_version(session: Session, tool_id: int) -> int:
    if session.get(models.Tool, tool_id) is None:
        raise NotFoundError(f"tool {tool_id} does not exist", details={"tool_id": tool_id})
    version = models.ToolVersion(tool_id=tool_id)
    session.add(version)
    session.flush()
    return version.id


def _tool_version_ids(session: Session, tool_id: int) -> list[int]:
    query = select(models.ToolVersion.id).where(models.ToolVersion.tool_id == tool_id)
    return list(session.scalars(query.order_by(models.ToolVersion.id)).all())


def get_or_create_template(session: Session, request: schemas.TaskTemplateIn) -> int:
    _require(session, models.ToolVersion, request.tool_version_id, "tool_version_id")
    model = models.TaskTemplate
    insert_ignore(
        session, model, [{"tool_version_id": request.tool_version_id, "name": request.name}]
    )
    query = select(models.TaskTemplate.id).where(
        models.TaskTemplate.tool_version_id == request.tool_version_id,
        models.TaskTemplate.name == request.name,
    )
    return session.scalars(query).one()


def template_version_hash(request: schemas.TaskTemplateVersionIn) -> str:
    """Identity of a template version: its command template and its split of the arguments."""
    encoded = json.dumps(
        [request.command_template, request.node_args, request.task_args, request.op_args]
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


def get_or_create_template_version(
    session: Session, request: schemas.TaskTemplateVersionIn
) -> schemas.TaskTemplateVersionOut:
    _require(session, models.TaskTemplate, request.task_template_id, "task_template_id")
    version_hash = template_version_hash(request)
    insert_ignore(
        session,
        models.TaskTemplateVersion,
        [
            {
                "task_template_id": request.task_template_id,
                "command_template": request.command_template,
                "version_hash": version_hash,
                "created_date": models.utcnow(),
            }
        ],
    )
    version_id = session.scalars(
        select(models.TaskTemplateVersion.id).where(
            models.TaskTemplateVersion.task_template_id == request.task_template_id,
            models.TaskTemplateVersion.version_hash == version_hash,
        )
    ).one()
    kinds = {name: "node" for name in request.node_args}
    kinds.update({name: "task" for name in request.task_args})
    kinds.update({name: "op" for name in request.op_args})
    arg_ids = _get_or_create_args(session, list(kinds))
    insert_ignore(
        session,
        models.TaskTemplateArg,
        [
            {"task_template_version_id": version_id, "arg_id": arg_ids[name], "kind": kind}
            for name, kind in kinds.items()
        ],
    )
    return schemas.TaskTemplateVersionOut(id=version_id, arg_ids=arg_ids)


def _get_or_create_args(session: Session, names: Sequence[str]) -> dict[str, int]:
    model = models.Arg
    insert_ignore(session, model, [{"name": name} for name in names])
    return lookup_ids(session, model, "name", names)


def bind_nodes(session: Session, request: schemas.NodesIn) -> list[int]:
    """Ids of the requested nodes, in request order, creating those that are new."""
    version_id = request.task_template_version_id
    _require(session, models.TaskTemplateVersion, version_id, "task_template_version_id")
    model = models.Node
    hashes = [node.node_args_hash for node in request.nodes]
    existing = lookup_ids(
        session, model, "node_args_hash", hashes, where={"task_template_version_id": version_id}
    )
    new_nodes = {n.node_args_hash: n for n in request.nodes if n.node_args_hash not in existing}
    if new_nodes:
        insert_ignore(
            session,
            model,
            [{"task_template_version_id": version_id, "node_args_hash": h} for h in new_nodes],
        )
        created = lookup_ids(
            session,
            model,
            "node_args_hash",
            list(new_nodes),
            where={"task_template_version_id": version_id},
        )
        _insert_node_args(session, request.arg_ids, new_nodes, created)
        existing.update(created)
    return [existing[h] for h in hashes]


def _insert_node_args(
    session: Session,
    arg_ids: list[int],
    nodes: dict[str, schemas.NodeIn],
    node_ids: dict[str, int],
) -> None:
    rows: list[dict[str, object]] = []
    for node_hash, node in nodes.items():
        if len(node.values) != len(arg_ids):
            raise ConflictError(
                f"node {node_hash} has {len(node.values)} values for {len(arg_ids)} node args",
                details={"field": "nodes.values"},
            )
        node_id = node_ids[node_hash]
        rows.extend(
            {"node_id": node_id, "arg_id": arg_id, "value": value}
            for arg_id, value in zip(arg_ids, node.values, strict=True)
        )
    insert_ignore(session, models.NodeArg, rows)


def get_or_create_dag(session: Session, dag_hash: str) -> schemas.DagOut:
    model = models.Dag
    insert_ignore(session, model, [{"hash": dag_hash, "created_date": models.utcnow()}])
    dag = session.scalars(select(models.Dag).where(models.Dag.hash == dag_hash)).one()
    return schemas.DagOut(id=dag.id, complete=dag.completed_date is not None)


def bind_edges(session: Session, dag_id: int, edges: Sequence[tuple[int, int]]) -> int:
    dag = _require(session, models.Dag, dag_id, "dag_id")
    if dag.completed_date is not None:
        return 0  # a complete DAG is immutable; its edges are already there
    rows = [
        {"dag_id": dag_id, "upstream_node_id": up, "downstream_node_id": down} for up, down in edges
    ]
    insert_ignore(session, models.Edge, rows)
    return len(rows)


def complete_dag(session: Session, dag_id: int) -> schemas.DagOut:
    dag = _require(session, models.Dag, dag_id, "dag_id")
    if dag.completed_date is None:
        dag.completed_date = models.utcnow()
    return schemas.DagOut(id=dag.id, complete=True)


def get_or_create_workflow(session: Session, request: schemas.WorkflowIn) -> schemas.WorkflowOut:
    """The workflow of these ``workflow_args``; raises if it exists with other tasks."""
    _require(session, models.ToolVersion, request.tool_version_id, "tool_version_id")
    dag = _require(session, models.Dag, request.dag_id, "dag_id")
    if dag.completed_date is None:
        raise ConflictError(
            f"dag {dag.id} is not complete; send all its edges before creating the workflow",
            details={"field": "dag_id"},
        )
    key = (
        models.Workflow.tool_version_id == request.tool_version_id,
        models.Workflow.workflow_args_hash == request.workflow_args_hash,
    )
    existing = session.scalars(select(models.Workflow).where(*key)).first()
    created = existing is None
    if existing is None:
        now = models.utcnow()
        insert_ignore(
            session,
            models.Workflow,
            [
                {
                    **request.model_dump(exclude={"attributes"}),
                    "status": "G",
                    "status_date": now,
                    "created_date": now,
                }
            ],
        )
        existing = session.scalars(select(models.Workflow).where(*key)).one()
        insert_ignore(
            session,
            models.WorkflowAttribute,
            [
                {"workflow_id": existing.id, "name": name, "value": value}
                for name, value in request.attributes.items()
            ],
        )
    if existing.task_hash != request.task_hash or existing.dag_id != request.dag_id:
        raise WorkflowAlreadyExists(
            f"workflow {existing.id} already has workflow_args {request.workflow_args!r} with a "
            "different set of tasks; use new workflow_args for a new workflow, or resume "
            f"workflow {existing.id} with its original tasks",
            details={"workflow_id": existing.id},
        )
    return schemas.WorkflowOut(
        id=existing.id,
        status=existing.status,
        created=created,
        bound=existing.bound_date is not None,
    )


def bind_arrays(session: Session, workflow_id: int, arrays: Sequence[schemas.ArrayIn]) -> list[int]:
    _require(session, models.Workflow, workflow_id, "workflow_id")
    model = models.Array
    insert_ignore(
        session,
        model,
        [
            {**array.model_dump(), "workflow_id": workflow_id, "created_date": models.utcnow()}
            for array in arrays
        ],
    )
    version_ids = [array.task_template_version_id for array in arrays]
    found = lookup_ids(
        session,
        model,
        "task_template_version_id",
        version_ids,
        where={"workflow_id": workflow_id},
    )
    return [found[version_id] for version_id in version_ids]


def resources_hash(item: schemas.ResourcesItemIn) -> str:
    encoded = json.dumps([item.kind, item.queue_id, item.requested], sort_keys=True)
    return hashlib.sha256(encoded.encode()).hexdigest()


def bind_resources(session: Session, items: Sequence[schemas.ResourcesItemIn]) -> list[int]:
    """Ids of resource requests, shared by content: equal requests get the same row."""
    hashes = [resources_hash(item) for item in items]
    model = models.TaskResources
    insert_ignore(
        session,
        model,
        [
            {
                "hash": item_hash,
                "kind": item.kind,
                "queue_id": item.queue_id,
                "requested": json.dumps(item.requested, sort_keys=True),
            }
            for item_hash, item in zip(hashes, items, strict=True)
        ],
    )
    found = lookup_ids(session, model, "hash", hashes)
    return [found[item_hash] for item_hash in hashes]


def bind_tasks(session: Session, workflow_id: int, request: schemas.TasksIn) -> schemas.TasksOut:
    """Ids and current statuses of the requested tasks, creating those that are new.

    Existing tasks keep their status and attempts: a rebind of a partly run workflow must not
    reset work that was done.
    """
    workflow = _require(session, models.Workflow, workflow_id, "workflow_id")
    model = models.Task
    now = models.utcnow()
    rows = []
    for task in request.tasks:
        row = task.model_dump(exclude={"task_arg_values", "attributes"})
        row.update(workflow_id=workflow_id, status="G", status_date=now, num_attempts=0)
        rows.append(row)
    insert_ignore(session, model, rows)
    node_ids = [task.node_id for task in request.tasks]
    found = _task_ids_and_statuses(session, workflow.id, node_ids)
    _insert_task_args(session, request, found)
    return schemas.TasksOut(
        ids=[found[node_id][0] for node_id in node_ids],
        statuses=[found[node_id][1] for node_id in node_ids],
    )


def _task_ids_and_statuses(
    session: Session, workflow_id: int, node_ids: Sequence[int]
) -> dict[int, tuple[int, str]]:
    found: dict[int, tuple[int, str]] = {}
    task = models.Task
    for start in range(0, len(node_ids), 2000):
        part = node_ids[start : start + 2000]
        query = select(task.node_id, task.id, task.status).where(
            task.workflow_id == workflow_id, task.node_id.in_(part)
        )
        for node_id, task_id, status in session.execute(query).tuples():
            found[node_id] = (task_id, status)
    return found


def _insert_task_args(
    session: Session, request: schemas.TasksIn, found: dict[int, tuple[int, str]]
) -> None:
    arg_rows: list[dict[str, object]] = []
    attribute_rows: list[dict[str, object]] = []
    for task in request.tasks:
        task_id = found[task.node_id][0]
        arg_ids = request.task_arg_ids.get(task.array_id, [])
        if len(arg_ids) != len(task.task_arg_values):
            raise ConflictError(
                f"task {task.name!r} has {len(task.task_arg_values)} task arg values for "
                f"{len(arg_ids)} task args of array {task.array_id}",
                details={"field": "tasks.task_arg_values"},
            )
        arg_rows.extend(
            {"task_id": task_id, "arg_id": arg_id, "value": value}
            for arg_id, value in zip(arg_ids, task.task_arg_values, strict=True)
        )
        if task.attributes:
            attribute_rows.extend(
                {"task_id": task_id, "name": name, "value": value}
                for name, value in task.attributes.items()
            )
    insert_ignore(session, models.TaskArg, arg_rows)
    insert_ignore(session, models.TaskAttribute, attribute_rows)


def finish_workflow_bind(session: Session, workflow_id: int) -> schemas.WorkflowBoundOut:
    """Mark the workflow bound once all its tasks are written; refuse while some are missing."""
    workflow = _require(session, models.Workflow, workflow_id, "workflow_id")
    count = session.scalar(
        select(func.count()).select_from(models.Task).where(models.Task.workflow_id == workflow_id)
    )
    if count != workflow.num_tasks:
        raise ConflictError(
            f"workflow {workflow_id} has {count} of its {workflow.num_tasks} tasks; "
            "bind again to send the rest",
            details={"workflow_id": workflow_id, "bound_tasks": count},
        )
    if workflow.bound_date is None:
        session.execute(
            update(models.Workflow)
            .where(models.Workflow.id == workflow_id)
            .values(bound_date=models.utcnow())
        )
    return schemas.WorkflowBoundOut(id=workflow_id, status=workflow.status, num_tasks=count)


def _require(session: Session, model: type[M], row_id: int, field: str) -> M:
    row = session.get(model, row_id)
    if row is None:
        raise NotFoundError(
            f"{field} {row_id} does not exist", details={"field": field, "value": row_id}
        )
    return row
