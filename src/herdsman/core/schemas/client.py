"""Wire schemas of the client's routes: the bulk, idempotent get-or-create calls of bind.

Bulk requests carry rows as short lists aligned with a header (``arg_ids``) rather than as
dicts keyed by name, because a million-task bind sends tens of millions of values and every
key repeated per row costs time on both ends. Replies list ids in request order.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "ArgKind",
    "ArrayIn",
    "ArraysIn",
    "ClusterOut",
    "CountOut",
    "DagIn",
    "DagOut",
    "EdgesIn",
    "HealthOut",
    "IdOut",
    "IdsOut",
    "NodeIn",
    "NodesIn",
    "QueueOut",
    "ResourcesIn",
    "ResourcesItemIn",
    "TaskIn",
    "TaskTemplateIn",
    "TaskTemplateVersionIn",
    "TaskTemplateVersionOut",
    "TasksIn",
    "TasksOut",
    "ToolIn",
    "ToolOut",
    "WorkflowBoundOut",
    "WorkflowIn",
    "WorkflowOut",
]

Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=255)]
ArgKind = Literal["node", "task", "op"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HealthOut(BaseModel):
    status: str
    version: str
    database: str


class IdOut(BaseModel):
    id: int


class IdsOut(BaseModel):
    ids: list[int]


class CountOut(BaseModel):
    count: int


class QueueOut(BaseModel):
    id: int
    name: str
    is_default: bool
    limits: dict[str, list[float]]


class ClusterOut(BaseModel):
    id: int
    name: str
    plugin: str
    parameters: dict[str, object]
    queues: list[QueueOut]


class ToolIn(_In):
    name: Name


class ToolOut(BaseModel):
    id: int
    name: str
    version_ids: list[int]


class TaskTemplateIn(_In):
    tool_version_id: int
    name: Name


class TaskTemplateVersionIn(_In):
    task_template_id: int
    command_template: Annotated[str, StringConstraints(min_length=1)]
    node_args: list[Name]
    task_args: list[Name]
    op_args: list[Name]


class TaskTemplateVersionOut(BaseModel):
    id: int
    arg_ids: dict[str, int]


class NodeIn(_In):
    node_args_hash: Hash
    values: list[str]


class NodesIn(_In):
    task_template_version_id: int
    arg_ids: list[int] = Field(description="node arg ids; each node's values follow this order")
    nodes: list[NodeIn]


class DagIn(_In):
    hash: Hash


class DagOut(BaseModel):
    id: int
    complete: bool


class EdgesIn(_In):
    edges: list[tuple[int, int]] = Field(description="(upstream_node_id, downstream_node_id)")


class WorkflowIn(_In):
    tool_version_id: int
    dag_id: int
    workflow_args: str
    workflow_args_hash: Hash
    task_hash: Hash
    name: Annotated[str, StringConstraints(max_length=255)] = ""
    description: str = ""
    user: Annotated[str, StringConstraints(max_length=255)] = ""
    max_concurrently_running: int = Field(default=10_000, ge=0)
    num_tasks: int = Field(ge=0)
    attributes: dict[Name, str] = Field(default_factory=dict)


class WorkflowOut(BaseModel):
    id: int
    status: str
    created: bool
    bound: bool


class WorkflowBoundOut(BaseModel):
    id: int
    status: str
    num_tasks: int


class ArrayIn(_In):
    task_template_version_id: int
    name: Annotated[str, StringConstraints(max_length=255)] = ""
    max_concurrently_running: int = Field(default=10_000, ge=0)


class ArraysIn(_In):
    arrays: list[ArrayIn]


class ResourcesItemIn(_In):
    kind: Literal["original", "validated"]
    queue_id: int | None = None
    requested: dict[str, object]


class ResourcesIn(_In):
    items: list[ResourcesItemIn]


class TaskIn(_In):
    node_id: int
    array_id: int
    name: Name
    command: str
    task_args_hash: Hash
    task_arg_values: list[str] = Field(default_factory=list)
    cluster_id: int
    original_resources_id: int
    task_resources_id: int
    max_attempts: int = Field(default=3, ge=1)
    resource_scales: str = ""
    fallback_queues: str = ""
    attributes: dict[Name, str] | None = None


class TasksIn(_In):
    task_arg_ids: dict[int, list[int]] = Field(
        default_factory=dict,
        description="array id -> task arg ids; each task's task_arg_values follow this order",
    )
    tasks: list[TaskIn]


class TasksOut(BaseModel):
    ids: list[int]
    statuses: list[str]
