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
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from herdsman.core.errors import InvalidTaskNameError, WorkflowValidationError
from herdsman.core.limits import utf8_size

if TYPE_CHECKING:
    from herdsman.client.task_template import TaskTemplateVersion
    from herdsman.client.workflow import Workflow
    from herdsman.core.requester import Requester

__all__ = [
    "Array",
    "ResourcesCallable",
    "Task",
    "validate_explicit_task_name",
    "validate_task_name",
]

ResourcesCallable = Callable[..., dict[str, Any]]

MAX_NAME_LENGTH = 255
_BAD_NAME = re.compile(r"[\x00-\x1f\x7f]")
# Characters cluster schedulers refuse in a job name (Jobmon's SpecialChars).
_SCHEDULER_REFUSED = "/\\'\" "
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


def validate_explicit_task_name(name: object) -> str:
    """A name the user chose: as :func:`validate_task_name`, and as Jobmon refuses, not one
    that starts with a digit or holds ``/ \\ ' "`` or a space (job names on clusters)."""
    checked = validate_task_name(name)
    if checked[0].isdigit():
        raise InvalidTaskNameError(
            f"task name {checked!r} starts with a digit, which cluster schedulers refuse in a "
            "job name; start it with a letter"
        )
    refused = sorted({c for c in checked if c in _SCHEDULER_REFUSED})
    if refused:
        shown = ", ".join("space" if c == " " else repr(c) for c in refused)
        raise InvalidTaskNameError(
            f"task name {checked!r} contains {shown}, which cluster schedulers refuse in a "
            "job name; use letters, digits, '_', '-' or '.'"
        )
    return checked


class Task:
    """One command to run, with its upstream and downstream tasks.

    Create tasks with :meth:`TaskTemplate.create_task` or :meth:`TaskTemplate.create_tasks`.
    """

    __slots__ = (
        "_downstream",
        "_final_status",
        "_mark",
        "_name",
        "_upstream",
        "array",
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
        self._final_status: str | None = None
        self.array: Array | None = None

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

    @staticmethod
    def is_valid_job_name(name: str) -> bool:
        """True for a name Jobmon accepts as an explicit task name; raises ValueError else."""
        validate_explicit_task_name(name)
        return True

    @property
    def final_status(self) -> str:
        """The task's status when the last ``run()`` of its workflow ended (a status letter)."""
        if self._final_status is None:
            raise AttributeError(
                f"task {self.name!r} has no final_status: its workflow has not run yet"
            )
        return self._final_status

    @final_status.setter
    def final_status(self, status: str) -> None:
        self._final_status = status
        self.status = status

    @property
    def is_bound(self) -> bool:
        return self.task_id is not None

    def update_compute_resources(self, **resources: Any) -> None:
        """Change only the keys given of the task's own compute resources."""
        self.compute_resources = {**(self.compute_resources or {}), **resources}

    def update_resource_scales(self, **resource_scales: Any) -> None:
        """Change only the keys given of the task's own resource scales."""
        self.resource_scales = {**(self.resource_scales or {}), **resource_scales}

    @property
    def requester(self) -> Requester:
        return self.template_version.template.tool.requester

    def _bound_id(self, what: str) -> int:
        if self.task_id is None:
            raise WorkflowValidationError(
                f"task {self.name!r} is not bound yet, so it has no {what}; bind() or run() its "
                "workflow first"
            )
        return self.task_id

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

    def add_downstreams(self, downstreams: Iterable[Task]) -> None:
        for downstream in downstreams:
            self.add_downstream(downstream)

    # --- attributes, errors and usage ----------------------------------------------------------

    def add_attribute(self, attribute: str, value: object) -> None:
        """Set one attribute; sent to the server at once if the task is bound."""
        self.add_attributes({attribute: value})

    def add_attributes(self, attributes: Mapping[str, object]) -> None:
        """Set attributes (names to values, kept as text); sent at once if the task is bound."""
        text = {str(name): str(value) for name, value in attributes.items()}
        self.task_attributes = {**(self.task_attributes or {}), **text}
        if self.task_id is not None:
            from herdsman.client.attributes import put_task_attributes

            put_task_attributes(self.requester, self.task_id, text)

    def get_errors(self) -> dict[str, Any] | None:
        """The errors of the task's latest attempt: ``{"task_instance_id": id, "error_log":
        [{"description": ..., "exit_code": ..., ...}]}``, or None when it has no attempt."""
        from herdsman.client.queries import task_attempts

        attempts = task_attempts(self.requester, self._bound_id("errors")).attempts
        if not attempts:
            return None
        last = attempts[-1]
        log = []
        if last.error:
            log.append(
                {
                    "task_instance_id": last.id,
                    "description": last.error,
                    "exit_code": last.exit_code,
                    "exit_class": last.exit_class,
                    "error_time": last.status_date,
                }
            )
        return {"task_instance_id": last.id, "error_log": log}

    def resource_usage(self) -> dict[str, Any]:
        """What the task's done attempt used: ``num_attempts``, ``nodename``, ``runtime``
        (seconds), ``memory`` (peak bytes); None values while no attempt is done."""
        from herdsman.client.queries import task_attempts

        attempts = task_attempts(self.requester, self._bound_id("resource usage")).attempts
        done = next((a for a in reversed(attempts) if a.status == "D"), None)
        return {
            "num_attempts": len(attempts),
            "nodename": None if done is None else done.host,
            "runtime": None if done is None else done.wall_time,
            "memory": None if done is None else done.max_rss,
        }

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, task_id={self.task_id}, status={self.status})"


@dataclass(eq=False)
class Array:
    """Tasks of one template created together, sharing resources and a concurrency limit.

    On the server every workflow has one array per template version; an Array's
    ``max_concurrently_running`` becomes that array's limit. ``create_tasks`` adds more tasks
    with the same task args, op args and settings.
    """

    template_version: TaskTemplateVersion
    tasks: list[Task] = field(default_factory=list)
    max_concurrently_running: int | None = None
    name: str = ""
    task_args: dict[str, Any] = field(default_factory=dict)
    op_args: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    workflow: Workflow | None = None

    def __post_init__(self) -> None:
        if not self.name:
            self.name = self.template_version.template.name
        for task in self.tasks:
            task.array = self

    @property
    def task_template_version(self) -> TaskTemplateVersion:
        return self.template_version

    @property
    def is_bound(self) -> bool:
        return bool(self.tasks) and self.tasks[0].array_id is not None

    @property
    def array_id(self) -> int:
        if not self.is_bound:
            raise AttributeError(f"array {self.name!r} is not bound yet; bind its workflow")
        array_id = self.tasks[0].array_id
        assert array_id is not None
        return array_id

    def add_task(self, task: Task) -> None:
        if task.template_version is not self.template_version:
            raise WorkflowValidationError(
                f"task {task.name!r} is of another template version than array {self.name!r}"
            )
        if any(existing.key == task.key for existing in self.tasks):
            raise WorkflowValidationError(
                f"array {self.name!r} has a task with node args {task.node_args} already"
            )
        self.tasks.append(task)
        task.array = self
        if self.workflow is not None:
            self.workflow.add_task(task)

    def create_tasks(
        self,
        upstream_tasks: Iterable[Task] | None = None,
        task_attributes: Mapping[str, Any] | Iterable[str] | None = None,
        max_attempts: int | None = None,
        resource_scales: dict[str, Any] | None = None,
        **node_kwargs: Any,
    ) -> list[Task]:
        """More tasks, one per combination of the node-arg values, with the array's task
        args, op args and settings; they join the array (and its workflow, if added)."""
        settings = dict(self.settings)
        if upstream_tasks is not None:
            settings["upstream_tasks"] = upstream_tasks
        if task_attributes is not None:
            settings["task_attributes"] = task_attributes
        if max_attempts is not None:
            settings["max_attempts"] = max_attempts
        if resource_scales is not None:
            settings["resource_scales"] = resource_scales
        template = self.template_version.template
        built = template.build_array(
            self.template_version, {**node_kwargs, **self.task_args, **self.op_args}, settings
        )
        for task in built.tasks:
            self.add_task(task)
        return built.tasks

    @staticmethod
    def expand_dict(**kwargs: Iterable[Any]) -> Iterator[dict[str, Any]]:
        """Every combination of the values: ``expand_dict(a=[1, 2], b=[3])`` yields
        ``{"a": 1, "b": 3}`` and ``{"a": 2, "b": 3}``."""
        keys = list(kwargs)
        if not keys:
            return
        for values in itertools.product(*kwargs.values()):
            yield dict(zip(keys, values, strict=True))

    def get_tasks_by_node_args(self, **node_args: Any) -> list[Task]:
        """Tasks whose node args match: a list, tuple or set means any of its values."""
        return [task for task in self.tasks if node_args_match(task, node_args)]

    def bind(self) -> None:
        """Bind the workflow the array was added to (arrays are written with it)."""
        if self.workflow is None:
            raise WorkflowValidationError(
                f"array {self.name!r} is not in a workflow; add it with workflow.add_array()"
            )
        if self.workflow.workflow_id is None:
            self.workflow.bind()


_MEMBERSHIP_TYPES = (list, tuple, set, frozenset, range)


def node_args_match(task: Task, wanted: Mapping[str, Any]) -> bool:
    """Whether the task's node args hold these values; a collection means any of its values."""
    mapping = task.node_args
    for name, value in wanted.items():
        have = mapping.get(name)
        if isinstance(value, _MEMBERSHIP_TYPES):
            if have not in {str(v) for v in value}:
                return False
        elif have != str(value):
            return False
    return True
