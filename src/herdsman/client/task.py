"""Task: one command of a workflow, and Array: tasks of one template created together.

A million-task workflow lives in the user's process, so a Task keeps only what identifies and
configures it: its template version, its argument values as tuples of strings (in the
template's order, shared between tasks where they are equal), optional settings (``None`` when
unset, resolved from the template, workflow and tool at bind time) and its dependencies.
Dictionaries of arguments, the command and the default name are computed when asked for.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from herdsman.core.errors import WorkflowValidationError
from herdsman.core.limits import utf8_size

if TYPE_CHECKING:
    from herdsman.client.task_template import TaskTemplateVersion

__all__ = ["Array", "ResourcesCallable", "Task", "validate_task_name"]

ResourcesCallable = Callable[..., dict[str, Any]]

MAX_NAME_LENGTH = 255
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f]")
# Numbers tasks in the order this process creates them: binding sends them in that order, so
# their ids follow it (see Task.creation_index).
_CREATED = itertools.count()


def validate_task_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise WorkflowValidationError(f"task name {name!r} must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise WorkflowValidationError(
            f"task name {name[:40]!r}... is {len(name)} characters; the limit is {MAX_NAME_LENGTH}"
        )
    if _BAD_NAME.search(name):
        raise WorkflowValidationError(
            f"task name {name!r} contains control characters (newline, tab, ...); remove them"
        )
    if utf8_size(name) is None:
        raise WorkflowValidationError(
            f"task name {name!r} contains a lone surrogate (\\ud800-\\udfff), which is not text"
        )
    return name


class Task:
    """One command to run, with its upstream and downstream tasks.

    Create tasks with :meth:`TaskTemplate.create_task` or :meth:`TaskTemplate.create_tasks`.
    """

    __slots__ = (
        "_downstream",
        "_mark",
        "_name",
        "_upstream",
        "array_id",
        "cluster_name",
        "compute_resources",
        "compute_resources_callable",
        "creation_index",
        "fallback_queues",
        "max_attempts",
        "node_id",
        "node_values",
        "op_values",
        "resource_scales",
        "status",
        "task_attributes",
        "task_id",
        "task_values",
        "template_version",
    )

    def __init__(
        self,
        template_version: TaskTemplateVersion,
        node_values: tuple[str, ...],
        task_values: tuple[str, ...],
        op_values: tuple[str, ...],
        *,
        name: str | None = None,
        compute_resources: dict[str, Any] | None = None,
        compute_resources_callable: ResourcesCallable | None = None,
        resource_scales: dict[str, Any] | None = None,
        fallback_queues: list[str] | None = None,
        max_attempts: int | None = None,
        cluster_name: str | None = None,
        task_attributes: dict[str, str] | None = None,
    ) -> None:
        self.template_version = template_version
        self.node_values = node_values
        self.task_values = task_values
        self.op_values = op_values
        self._name = name
        self.compute_resources = compute_resources
        self.compute_resources_callable = compute_resources_callable
        self.resource_scales = resource_scales
        self.fallback_queues = fallback_queues
        self.max_attempts = max_attempts
        self.cluster_name = cluster_name
        self.task_attributes = task_attributes
        # Where the task comes in the order this process created tasks; bind sends tasks in
        # that order, so a new workflow's task ids follow the order of the script.
        self.creation_index = next(_CREATED)
        self._upstream: set[Task] | None = None
        self._downstream: set[Task] | None = None
        self._mark = 0  # scratch counter for graph checks (see Workflow._check_acyclic)
        self.node_id: int | None = None
        self.array_id: int | None = None
        self.task_id: int | None = None
        self.status: str | None = None

    # --- identity and arguments ---------------------------------------------------------------

    @property
    def name(self) -> str:
        """The explicit name, or the template name joined with the node args."""
        if self._name is not None:
            return self._name
        return self.template_version.default_task_name(self.node_values)

    @property
    def node_args(self) -> dict[str, str]:
        return dict(zip(self.template_version.node_args, self.node_values, strict=True))

    @property
    def task_args(self) -> dict[str, str]:
        return dict(zip(self.template_version.task_args, self.task_values, strict=True))

    @property
    def op_args(self) -> dict[str, str]:
        return dict(zip(self.template_version.op_args, self.op_values, strict=True))

    @property
    def command(self) -> str:
        return self.template_version.render(self.node_values, self.task_values, self.op_values)

    @property
    def key(self) -> tuple[TaskTemplateVersion, tuple[str, ...]]:
        """What makes two tasks of one workflow the same task: template version + node args."""
        return (self.template_version, self.node_values)

    # --- dependencies -------------------------------------------------------------------------

    @property
    def upstream_tasks(self) -> frozenset[Task]:
        return frozenset(self._upstream) if self._upstream else frozenset()

    @property
    def downstream_tasks(self) -> frozenset[Task]:
        return frozenset(self._downstream) if self._downstream else frozenset()

    def iter_upstream(self) -> Iterable[Task]:
        """The upstream tasks without copying them (bind and validation walk millions)."""
        return self._upstream or ()

    def iter_downstream(self) -> Iterable[Task]:
        return self._downstream or ()

    def add_upstream(self, upstream: Task) -> None:
        """Make this task wait for ``upstream``."""
        if not isinstance(upstream, Task):
            raise WorkflowValidationError(
                f"upstream of task {self.name!r} must be a Task, not {type(upstream).__name__}"
            )
        if upstream is self:
            raise WorkflowValidationError(f"task {self.name!r} cannot depend on itself")
        if self._upstream is None:
            self._upstream = set()
        self._upstream.add(upstream)
        if upstream._downstream is None:
            upstream._downstream = set()
        upstream._downstream.add(self)

    def add_upstreams(self, upstreams: Iterable[Task]) -> None:
        for upstream in upstreams:
            self.add_upstream(upstream)

    def add_downstream(self, downstream: Task) -> None:
        """Make ``downstream`` wait for this task."""
        if not isinstance(downstream, Task):
            raise WorkflowValidationError(
                f"downstream of task {self.name!r} must be a Task, not {type(downstream).__name__}"
            )
        downstream.add_upstream(self)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, task_id={self.task_id}, status={self.status})"


@dataclass
class Array:
    """Tasks of one template created together, sharing resources and a concurrency limit.

    On the server every workflow has one array per template version; an Array's
    ``max_concurrently_running`` becomes that array's limit.
    """

    template_version: TaskTemplateVersion
    tasks: list[Task] = field(default_factory=list)
    max_concurrently_running: int | None = None
