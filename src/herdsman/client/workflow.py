"""Workflow: a DAG of tasks plus the arguments that identify one execution of it.

Validation happens entirely before anything is written: unknown upstreams, duplicate tasks,
cycles, clusters, queues and resource limits. Binding then writes the workflow in chunks (see
:mod:`herdsman.client.bind`) and is idempotent: the same tool version, ``workflow_args`` and
tasks always bind to the same workflow and task ids.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from herdsman.client import bind_requests, checks
from herdsman.client.input_checks import InputChecker
from herdsman.client.resolution import Resolver
from herdsman.client.resources import ResourcesByCluster
from herdsman.client.task import Array, Task, node_args_match
from herdsman.client.task_template import TaskTemplateVersion
from herdsman.core.errors import (
    CyclicGraphError,
    DuplicateNodeArgsError,
    EmptyWorkflowError,
    InvalidInputError,
    InvalidResourceError,
    NodeDependencyNotExistError,
    WorkflowValidationError,
    short_traceback,
)
from herdsman.core.limits import UNLIMITED, InputLimits
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import ClusterOut
from herdsman.core.schemas.queries import FailedTaskOut
from herdsman.core.statuses import TaskStatus

if TYPE_CHECKING:
    from herdsman.client.plan import ResumePlan
    from herdsman.client.tool import Tool
    from herdsman.core.schemas.swarm import ConcurrencyOut

# This facade calls bind, execution, control and queries, never the other way round (they take
# a Workflow for typing only). It imports them in the methods that use them: building and
# validating a workflow should not pay for the run machinery's imports (about 60 ms).

__all__ = ["Workflow"]

logger = structlog.get_logger(__name__)

TaskKey = tuple[TaskTemplateVersion, tuple[str, ...]]

_CYCLE_SHOWN = 20


class Workflow:
    """Create with :meth:`Tool.create_workflow`."""

    def __init__(
        self,
        tool: Tool,
        *,
        name: str = "",
        workflow_args: str,
        max_concurrently_running: int = UNLIMITED,
        workflow_attributes: Mapping[str, Any] | Iterable[str] | None = None,
        default_cluster_name: str | None = None,
        default_compute_resources_set: ResourcesByCluster | None = None,
        default_resource_scales: Mapping[str, Any] | None = None,
        default_max_attempts: int | None = None,
        description: str = "",
        chunk_size: int | None = None,
    ) -> None:
        self.tool = tool
        self.name = name
        self.description = description
        self.workflow_args = str(workflow_args)
        self.max_concurrently_running = checks.whole_number(
            max_concurrently_running, "max_concurrently_running", 0
        )
        self.workflow_attributes = checks.attributes(workflow_attributes, "workflow_attributes")
        self.default_cluster_name = default_cluster_name
        self.default_compute_resources_set: ResourcesByCluster = dict(
            default_compute_resources_set or {}
        )
        self.default_resource_scales = (
            None if default_resource_scales is None else dict(default_resource_scales)
        )
        self.default_resource_scales_set: ResourcesByCluster = {}
        self.default_max_attempts = checks.optional_whole_number(
            default_max_attempts, "default_max_attempts", 1
        )
        self.chunk_size = chunk_size
        self.user = getpass.getuser()
        self.workflow_id: int | None = None
        self._tasks: dict[TaskKey, Task] = {}
        self._array_limits: dict[str, int] = {}
        self._resolver: Resolver | None = None
        self._limits: InputLimits | None = None
        # Set by run(), as Jobmon's are.
        self.last_workflow_run_id: int | None = None
        self._num_newly_completed = 0
        self._num_previously_completed = 0
        # Stored tasks the last bind removed (a resume whose script no longer has them).
        self._num_removed_on_bind = 0
        # What the last bind sent, as a fingerprint of the client objects (see bind_if_changed).
        self._bound_fingerprint: int | None = None

    # --- building -----------------------------------------------------------------------------

    @property
    def tasks(self) -> dict[TaskKey, Task]:
        """The workflow's tasks keyed by identity (template version, node args)."""
        return self._tasks

    @property
    def requester(self) -> Requester:
        return self.tool.requester

    @property
    def is_bound(self) -> bool:
        return self.workflow_id is not None

    @property
    def arrays(self) -> dict[str, Array]:
        """The workflow's tasks grouped by template name, as the Arrays they were made in
        (tasks made one by one share one Array per template here)."""
        found: dict[str, Array] = {}
        for task in self._tasks.values():
            name = task.template_version.template.name
            array = found.get(name)
            if array is None:
                array = Array(task.template_version, [], name=name, workflow=self)
                found[name] = array
            array.tasks.append(task)
        return found

    # --- defaults -----------------------------------------------------------------------------

    def set_default_cluster_name(self, cluster_name: str) -> None:
        self.default_cluster_name = cluster_name

    def set_default_max_attempts(self, value: int) -> None:
        self.default_max_attempts = checks.whole_number(value, "max_attempts", 1)

    def set_default_compute_resources_from_dict(
        self, cluster_name: str, dictionary: Mapping[str, Any]
    ) -> None:
        """Resources for the workflow's tasks on ``cluster_name``."""
        self.default_compute_resources_set[cluster_name] = dict(dictionary)

    def set_default_resource_scales_from_dict(
        self, cluster_name: str, dictionary: Mapping[str, Any]
    ) -> None:
        """Resource scales for the workflow's tasks on ``cluster_name``."""
        self.default_resource_scales_set[cluster_name] = dict(dictionary)

    @short_traceback
    def set_default_compute_resources_from_yaml(
        self, cluster_name: str, yaml_file: str | Path
    ) -> None:
        """The file's ``tool_resources`` entry for ``cluster_name`` as this workflow's
        resources there (Jobmon's method of this name does nothing)."""
        from herdsman.client.resources import load_resources_file

        found = load_resources_file(yaml_file).tool_resources
        if cluster_name not in found:
            raise InvalidResourceError(
                f"{yaml_file}: tool_resources has no entry for cluster {cluster_name!r}"
            )
        self.default_compute_resources_set[cluster_name] = dict(found[cluster_name])

    # --- attributes ---------------------------------------------------------------------------

    @short_traceback
    def add_attributes(self, workflow_attributes: Mapping[str, Any]) -> None:
        """Add or update attributes; sent to the server at once if the workflow is bound."""
        added = checks.attributes(workflow_attributes, "workflow_attributes")
        self.workflow_attributes.update(added)
        if self.workflow_id is not None:
            from herdsman.client.attributes import put_workflow_attributes

            put_workflow_attributes(self.requester, self.workflow_id, added)

    def add_task(self, task: Task) -> Task:
        if not isinstance(task, Task):
            raise WorkflowValidationError(f"add_task takes a Task, not {type(task).__name__}")
        key = task.key
        existing = self._tasks.get(key)
        if existing is not None and existing is not task:
            raise DuplicateNodeArgsError(
                f"duplicate task: {task.name!r} has the same template and node args "
                f"{task.node_args} as a task already in the workflow ({existing.name!r}); "
                "give the tasks different node args"
            )
        self._tasks[key] = task
        array = task.array
        if array is not None and array.workflow is None:
            # Tasks from create_tasks bring their array's limit, as add_array does.
            array.workflow = self
            if array.max_concurrently_running is not None:
                name = array.template_version.template.name
                self._array_limits.setdefault(name, array.max_concurrently_running)
        return task

    def add_tasks(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            self.add_task(task)

    def add_array(self, array: Array) -> None:
        if array.max_concurrently_running is not None:
            self.set_task_template_max_concurrency_limit(
                array.template_version.template.name, array.max_concurrently_running
            )
        array.workflow = self
        self.add_tasks(array.tasks)

    def set_task_template_max_concurrency_limit(self, task_template_name: str, limit: int) -> None:
        """At most ``limit`` tasks of this template run at once in this workflow."""
        self._array_limits[task_template_name] = checks.whole_number(limit, "concurrency limit", 0)

    def array_limit(self, version: TaskTemplateVersion) -> int:
        return self._array_limits.get(version.template.name, UNLIMITED)

    def get_tasks_by_node_args(self, task_template_name: str, **node_args: Any) -> list[Task]:
        """Tasks of the template whose node args have these values; a list, tuple, set or
        range means any of its values. Raises for a template or node arg the workflow lacks."""
        found = []
        known: set[str] = set()
        seen_template = False
        for (version, _), task in self._tasks.items():
            if version.template.name != task_template_name:
                continue
            seen_template = True
            known.update(version.node_args)
            if not set(node_args) <= set(version.node_args):
                continue  # another version of the template, with other node args
            if node_args_match(task, node_args):
                found.append(task)
        if not seen_template:
            names = sorted({version.template.name for version, _ in self._tasks})
            raise WorkflowValidationError(
                f"the workflow has no tasks of template {task_template_name!r}; its templates "
                f"are {names}"
            )
        if not set(node_args) <= known:
            raise WorkflowValidationError(
                f"template {task_template_name!r} has no node args "
                f"{sorted(set(node_args) - known)}; its node args are {sorted(known)}"
            )
        return found

    @property
    def task_errors(self) -> dict[str, dict[str, Any] | None]:
        """Errors of the tasks that ended fatally in the last run, by task name."""
        return {
            task.name: task.get_errors()
            for task in self._tasks.values()
            if task._final_status == TaskStatus.ERROR_FATAL
        }

    # --- validation ---------------------------------------------------------------------------

    @short_traceback
    def validate(self, strict: bool = True, raise_on_error: bool = True) -> None:
        """Raise if the workflow cannot be bound; talks to the server only to read clusters
        and the limits it puts on input (the length of commands, argument values, ...).

        Jobmon's arguments: ``strict`` is accepted and changes nothing (herdsman never coerces
        resources to fit a queue); ``raise_on_error=False`` logs the problem instead.
        """
        try:
            self._validate()
        except InvalidInputError as error:
            if raise_on_error:
                raise
            logger.warning("workflow_invalid", error=str(error))

    def _validate(self) -> None:
        if not self._tasks:
            raise EmptyWorkflowError("the workflow has no tasks; add some with add_tasks()")
        self._check_upstreams()
        self._check_acyclic()
        # A fresh resolver each time: defaults may have changed since the last validation.
        resolver = Resolver(self, self._get_cluster)
        self._limits = bind_requests.get_limits(self.requester)
        checker = InputChecker(self._limits)
        checker.check_workflow(self)
        for task in self._tasks.values():
            resolver.resources(task)
            checker.check_task(task)
        self._resolver = resolver
        logger.info("workflow_validated", tasks=len(self._tasks))

    def limits(self) -> InputLimits:
        """The server's input limits found by the last validation (bind sizes its requests by
        them); the server's current ones if none ran yet."""
        if self._limits is None:
            self._limits = bind_requests.get_limits(self.requester)
        return self._limits

    def resolver(self) -> Resolver:
        """The resolver of the last validation (bind uses it); a new one if none ran yet."""
        if self._resolver is None:
            self._resolver = Resolver(self, self._get_cluster)
        return self._resolver

    def _get_cluster(self, name: str) -> ClusterOut:
        return bind_requests.get_cluster(self.requester, name)

    def _check_upstreams(self) -> None:
        tasks = self._tasks
        for task in tasks.values():
            for upstream in task.iter_upstream():
                if tasks.get(upstream.key) is not upstream:
                    raise NodeDependencyNotExistError(
                        f"task {task.name!r} depends on task {upstream.name!r}, which is not in "
                        "the workflow; add it with workflow.add_task()"
                    )

    def _check_acyclic(self) -> None:
        """Kahn's algorithm on the tasks' own scratch counters; raise naming a cycle.

        graphlib would copy the graph into its own node objects, which for a million tasks
        costs seconds and hundreds of megabytes; counting down upstreams in place does not.
        """
        tasks = self._tasks
        ready = []
        for task in tasks.values():
            task._mark = len(task._upstream) if task._upstream else 0
            if task._mark == 0:
                ready.append(task)
        ordered = 0
        while ready:
            task = ready.pop()
            ordered += 1
            for downstream in task.iter_downstream():
                if tasks.get(downstream.key) is downstream:
                    downstream._mark -= 1
                    if downstream._mark == 0:
                        ready.append(downstream)
        if ordered < len(tasks):
            cycle = _a_cycle(task for task in tasks.values() if task._mark > 0)
            names = [task.name for task in cycle[:_CYCLE_SHOWN]]
            more = f" (and {len(cycle) - _CYCLE_SHOWN} more)" if len(cycle) > _CYCLE_SHOWN else ""
            raise CyclicGraphError(
                f"the tasks form a cycle: {' -> '.join(names)}{more}; remove one of these "
                "dependencies",
                details={"cycle": names},
            )

    # --- binding ------------------------------------------------------------------------------

    @short_traceback
    def bind(self, resume: bool = False) -> int:
        """Validate, then write the workflow and its tasks to the server; return its id.

        Binding again keeps what is stored for done tasks; tasks that are not done take this
        script's command, name, max_attempts, resources, scales and fallback queues. With
        ``resume``, the workflow may also have new tasks, dependencies or commands, and stored
        tasks the script no longer has are removed from it (kept in the database for the
        record): see :meth:`plan` for the rule and for what it would do.
        """
        from herdsman.client.bind import Binder

        self.validate()
        binder = Binder(self, resume=resume)
        self.workflow_id = binder.bind()
        self._num_removed_on_bind = binder.removed
        self._bound_fingerprint = self._fingerprint()
        return self.workflow_id

    def bind_if_changed(self, *, resume: bool = False) -> int:
        """Bind unless the last bind of this object sent exactly what binding now would send.

        ``run()`` calls this, so a script that called ``bind()`` first (to read the workflow
        id, say) does not send a 100k-task workflow twice. Any change since -- tasks, edges,
        names, arguments, resources, scales, attributes, limits, defaults on the workflow, its
        templates or tool -- makes it bind again, which is idempotent and writes only what is
        new.
        """
        if self.workflow_id is not None and self._bound_fingerprint == self._fingerprint():
            logger.info("workflow_bind_skipped", workflow_id=self.workflow_id)
            return self.workflow_id
        return self.bind(resume=resume)

    def _fingerprint(self) -> int:
        """A hash of everything a bind sends, computed from the client objects alone.

        It lives only in this process (Python's hash is salted per process), which is all it
        needs: it compares this object with itself. Mutable settings (resource dicts, scales,
        attributes) enter by ``repr``, so a change made in place is seen too. About 2 µs a
        task, against the round trips of a bind.
        """
        tool = self.tool
        owners: dict[int, object] = {id(self): self, id(tool): tool}
        for version, _ in self._tasks:
            owners.setdefault(id(version.template), version.template)
        state = hash(
            (
                id(self.requester),
                tool.active_tool_version_id,
                self.name,
                self.description,
                self.workflow_args,
                self.max_concurrently_running,
                repr(self.workflow_attributes),
                repr(sorted(self._array_limits.items())),
                self.chunk_size,
                tuple(_settings(owner) for owner in owners.values()),
                len(self._tasks),
            )
        )
        for task in self._tasks.values():
            state = hash((state, _task_state(task)))
        return state

    @short_traceback
    def plan(self) -> ResumePlan:
        """What ``run(resume=True)`` would do, asked of the server; nothing is written.

        Within a workflow (tool + ``workflow_args``) a task is its template's name and its
        node-arg values. A done task is reused when its command and every task upstream of it
        are unchanged; new tasks, done tasks whose command changed, tasks not done, and done
        tasks downstream of any of those run. ``print(workflow.plan())`` shows the counts and
        the tasks that would run, with old and new commands.
        """
        from herdsman.client.plan import plan_workflow

        return plan_workflow(self)

    @short_traceback
    def run(
        self,
        fail_fast: bool = False,
        seconds_until_timeout: int = 36_000,
        resume: bool = False,
        reset_running_jobs: bool = True,
        distributor_startup_timeout: float = 180.0,
        resume_timeout: float = 300.0,
        configure_logging: bool = False,
        progress: bool = True,
        **swarm_options: Any,
    ) -> str:
        """Bind, run every task to the end, and return the run's final status letter.

        After an explicit :meth:`bind` with nothing changed since, the workflow is not sent
        again (see :meth:`bind_if_changed`).

        ``"D"`` when every task is done; ``"E"`` when tasks failed or fail_fast stopped the
        run; ``"S"`` when the run was stopped with ``herdsman workflow stop``. As in Jobmon, a
        run that passes ``seconds_until_timeout`` raises
        :class:`~herdsman.core.errors.RunTimedOutError` (a ``RuntimeError``) and one whose
        distributor dies raises :class:`~herdsman.core.errors.DistributorNotAlive`, after the
        run has ended. A confirmed Ctrl-C stops the run and raises
        :class:`~herdsman.core.errors.RunInterrupted`. Afterwards each task's
        ``final_status`` is set and :meth:`get_errors` reports the failed tasks.
        ``configure_logging`` is accepted for Jobmon's scripts; herdsman's logging follows
        ``HERDSMAN_LOG_LEVEL``.

        On stderr: live progress (a bar at a terminal, a line every 30 s otherwise; none with
        ``progress=False``) and, always, a summary of how the run ended and what to run next.
        The timeout counts from the start of the run's distributors, so ``run()`` returns
        promptly once it passes.

        ``resume`` continues a workflow that ran before: only one run holds a workflow, so
        the earlier run is told to let go first. ``reset_running_jobs`` (cold) kills the jobs
        it left running; without it (hot) they may finish and their results count. The new
        run waits up to ``resume_timeout`` seconds for the earlier run's kills to be
        confirmed, then takes over regardless. ``swarm_options`` go to
        :class:`herdsman.client.swarm.workflow_run.WorkflowRun`.
        """
        from herdsman.client.execution import run_workflow
        from herdsman.client.plan import plan_only_target, write_plan_and_exit

        target = plan_only_target()
        if target is not None:  # under ``herdsman workflow plan SCRIPT``: plan, run nothing
            write_plan_and_exit(self, target)
        del configure_logging  # herdsman's logging is set up by its settings, not per run
        try:
            return run_workflow(
                self,
                fail_fast=fail_fast,
                seconds_until_timeout=seconds_until_timeout,
                resume=resume,
                reset_running_jobs=reset_running_jobs,
                distributor_startup_timeout=distributor_startup_timeout,
                progress=progress,
                swarm_options={**swarm_options, "resume_timeout": resume_timeout},
            )
        finally:
            # A run changes the tasks' statuses on the server: a later run binds again, which
            # reads them back, instead of trusting this object's copy.
            self._bound_fingerprint = None

    @short_traceback
    def get_errors(self, limit: int = 1000) -> dict[int, FailedTaskOut]:
        """Fatal tasks of the workflow: task id -> its last errors and output tails."""
        if self.workflow_id is None:
            raise WorkflowValidationError("the workflow is not bound yet; bind() or run() it first")
        from herdsman.client.queries import workflow_errors

        reply = workflow_errors(self.requester, self.workflow_id, limit)
        return {task.task_id: task for task in reply.tasks}

    @short_traceback
    def set_max_concurrently_running(
        self, limit: int, task_template_name: str | None = None
    ) -> ConcurrencyOut:
        """Change the bound workflow's limit (or one template's) on the server, e.g. while it runs.

        The running swarm obeys it from its next heartbeat; 0 pauses launching. This object's
        own settings are left as they were, so binding it again (a resume) keeps the value set
        here; a script that binds a different limit replaces it. Returns the limits in force.
        """
        from herdsman.client.control import set_max_concurrently_running

        if self.workflow_id is None:
            raise WorkflowValidationError("the workflow is not bound yet; bind() or run() it first")
        return set_max_concurrently_running(
            self.workflow_id,
            limit,
            task_template_name=task_template_name,
            requester=self.requester,
        )

    def __repr__(self) -> str:
        return (
            f"Workflow(name={self.name!r}, workflow_args={self.workflow_args!r}, "
            f"tasks={len(self._tasks)}, workflow_id={self.workflow_id})"
        )


_DEFAULTS = (
    "default_cluster_name",
    "default_compute_resources_set",
    "default_resource_scales",
    "default_resource_scales_set",
    "default_max_attempts",
)


def _settings(owner: object) -> str:
    """The defaults a workflow, template or tool hands down to tasks, as one string."""
    return repr([getattr(owner, name, None) for name in _DEFAULTS])


def _task_state(task: Task) -> int:
    """A hash of what binding sends for one task (its identity, settings and upstreams)."""
    upstream = task._upstream
    return hash(
        (
            id(task),
            task._name,
            task.template_version.id,
            task.node_values,
            task.task_values,
            task.op_values,
            repr(task.compute_resources) if task.compute_resources else None,
            id(task.compute_resources_callable),
            repr(task.resource_scales) if task.resource_scales else None,
            repr(task.fallback_queues) if task.fallback_queues else None,
            task.max_attempts,
            task.cluster_name,
            repr(task.task_attributes) if task.task_attributes else None,
            frozenset(map(id, upstream)) if upstream else None,
        )
    )


def _a_cycle(unordered: Iterable[Task]) -> list[Task]:
    """A cycle among tasks Kahn's algorithm could not order, as upstream -> downstream.

    Each such task has an unordered upstream, so walking upstream from any of them must come
    back to a task already on the path.
    """
    start = next(iter(unordered))
    path: list[Task] = []
    position: dict[Task, int] = {}
    task = start
    while task not in position:
        position[task] = len(path)
        path.append(task)
        task = next(up for up in task.iter_upstream() if up._mark > 0)
    cycle = path[position[task] :]
    cycle.reverse()
    return [*cycle, cycle[0]]
