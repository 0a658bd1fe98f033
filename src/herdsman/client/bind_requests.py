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
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from herdsman.core.requester import Requester
from herdsman.core.schemas.client import (
    ArraysIn,
    ClusterOut,
    CountOut,
    DagIn,
    DagOut,
    EdgesIn,
    IdOut,
    IdsOut,
    NodesIn,
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
    "mark_bound",
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


def put_nodes(requester: Requester, body: NodesIn) -> IdsOut:
    return requester.put("/nodes", _columns(body), IdsOut)


def put_dag(requester: Requester, body: DagIn) -> DagOut:
    return requester.put("/dags", body, DagOut)


def put_edges(requester: Requester, dag_id: int, body: EdgesIn) -> CountOut:
    return requester.put(f"/dags/{dag_id}/edges", _columns(body), CountOut)


def complete_dag(requester: Requester, dag_id: int) -> DagOut:
    """Mark the DAG's edges complete, so a later bind of the same DAG sends none."""
    return requester.post(f"/dags/{dag_id}/complete", None, DagOut)


def put_workflow(requester: Requester, body: WorkflowIn) -> WorkflowOut:
    return requester.put("/workflows", body, WorkflowOut)


def put_arrays(requester: Requester, workflow_id: int, body: ArraysIn) -> IdsOut:
    return requester.put(f"/workflows/{workflow_id}/arrays", body, IdsOut)


def put_resources(requester: Requester, body: ResourcesIn) -> IdsOut:
    return requester.put("/task_resources", body, IdsOut)


def put_tasks(requester: Requester, workflow_id: int, body: TasksIn) -> TasksOut:
    return requester.put(f"/workflows/{workflow_id}/tasks", _columns(body), TasksOut)


def mark_bound(requester: Requester, workflow_id: int) -> WorkflowBoundOut:
    """Mark the workflow completely bound: only then may it run."""
    return requester.post(f"/workflows/{workflow_id}/bound", None, WorkflowBoundOut)


def _columns(body: BaseModel) -> dict[str, Any]:
    """A bulk body's fields as they are, for the requester's orjson encoder (see above)."""
    return dict(body)
