"""TaskTemplate: a named kind of task with a command template and its argument split.

A template's *version* is its command template plus which arguments are node args (they make
a task's identity), task args (they vary per workflow without changing the node) and op args
(operational details that never change identity). Asking a tool for a template with the same
name but another command or split makes a new version, which becomes the active one.

A command template is a shell command: each ``{name}`` is replaced by the argument's value as
it is, and the result runs as ``bash -c COMMAND``. A value with spaces, quotes, ``;`` or ``$``
changes the command's meaning. ``{name!q}`` pastes the value quoted for the shell instead
(:func:`shlex.quote`), so it reaches the program as one argument, whatever it holds.
"""

from __future__ import annotations

import hashlib
import itertools
import shlex
import string
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from herdsman.client import checks
from herdsman.client.resources import ResourcesByCluster, load_resources_file
from herdsman.client.task import Array, ResourcesCallable, Task, validate_explicit_task_name
from herdsman.core.errors import InvalidResourceError, WorkflowValidationError, short_traceback

if TYPE_CHECKING:
    from herdsman.client.tool import Tool

__all__ = ["TaskTemplate", "TaskTemplateVersion"]

_MAX_DEFAULT_NAME = 255

# Keyword parameters of create_task/create_tasks/create_array; template args cannot use them.
RESERVED_ARGUMENT_NAMES = frozenset(
    {
        "name",
        "upstream_tasks",
        "task_attributes",
        "max_attempts",
        "compute_resources",
        "compute_resources_callable",
        "resource_scales",
        "fallback_queues",
        "cluster_name",
        "max_concurrently_running",
    }
)
_ITERABLE_TYPES = (list, tuple, range, set, frozenset)


def _as_str(value: object) -> str:
    return value if type(value) is str else str(value)


class TaskTemplateVersion:
    """One command template and argument split of a template; compares by identity."""

    def __init__(
        self,
        template: TaskTemplate,
        command_template: str,
        node_args: Iterable[str],
        task_args: Iterable[str],
        op_args: Iterable[str],
    ) -> None:
        self.template = template
        self.command_template = command_template
        self.node_args = tuple(node_args)
        self.task_args = tuple(task_args)
        self.op_args = tuple(op_args)
        self.arg_names = frozenset(self.node_args + self.task_args + self.op_args)
        self._check_arguments()
        self._positional_command, self._quoted = _positional(
            command_template, self.node_args + self.task_args + self.op_args
        )
        self._check_renders()
        self.id: int | None = None
        self.arg_ids: dict[str, int] = {}
        self._last_values: tuple[str, ...] = ()

    def _check_arguments(self) -> None:
        declared = self.node_args + self.task_args + self.op_args
        clashing = sorted(set(declared) & RESERVED_ARGUMENT_NAMES)
        if clashing:
            raise WorkflowValidationError(
                f"template {self.template.name!r}: argument(s) {clashing} have the names of "
                "create_task's own parameters and could never be passed; rename them"
            )
        duplicated = sorted({name for name in declared if declared.count(name) > 1})
        if duplicated:
            raise WorkflowValidationError(
                f"template {self.template.name!r}: argument(s) {duplicated} are listed more than "
                "once across node_args, task_args and op_args; each belongs to one kind"
            )
        try:
            fields = {
                name.split(".")[0].split("[")[0]
                for _, name, _, _ in string.Formatter().parse(self.command_template)
                if name is not None
            }
        except ValueError as error:
            raise WorkflowValidationError(
                f"template {self.template.name!r}: command template "
                f"{self.command_template!r} is not a valid format string ({error})"
            ) from None
        if "" in fields:
            raise WorkflowValidationError(
                f"template {self.template.name!r}: command template uses '{{}}'; name every "
                "field, e.g. '{input_file}'"
            )
        missing = sorted(fields - self.arg_names)
        unused = sorted(self.arg_names - fields)
        if missing or unused:
            problems = []
            if missing:
                problems.append(f"uses {missing} which are not declared as node, task or op args")
            if unused:
                problems.append(f"does not use declared args {unused}")
            raise WorkflowValidationError(
                f"template {self.template.name!r}: command template {self.command_template!r} "
                + " and ".join(problems)
            )

    def _check_renders(self) -> None:
        """Refuse templates that only fail later, when a task's command is rendered.

        Argument values are strings, so attribute access (``{path.stem}``), numeric formats
        (``{x:.2f}``) and fields nested in a format spec (``{a:>{width}}``) cannot work, nor
        can conversions other than ``!q`` (quoted for the shell), ``!s``, ``!r`` and ``!a``.
        """
        sample = ("x",) * len(self.arg_names)
        try:
            self.render(sample, (), ())
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
            raise WorkflowValidationError(
                f"template {self.template.name!r}: command template {self.command_template!r} "
                f"cannot be filled with argument values, which are strings ({error!r}); use "
                "plain fields like '{name}', quoted ones like '{name!q}', or a string format "
                "such as '{name:>10}'"
            ) from None

    def share(self, values: tuple[str, ...]) -> tuple[str, ...]:
        """Reuse the previous equal tuple, so an array's identical task args cost one tuple."""
        if values == self._last_values:
            return self._last_values
        self._last_values = values
        return values

    def argument_error(self, given: Iterable[str]) -> WorkflowValidationError:
        given_set = set(given)
        missing = sorted(self.arg_names - given_set)
        extra = sorted(given_set - self.arg_names)
        parts = []
        if missing:
            parts.append(f"missing {missing}")
        if extra:
            parts.append(f"unexpected {extra}")
        return WorkflowValidationError(
            f"template {self.template.name!r}: arguments {', '.join(parts)}; it takes node args "
            f"{list(self.node_args)}, task args {list(self.task_args)} and op args "
            f"{list(self.op_args)}"
        )

    def render(
        self, node_values: tuple[str, ...], task_values: tuple[str, ...], op_values: tuple[str, ...]
    ) -> str:
        """The command of a task with these argument values, each in its declared order.

        Fills the positional form that :meth:`_check_renders` tried, so a template that passed
        the check renders the same way for every task. Values of ``{name!q}`` fields are
        quoted for the shell; the others are pasted as they are.
        """
        values = (*node_values, *task_values, *op_values)
        if self._quoted:
            values += tuple(shlex.quote(values[position]) for position in self._quoted)
        return self._positional_command.format(*values)

    def default_task_name(self, node_values: tuple[str, ...]) -> str:
        parts = [self.template.name]
        parts.extend(
            f"{arg}-{value}" for arg, value in zip(self.node_args, node_values, strict=True)
        )
        name = "_".join(parts)
        name = (
            "".join(c if c.isprintable() else "_" for c in name) if not name.isprintable() else name
        )
        if len(name) > _MAX_DEFAULT_NAME:
            digest = hashlib.sha256(name.encode()).hexdigest()[:16]
            name = f"{name[: _MAX_DEFAULT_NAME - 17]}_{digest}"
        return name

    def __repr__(self) -> str:
        return (
            f"TaskTemplateVersion(template={self.template.name!r}, "
            f"command_template={self.command_template!r}, id={self.id})"
        )


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _positional(command_template: str, arg_order: tuple[str, ...]) -> tuple[str, tuple[int, ...]]:
    """The command template with each named field replaced by its position in ``arg_order``,
    and the positions of the args used quoted (``!q``).

    Rendering a million commands with ``str.format(*values)`` avoids building a dict per task.
    ``str.format`` knows no ``!q``: a quoted field refers instead to a position after the
    args, where :meth:`TaskTemplateVersion.render` puts the quoted value.
    """
    index = {name: position for position, name in enumerate(arg_order)}
    quoted: list[int] = []
    parts = []
    for literal, field, spec, conversion in string.Formatter().parse(command_template):
        parts.append(_escape(literal))
        if field is not None:
            root = field.split(".")[0].split("[")[0]
            position = index[root]
            if conversion == "q":
                if position not in quoted:
                    quoted.append(position)
                position = len(arg_order) + quoted.index(position)
                conversion = None
            parts.append("{" + str(position) + field[len(root) :])
            parts.append(f"!{conversion}" if conversion else "")
            parts.append(f":{spec}}}" if spec else "}")
    return "".join(parts), tuple(quoted)


class TaskTemplate:
    """A kind of task of a tool. Get one with :meth:`Tool.get_task_template`."""

    def __init__(self, tool: Tool, name: str) -> None:
        if not isinstance(name, str) or not name or len(name) > 255:
            raise WorkflowValidationError(
                f"template name {name!r} must be a non-empty string of at most 255 characters"
            )
        self.tool = tool
        self.name = name
        self.versions: list[TaskTemplateVersion] = []
        self.active_task_template_version: TaskTemplateVersion | None = None
        self.default_cluster_name: str | None = None
        self.default_compute_resources_set: ResourcesByCluster = {}
        self.default_resource_scales: dict[str, Any] | None = None
        self.default_resource_scales_set: ResourcesByCluster = {}
        self.default_max_attempts: int | None = None
        self.id: int | None = None

    @property
    def template_name(self) -> str:
        return self.name

    @property
    def is_bound(self) -> bool:
        return self.id is not None

    @property
    def task_template_versions(self) -> list[TaskTemplateVersion]:
        return self.versions

    @property
    def active_version(self) -> TaskTemplateVersion:
        if self.active_task_template_version is None:
            raise WorkflowValidationError(f"template {self.name!r} has no command template yet")
        return self.active_task_template_version

    def use_version(
        self,
        command_template: str,
        node_args: Iterable[str],
        task_args: Iterable[str],
        op_args: Iterable[str],
    ) -> TaskTemplateVersion:
        """The version with this command and split, created (and made active) if new."""
        wanted = (command_template, tuple(node_args), tuple(task_args), tuple(op_args))
        for version in self.versions:
            have = (version.command_template, version.node_args, version.task_args, version.op_args)
            if have == wanted:
                self.active_task_template_version = version
                return version
        version = TaskTemplateVersion(self, *wanted)
        self.versions.append(version)
        self.active_task_template_version = version
        return version

    def get_task_template_version(
        self,
        command_template: str,
        node_args: Iterable[str] | None = None,
        task_args: Iterable[str] | None = None,
        op_args: Iterable[str] | None = None,
        default_cluster_name: str = "",
        default_compute_resources: Mapping[str, Any] | None = None,
        default_resource_scales: Mapping[str, Any] | None = None,
        default_max_attempts: int | None = None,
    ) -> TaskTemplateVersion:
        """The version with this command and split, created if new, and made active.

        The defaults given apply to the template (herdsman keeps defaults per template, not
        per version).
        """
        if default_compute_resources is not None and not default_cluster_name:
            raise WorkflowValidationError(
                f"template {self.name!r}: default_compute_resources need default_cluster_name"
            )
        version = self.use_version(
            command_template, node_args or (), task_args or (), op_args or ()
        )
        if default_cluster_name:
            self.default_cluster_name = default_cluster_name
        if default_compute_resources is not None:
            self.set_default_compute_resources_from_dict(
                default_cluster_name, default_compute_resources
            )
        if default_resource_scales is not None:
            self.set_default_resource_scales(default_resource_scales)
        if default_max_attempts is not None:
            self.set_default_max_attempts(default_max_attempts)
        return version

    def set_active_task_template_version(self, task_template_version: TaskTemplateVersion) -> None:
        """Make this version (one of this template's) the one new tasks use."""
        if task_template_version.template is not self:
            raise WorkflowValidationError(
                f"{task_template_version!r} is a version of another template than {self.name!r}"
            )
        if task_template_version not in self.versions:
            self.versions.append(task_template_version)
        self.active_task_template_version = task_template_version

    def set_active_task_template_version_id(
        self, task_template_version_id: int | str = "latest"
    ) -> None:
        """Make the version with this id (``"latest"``: the newest one) active.

        Ids are given when a workflow binds; ``"latest"`` works before that too.
        """
        if not self.versions:
            raise WorkflowValidationError(
                f"template {self.name!r} has no versions; create one with "
                "get_task_template_version() or tool.get_task_template()"
            )
        if task_template_version_id == "latest":
            self.active_task_template_version = self.versions[-1]
            return
        for version in self.versions:
            if version.id is not None and version.id == int(task_template_version_id):
                self.active_task_template_version = version
                return
        known = [version.id for version in self.versions if version.id is not None]
        raise WorkflowValidationError(
            f"template {self.name!r} has no version with id {task_template_version_id!r}; "
            f"the ids of its bound versions are {known}"
        )

    def load_task_template_versions(self) -> None:
        """Nothing to load: a template's versions are the ones this process asked for."""

    def resource_usage(
        self,
        workflows: Iterable[int] | None = None,
        node_args: Mapping[str, Any] | None = None,
        ci: float | None = None,
    ) -> dict[str, Any] | None:
        """What done tasks of this template used: ``num_tasks``, ``min/max/mean/median_mem``
        (bytes, with a ``B``), ``min/max/mean/median_runtime`` (seconds); None without data.

        ``ci`` is not supported (herdsman reports percentiles instead: ``herdsman resources
        usage``); ``ci_mem`` and ``ci_runtime`` are None.
        """
        from herdsman.client.queries import resource_usage

        usage = resource_usage(
            self.tool.requester,
            self.name,
            list(workflows or ()),
            tool=self.tool.name,
            node_args={str(k): str(v) for k, v in (node_args or {}).items()},
        )
        if not usage.templates:
            return None
        found = usage.templates[0]
        result: dict[str, Any] = {"num_tasks": found.attempts, "ci_mem": None, "ci_runtime": None}
        for name, stats, scale, suffix in (
            ("mem", found.memory, 2**30, "B"),
            ("runtime", found.runtime, 1, ""),
        ):
            for stat in ("min", "max", "mean", "median"):
                value = None if stats is None else getattr(stats, stat)
                if value is not None and suffix:
                    value = f"{round(value * scale)}{suffix}"
                result[f"{stat}_{name}"] = value
        return result

    # --- defaults -----------------------------------------------------------------------------

    def set_default_cluster_name(self, cluster_name: str) -> None:
        self.default_cluster_name = cluster_name

    def set_default_compute_resources_from_dict(
        self, cluster_name: str, compute_resources: Mapping[str, Any]
    ) -> None:
        """Resources on ``cluster_name`` (the template's default cluster is left as it is)."""
        self.default_compute_resources_set[cluster_name] = dict(compute_resources)

    def update_default_compute_resources(self, cluster_name: str, **resources: Any) -> None:
        self.default_compute_resources_set.setdefault(cluster_name, {}).update(resources)

    def set_default_resource_scales_from_dict(
        self, cluster_name: str, resource_scales: Mapping[str, Any]
    ) -> None:
        """Scales for tasks on ``cluster_name`` (the default cluster is left as it is)."""
        self.default_resource_scales_set[cluster_name] = dict(resource_scales)

    def update_default_resource_scales(self, cluster_name: str, **resource_scales: Any) -> None:
        self.default_resource_scales_set.setdefault(cluster_name, {}).update(resource_scales)

    @short_traceback
    def set_default_compute_resources_from_yaml(
        self, yaml_file: str | Path, default_cluster_name: str = ""
    ) -> None:
        """This template's ``task_template_resources`` on one cluster (the template's default
        cluster unless named) from a resources file."""
        cluster = self._cluster_for_yaml(default_cluster_name)
        section = load_resources_file(yaml_file).task_template_resources
        self.default_compute_resources_set[cluster] = dict(
            self._section_entry(section, cluster, yaml_file, "task_template_resources")
        )

    @short_traceback
    def set_default_resource_scales_from_yaml(
        self, yaml_file: str | Path, default_cluster_name: str = ""
    ) -> None:
        """This template's ``task_template_scales`` on one cluster from a resources file."""
        cluster = self._cluster_for_yaml(default_cluster_name)
        section = load_resources_file(yaml_file).task_template_scales
        self.default_resource_scales_set[cluster] = dict(
            self._section_entry(section, cluster, yaml_file, "task_template_scales")
        )

    def _cluster_for_yaml(self, given: str) -> str:
        cluster = given or self.default_cluster_name
        if not cluster:
            raise WorkflowValidationError(
                f"template {self.name!r}: name the cluster (default_cluster_name) to read "
                "from the file, or set the template's default cluster first"
            )
        return cluster

    def _section_entry(
        self, section: dict[str, ResourcesByCluster], cluster: str, path: object, kind: str
    ) -> dict[str, Any]:
        entry = section.get(self.name, {}).get(cluster)
        if entry is None:
            raise InvalidResourceError(
                f"{path}: {kind} has no entry for template {self.name!r} on cluster {cluster!r}"
            )
        return entry

    def set_default_resource_scales(self, resource_scales: Mapping[str, Any]) -> None:
        self.default_resource_scales = dict(resource_scales)

    def set_default_max_attempts(self, max_attempts: int) -> None:
        self.default_max_attempts = checks.whole_number(max_attempts, "max_attempts", 1)

    # --- tasks --------------------------------------------------------------------------------

    @short_traceback
    def create_task(
        self,
        name: str | None = None,
        upstream_tasks: Iterable[Task] | None = None,
        task_attributes: Mapping[str, Any] | Iterable[str] | None = None,
        max_attempts: int | None = None,
        compute_resources: dict[str, Any] | ResourcesCallable | None = None,
        compute_resources_callable: ResourcesCallable | None = None,
        resource_scales: dict[str, Any] | None = None,
        cluster_name: str | None = None,
        fallback_queues: list[str] | None = None,
        **kwargs: Any,
    ) -> Task:
        """A task of this template; ``kwargs`` give every node, task and op arg by name.

        An explicit ``name`` may not start with a digit nor hold spaces, quotes or slashes
        (cluster job names); ``compute_resources`` may be a callable, as
        ``compute_resources_callable``.
        """
        version = self.active_version
        if kwargs.keys() != version.arg_names:
            raise version.argument_error(kwargs)
        resources, resources_callable = _split_resources(
            compute_resources, compute_resources_callable
        )
        task = Task(
            version,
            tuple(_as_str(kwargs[arg]) for arg in version.node_args),
            version.share(tuple(_as_str(kwargs[arg]) for arg in version.task_args)),
            tuple(_as_str(kwargs[arg]) for arg in version.op_args),
            name=None if not name else validate_explicit_task_name(name),
            compute_resources=checks.compute_resources(resources),
            compute_resources_callable=resources_callable,
            resource_scales=resource_scales,
            fallback_queues=checks.fallback_queues(fallback_queues),
            max_attempts=None
            if max_attempts is None
            else checks.whole_number(max_attempts, "max_attempts", 1),
            cluster_name=cluster_name or None,
            task_attributes=_task_attributes(task_attributes),
        )
        if upstream_tasks:
            task.add_upstreams(upstream_tasks)
        return task

    @short_traceback
    def create_tasks(
        self,
        max_attempts: int | None = None,
        upstream_tasks: Iterable[Task] | None = None,
        max_concurrently_running: int | None = None,
        compute_resources: dict[str, Any] | ResourcesCallable | None = None,
        compute_resources_callable: ResourcesCallable | None = None,
        resource_scales: dict[str, Any] | None = None,
        cluster_name: str | None = None,
        name: str | None = None,
        task_attributes: Mapping[str, Any] | Iterable[str] | None = None,
        fallback_queues: list[str] | None = None,
        **kwargs: Any,
    ) -> list[Task]:
        """Tasks for the cross product of node-arg values; task and op args are shared.

        A node arg given a list, tuple, range or set expands; any other value is used as is.
        The tasks share an :class:`Array` (``task.array``) named ``name``, whose
        ``max_concurrently_running`` becomes the template's limit in the workflow.
        """
        return self.create_array(
            upstream_tasks=upstream_tasks,
            task_attributes=task_attributes,
            max_attempts=max_attempts,
            compute_resources=compute_resources,
            compute_resources_callable=compute_resources_callable,
            resource_scales=resource_scales,
            fallback_queues=fallback_queues,
            cluster_name=cluster_name,
            max_concurrently_running=max_concurrently_running,
            name=name,
            **kwargs,
        ).tasks

    @short_traceback
    def create_array(
        self,
        upstream_tasks: Iterable[Task] | None = None,
        task_attributes: Mapping[str, Any] | Iterable[str] | None = None,
        max_attempts: int | None = None,
        compute_resources: dict[str, Any] | ResourcesCallable | None = None,
        compute_resources_callable: ResourcesCallable | None = None,
        resource_scales: dict[str, Any] | None = None,
        fallback_queues: list[str] | None = None,
        cluster_name: str | None = None,
        max_concurrently_running: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> Array:
        """Like :meth:`create_tasks`, returning the :class:`Array`."""
        settings: dict[str, Any] = {
            "upstream_tasks": upstream_tasks,
            "task_attributes": task_attributes,
            "max_attempts": max_attempts,
            "compute_resources": compute_resources,
            "compute_resources_callable": compute_resources_callable,
            "resource_scales": resource_scales,
            "fallback_queues": fallback_queues,
            "cluster_name": cluster_name,
        }
        array = self.build_array(self.active_version, kwargs, settings)
        array.max_concurrently_running = checks.optional_whole_number(
            max_concurrently_running, "max_concurrently_running", 0
        )
        if name:
            array.name = name
        return array

    def build_array(
        self, version: TaskTemplateVersion, kwargs: Mapping[str, Any], settings: Mapping[str, Any]
    ) -> Array:
        """The tasks of ``version`` for every combination of node-arg values, in an Array that
        remembers the task args, op args and settings (for :meth:`Array.create_tasks`)."""
        if kwargs.keys() != version.arg_names:
            raise version.argument_error(kwargs)
        for arg in version.task_args + version.op_args:
            if isinstance(kwargs[arg], _ITERABLE_TYPES):
                raise WorkflowValidationError(
                    f"template {self.name!r}: task/op arg {arg!r} got a "
                    f"{type(kwargs[arg]).__name__}; only node args expand into several tasks, "
                    "task and op args are shared"
                )
        axes = [
            [_as_str(v) for v in value] if isinstance(value, _ITERABLE_TYPES) else [_as_str(value)]
            for value in (kwargs[arg] for arg in version.node_args)
        ]
        task_values = tuple(_as_str(kwargs[arg]) for arg in version.task_args)
        op_values = tuple(_as_str(kwargs[arg]) for arg in version.op_args)
        upstreams = list(settings.get("upstream_tasks") or ())
        resources, resources_callable = _split_resources(
            settings.get("compute_resources"), settings.get("compute_resources_callable")
        )
        checked_resources = checks.compute_resources(resources)
        queues = checks.fallback_queues(settings.get("fallback_queues"))
        attempts = checks.optional_whole_number(settings.get("max_attempts"), "max_attempts", 1)
        attributes = _task_attributes(settings.get("task_attributes"))
        scales = settings.get("resource_scales")
        cluster = settings.get("cluster_name") or None
        tasks = []
        for node_values in itertools.product(*axes):
            task = Task(
                version,
                node_values,
                task_values,
                op_values,
                compute_resources=checked_resources,
                compute_resources_callable=resources_callable,
                resource_scales=scales,
                fallback_queues=queues,
                max_attempts=attempts,
                cluster_name=cluster,
                task_attributes=attributes,
            )
            if upstreams:
                task.add_upstreams(upstreams)
            tasks.append(task)
        return Array(
            version,
            tasks,
            task_args={arg: kwargs[arg] for arg in version.task_args},
            op_args={arg: kwargs[arg] for arg in version.op_args},
            settings=dict(settings),
        )

    def __repr__(self) -> str:
        return f"TaskTemplate(name={self.name!r}, versions={len(self.versions)})"


def _split_resources(
    resources: dict[str, Any] | ResourcesCallable | None, function: ResourcesCallable | None
) -> tuple[dict[str, Any] | None, ResourcesCallable | None]:
    """Jobmon also takes the callable as ``compute_resources``; both at once is ambiguous."""
    if callable(resources):
        if function is not None:
            raise WorkflowValidationError(
                "compute_resources is a callable and compute_resources_callable is given too; "
                "pass one of them"
            )
        return None, resources
    return resources, function


def _task_attributes(value: Mapping[str, Any] | Iterable[str] | None) -> dict[str, str] | None:
    """None stays None: a task without attributes keeps no dict (a million tasks are many)."""
    return None if value is None else checks.attributes(value, "task_attributes")
