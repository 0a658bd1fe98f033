"""Wire schemas of the client's routes: the bulk, idempotent get-or-create calls of bind.

Bulk requests are columnar: one list per field, aligned by position, rather than one object per
row. A million-task bind sends tens of millions of values; repeating every key per row, and
validating one model per row, would cost more than the database writes. Replies list ids in
request order.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from herdsman.core.limits import InputLimits
from herdsman.core.schemas.types import (
    INT32_MAX,
    CatalogueId,
    Count,
    Id,
    Limit32,
    LongText,
    Name,
    OptionalName,
    check_text,
)

__all__ = [
    "DEFAULT_QUEUE",
    "LOCAL_PLUGINS",
    "PLAN_REMOVED_NAMES",
    "WIDE_CORES",
    "WIDE_MEMORY_GIB",
    "WIDE_QUEUE_LIMITS",
    "WIDE_RUNTIME_SECONDS",
    "ArgKind",
    "ArrayIn",
    "ArraysIn",
    "AttributesIn",
    "AttributesOut",
    "ClusterOut",
    "CountOut",
    "DagIn",
    "DagOut",
    "EdgesIn",
    "HealthOut",
    "IdOut",
    "IdsOut",
    "NodesIn",
    "PlanIn",
    "PlanOut",
    "QueueIn",
    "QueueOut",
    "ResourcesIn",
    "ResourcesItemIn",
    "TaskTemplateIn",
    "TaskTemplateVersionIn",
    "TaskTemplateVersionOut",
    "TasksIn",
    "TasksOut",
    "ToolIn",
    "ToolOut",
    "ToolVersionIn",
    "WorkflowBoundOut",
    "WorkflowIn",
    "WorkflowOut",
]

Hash = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
# The first 63 bits of a sha256, for identities indexed in millions (nodes, task args).
Hash63 = Annotated[int, Field(ge=0, lt=2**63)]
# Names in the columns of a bulk body; their characters are checked with the body's other
# values, in one pass (herdsman.server.api.input_limits).
BulkName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
ArgKind = Literal["node", "task", "op"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_aligned(model: BaseModel, *columns: str) -> None:
    lengths = {column: len(getattr(model, column)) for column in columns}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{column} has {length}" for column, length in lengths.items())
        raise ValueError(f"columns must have one entry per row: {shown}")


class HealthOut(BaseModel):
    """``limits``: what the server accepts; clients check values and size requests by them."""

    status: str
    version: str
    database: str
    limits: InputLimits = Field(default_factory=InputLimits)


class IdOut(BaseModel):
    id: int


class IdsOut(BaseModel):
    ids: list[int]


class CountOut(BaseModel):
    count: int


DEFAULT_QUEUE = "default"
"""The queue every cluster has: tasks that name no queue go there (on Slurm, it stands for the
partition named by the cluster parameter ``partition``, else Slurm's default partition)."""

LOCAL_PLUGINS = frozenset({"sequential", "multiprocess", "dummy"})
# A plan names at most this many of the stored tasks a resume would remove (it counts them all).
PLAN_REMOVED_NAMES = 1000
"""Plugins of clusters on one machine. Any queue name a script gives them that they lack
(Jobmon's examples use ``all.q`` and ``null.q``) means their default queue, so scripts written
for a scheduler run unchanged; queues an operator adds to them are used by name."""

# A new cluster's default queue accepts any plausible request; an operator narrows it (for
# Slurm, ``herdsman server cluster sync-queues`` reads the partitions' own limits, and keeps
# these bounds where a partition sets none).
WIDE_CORES = 1024
WIDE_MEMORY_GIB = 65536.0
WIDE_RUNTIME_SECONDS = 31_536_000
WIDE_QUEUE_LIMITS: dict[str, list[float]] = {
    "cores": [1, WIDE_CORES],
    "memory": [0.0, WIDE_MEMORY_GIB],
    "runtime": [1, WIDE_RUNTIME_SECONDS],
}


class QueueIn(_In):
    """A queue with its limits (``[low, high]`` per resource), as a cluster plugin reads it
    from its cluster; the server adds the queue or updates its limits."""

    name: Name
    limits: dict[str, list[float]]


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


class ToolVersionIn(_In):
    """``request_key``: the caller's name for this creation; a replay gets the same version."""

    request_key: (
        Annotated[str, StringConstraints(min_length=1, max_length=36), AfterValidator(check_text)]
        | None
    ) = None


class ToolOut(BaseModel):
    id: int
    name: str
    version_ids: list[int]


class TaskTemplateIn(_In):
    tool_version_id: Id
    name: Name


class TaskTemplateVersionIn(_In):
    """``command_template`` is limited to ``max_command_bytes`` of the server's limits."""

    task_template_id: Id
    command_template: Annotated[str, StringConstraints(min_length=1), AfterValidator(check_text)]
    node_args: list[Name]
    task_args: list[Name]
    op_args: list[Name]


class TaskTemplateVersionOut(BaseModel):
    id: int
    arg_ids: dict[str, int]


class NodesIn(_In):
    """Nodes of one template version, as columns: ``values[i]`` follow ``arg_ids``."""

    task_template_version_id: Id
    arg_ids: list[CatalogueId]
    node_args_hashes: list[Hash63]
    values: list[list[str]]

    @model_validator(mode="after")
    def _aligned(self) -> NodesIn:
        _check_aligned(self, "node_args_hashes", "values")
        width = len(self.arg_ids)
        for index, row in enumerate(self.values):
            if len(row) != width:
                raise ValueError(
                    f"values.{index} has {len(row)} values for {width} node args (arg_ids)"
                )
        return self


class DagIn(_In):
    hash: Hash


class DagOut(BaseModel):
    id: int
    complete: bool


class EdgesIn(_In):
    """Edges as two aligned columns: ``downstream[i]`` waits for ``upstream[i]`` (node ids)."""

    upstream: list[Id]
    downstream: list[Id]

    @model_validator(mode="after")
    def _aligned(self) -> EdgesIn:
        _check_aligned(self, "upstream", "downstream")
        return self


class WorkflowIn(_In):
    """``attributes`` values are limited to ``max_attribute_value_bytes``."""

    tool_version_id: Id
    dag_id: Id
    workflow_args: LongText
    workflow_args_hash: Hash
    task_hash: Hash
    name: OptionalName = ""
    description: LongText = ""
    max_concurrently_running: Limit32 = INT32_MAX
    num_tasks: Count
    attributes: dict[Name, Annotated[str, AfterValidator(check_text)]] = Field(default_factory=dict)
    resume: bool = False
    """A resume may change the tasks and dependencies of an existing workflow (see
    :mod:`herdsman.server.domain.reuse`); other binds must match them."""


class AttributesIn(_In):
    """Attributes to add, or to update where the name exists; values as for WorkflowIn."""

    attributes: dict[Name, Annotated[str, AfterValidator(check_text)]]


class AttributesOut(BaseModel):
    """All the attributes of the workflow or task after the change."""

    attributes: dict[str, str]


class PlanIn(_In):
    """A script's tasks, for a plan of what binding them with ``resume`` would do.

    Task ``i`` is of template ``template_names[templates[i]]`` with node args hashed to
    ``node_args_hashes[i]`` (as for nodes) and ``commands[i]``; ``downstream[j]`` waits for
    ``upstream[j]`` (task positions).
    """

    tool_version_id: Id
    workflow_args_hash: Hash
    template_names: list[Name]
    templates: list[Annotated[int, Field(ge=0, le=INT32_MAX)]]
    node_args_hashes: list[Hash63]
    commands: list[str]
    upstream: list[Annotated[int, Field(ge=0, le=INT32_MAX)]] = Field(default_factory=list)
    downstream: list[Annotated[int, Field(ge=0, le=INT32_MAX)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _aligned(self) -> PlanIn:
        _check_aligned(self, "templates", "node_args_hashes", "commands")
        _check_aligned(self, "upstream", "downstream")
        for index, template in enumerate(self.templates):
            if template >= len(self.template_names):
                raise ValueError(
                    f"templates.{index}: {template} is not a position in template_names"
                )
        rows = len(self.templates)
        for column in ("upstream", "downstream"):
            for index, position in enumerate(getattr(self, column)):
                if position >= rows:
                    raise ValueError(f"{column}.{index}: {position} is not the position of a task")
        return self


class PlanOut(BaseModel):
    """Per task of the request, in its order, what a resume does: ``reuse`` (done, kept),
    ``new``, ``changed`` (done, its command changed: runs again), ``unfinished`` (not done:
    runs) or ``downstream`` (done, but a task upstream of it runs: runs again).
    ``old_commands``: the stored command of each changed task, by position;
    ``not_in_script``: stored tasks the script no longer creates (a resume removes them);
    ``removed_names``: the names of the first :data:`PLAN_REMOVED_NAMES` of them, by id."""

    workflow_id: int | None
    verdicts: list[str]
    old_commands: dict[int, str]
    counts: dict[str, int]
    not_in_script: int
    removed_names: list[str] = Field(default_factory=list)


class WorkflowOut(BaseModel):
    id: int
    status: str
    created: bool
    bound: bool


class WorkflowBoundOut(BaseModel):
    """A bound workflow; ``removed``: how many stored tasks this bind (a resume) removed
    because the script no longer has them."""

    id: int
    status: str
    num_tasks: int
    removed: int = 0


class ArrayIn(_In):
    task_template_version_id: Id
    name: OptionalName = ""
    max_concurrently_running: Limit32 = INT32_MAX


class ArraysIn(_In):
    arrays: list[ArrayIn]


class ResourcesItemIn(_In):
    kind: Literal["original", "validated"]
    queue_id: CatalogueId | None = None
    requested: dict[str, object]


class ResourcesIn(_In):
    items: list[ResourcesItemIn]


class TasksIn(_In):
    """Tasks as aligned columns (the i-th entry of each list belongs to the i-th task).

    ``task_arg_values[i]`` follow ``task_arg_ids[array_ids[i]]``; ``attributes`` is sparse,
    keyed by the task's position in the columns. Text is checked against the server's limits
    and for characters no command can carry, all columns in one pass.
    """

    task_arg_ids: dict[Id, list[CatalogueId]] = Field(default_factory=dict)
    node_ids: list[Id]
    array_ids: list[Id]
    names: list[BulkName]
    commands: list[str]
    task_args_hashes: list[Hash63]
    task_arg_values: list[list[str]]
    cluster_ids: list[CatalogueId]
    original_resources_ids: list[Id]
    task_resources_ids: list[Id]
    max_attempts: list[Annotated[int, Field(ge=1, le=INT32_MAX)]]
    resource_scales: list[str]
    fallback_queues: list[str]
    attributes: dict[int, dict[BulkName, str]] = Field(default_factory=dict)
    resume: bool = False

    @model_validator(mode="after")
    def _aligned(self) -> TasksIn:
        _check_aligned(
            self,
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
        for index, (array_id, values) in enumerate(
            zip(self.array_ids, self.task_arg_values, strict=True)
        ):
            expected = len(self.task_arg_ids.get(array_id, ()))
            if len(values) != expected:
                raise ValueError(
                    f"task_arg_values.{index} has {len(values)} values for the {expected} task "
                    f"args of array {array_id} (task_arg_ids)"
                )
        for index in self.attributes:
            if not 0 <= index < len(self.node_ids):
                raise ValueError(f"attributes: {index} is not the position of a task")
        return self


class TasksOut(BaseModel):
    ids: list[int]
    statuses: list[str]
