"""The requests of binding: one function per route the server keeps for the client.

Tools, templates, nodes, the DAG, the workflow, its arrays, resources and tasks are written
through these functions only, so the routes of binding are named in this one module. Each
takes the requester to send with, a typed body from :mod:`herdsman.core.schemas.client`, and
answers the typed reply.

The bulk bodies (nodes, edges, tasks) are built with ``model_construct`` and sent as their
columns, encoded by orjson: their values come from authoring objects validated with the
workflow, and the server validates every request it receives. Validating and encoding a
million rows through pydantic on the client as well would cost about a quarter of the
client's time in a bind (and copying the tasks' argument tuples into the lists the schemas
declare, more still), for errors the server reports anyway.

A bulk body is sent in as many requests as it takes to keep each under the server's limit on
request bodies (``max_bytes``, from :func:`get_limits`): encoded once, and only when it is too
large split in halves by rows, each half encoded again, and so on. The replies are joined in
request order, so the caller sees one reply as if one request had been sent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pydantic import BaseModel

from herdsman.core.errors import InvalidInputError
from herdsman.core.limits import InputLimits
from herdsman.core.requester import Requester, encode_json
from herdsman.core.schemas.client import (
    ArraysIn,
    ClusterOut,
    CountOut,
    DagIn,
    DagOut,
    EdgesIn,
    HealthOut,
    IdOut,
    IdsOut,
    NodesIn,
    PlanIn,
    PlanOut,
    ResourcesIn,
    TasksIn,
    TasksOut,
    TaskTemplateIn,
    TaskTemplateVersionIn,
    TaskTemplateVersionOut,
    ToolIn,
    ToolOut,
    ToolVersionIn,
    WorkflowBoundOut,
    WorkflowIn,
    WorkflowOut,
)

__all__ = [
    "complete_dag",
    "create_tool_version",
    "get_cluster",
    "get_limits",
    "mark_bound",
    "plan",
    "put_arrays",
    "put_dag",
    "put_edges",
    "put_nodes",
    "put_resources",
    "put_task_template",
    "put_task_template_version",
    "put_tasks",
    "put_tool",
    "put_workflow",
]


def get_cluster(requester: Requester, name: str) -> ClusterOut:
    """A cluster with its queues and their limits; NotFoundError if it does not exist."""
    return requester.get(f"/clusters/{name}", ClusterOut)


def get_limits(requester: Requester) -> InputLimits:
    """The input limits of the server: what a bind must stay within."""
    return requester.get("/health", HealthOut).limits


def put_tool(requester: Requester, body: ToolIn) -> ToolOut:
    return requester.put("/tools", body, ToolOut)


def create_tool_version(requester: Requester, tool_id: int, body: ToolVersionIn) -> IdOut:
    """A new version of the tool; a replay with the same ``request_key`` gets the same one."""
    return requester.post(f"/tools/{tool_id}/versions", body, IdOut)


def put_task_template(requester: Requester, body: TaskTemplateIn) -> IdOut:
    return requester.put("/task_templates", body, IdOut)


def put_task_template_version(
    requester: Requester, body: TaskTemplateVersionIn
) -> TaskTemplateVersionOut:
    return requester.put("/task_template_versions", body, TaskTemplateVersionOut)


def put_nodes(requester: Requester, body: NodesIn, max_bytes: int) -> IdsOut:
    ids: list[int] = []
    for part in _parts(body, len(body.node_args_hashes), _split_nodes, max_bytes):
        ids.extend(requester.put("/nodes", part, IdsOut).ids)
    return IdsOut(ids=ids)


def put_dag(requester: Requester, body: DagIn) -> DagOut:
    return requester.put("/dags", body, DagOut)


def put_edges(requester: Requester, dag_id: int, body: EdgesIn, max_bytes: int) -> CountOut:
    count = 0
    for part in _parts(body, len(body.upstream), _split_edges, max_bytes):
        count += requester.put(f"/dags/{dag_id}/edges", part, CountOut).count
    return CountOut(count=count)


def complete_dag(requester: Requester, dag_id: int) -> DagOut:
    """Mark the DAG's edges complete, so a later bind of the same DAG sends none."""
    return requester.post(f"/dags/{dag_id}/complete", None, DagOut)


def put_workflow(requester: Requester, body: WorkflowIn) -> WorkflowOut:
    return requester.put("/workflows", body, WorkflowOut)


def put_arrays(requester: Requester, workflow_id: int, body: ArraysIn) -> IdsOut:
    return requester.put(f"/workflows/{workflow_id}/arrays", body, IdsOut)


def put_resources(requester: Requester, body: ResourcesIn) -> IdsOut:
    return requester.put("/task_resources", body, IdsOut)


def put_tasks(requester: Requester, workflow_id: int, body: TasksIn, max_bytes: int) -> TasksOut:
    ids: list[int] = []
    statuses: list[str] = []
    for part in _parts(body, len(body.node_ids), _split_tasks, max_bytes):
        reply = requester.put(f"/workflows/{workflow_id}/tasks", part, TasksOut)
        ids.extend(reply.ids)
        statuses.extend(reply.statuses)
    return TasksOut(ids=ids, statuses=statuses)


def mark_bound(requester: Requester, workflow_id: int, *, resume: bool = False) -> WorkflowBoundOut:
    """Mark the workflow completely bound: only then may it run. With ``resume``, done tasks
    downstream of tasks that run are sent back to run again."""
    path = f"/workflows/{workflow_id}/bound" + ("?resume=true" if resume else "")
    return requester.post(path, None, WorkflowBoundOut)


def plan(requester: Requester, body: PlanIn) -> PlanOut:
    """What binding these tasks with ``resume`` would do; the server writes nothing."""
    return requester.post("/workflow_plans", body, PlanOut)


def _columns(body: BaseModel) -> dict[str, Any]:
    """A bulk body's fields as they are, for the requester's orjson encoder (see above)."""
    return dict(body)


B = TypeVar("B", bound=BaseModel)


def _parts(
    body: B, rows: int, split: Callable[[B, int], tuple[B, B]], max_bytes: int
) -> Iterator[bytes]:
    """``body`` encoded, in as many parts of whole rows as keep each within ``max_bytes``."""
    encoded = encode_json(_columns(body))
    if len(encoded) <= max_bytes:
        yield encoded
        return
    if rows <= 1:
        raise InvalidInputError(
            f"one row of a bind request is {len(encoded)} bytes, more than the server accepts in "
            f"a request ({max_bytes} bytes, setting limits.max_request_bytes); shorten the "
            "task's argument values or attributes, or ask the operator to raise the limit"
        )
    half = rows // 2
    first, second = split(body, half)
    del encoded  # the halves are encoded one at a time: at most one copy in memory
    yield from _parts(first, half, split, max_bytes)
    yield from _parts(second, rows - half, split, max_bytes)


def _split_nodes(body: NodesIn, at: int) -> tuple[NodesIn, NodesIn]:
    def part(rows: slice) -> NodesIn:
        return NodesIn.model_construct(
            task_template_version_id=body.task_template_version_id,
            arg_ids=body.arg_ids,
            node_args_hashes=body.node_args_hashes[rows],
            values=body.values[rows],
        )

    return part(slice(None, at)), part(slice(at, None))


def _split_edges(body: EdgesIn, at: int) -> tuple[EdgesIn, EdgesIn]:
    def part(rows: slice) -> EdgesIn:
        return EdgesIn.model_construct(
            upstream=body.upstream[rows], downstream=body.downstream[rows]
        )

    return part(slice(None, at)), part(slice(at, None))


_TASK_COLUMNS = (
    "node_ids",
    "array_ids",
    "names",
    "commands",
    "task_args_hashes",
    "task_arg_values",
    "cluster_ids",
    "original_resources_ids",
    "task_resources_ids",
    "max_attempts",
    "resource_scales",
    "fallback_queues",
)


def _split_tasks(body: TasksIn, at: int) -> tuple[TasksIn, TasksIn]:
    def part(rows: slice, first: int, end: int) -> TasksIn:
        columns = {column: getattr(body, column)[rows] for column in _TASK_COLUMNS}
        attributes = {i - first: a for i, a in body.attributes.items() if first <= i < end}
        return TasksIn.model_construct(
            task_arg_ids=body.task_arg_ids, attributes=attributes, resume=body.resume, **columns
        )

    rows = len(body.node_ids)
    return part(slice(None, at), 0, at), part(slice(at, None), at, rows)
