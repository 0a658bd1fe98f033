"""Tool: the project or pipeline a workflow belongs to, with versions and defaults.

A Tool is the top of the resource resolution chain and the owner of task templates. Nothing is
sent to the server until it is needed (an id is asked for, or a workflow binds), so a workflow
can be built and validated offline and a tool that is never used costs nothing.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from herdsman.client import bind_requests, checks
from herdsman.client.resources import ResourcesByCluster, load_resources_file
from herdsman.client.task_template import TaskTemplate
from herdsman.client.workflow import Workflow
from herdsman.core import task_generator
from herdsman.core.errors import (
    InvalidResourceError,
    InvalidToolError,
    InvalidToolVersionError,
    WorkflowValidationError,
    short_traceback,
)
from herdsman.core.limits import UNLIMITED
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import ToolIn, ToolVersionIn

__all__ = ["InvalidToolError", "InvalidToolVersionError", "Tool"]


class Tool:
    """A named tool. ``active_tool_version_id="latest"`` uses its newest version."""

    def __init__(
        self,
        name: str | None = None,
        active_tool_version_id: int | str = "latest",
        requester: Requester | None = None,
    ) -> None:
        if name is None:
            name = f"unknown-{getpass.getuser()}"  # Jobmon's name for a tool not named
        if not isinstance(name, str) or not name or len(name) > 255:
            raise InvalidToolError(
                f"tool name {name!r} must be a non-empty string of at most 255 characters"
            )
        self.name = name
        self._requested_version: int | str = active_tool_version_id
        self._requester = requester
        self._ids: tuple[int, int] | None = None  # the tool's and its active version's
        self.task_templates: dict[str, TaskTemplate] = {}
        self.default_cluster_name: str | None = None
        self.default_compute_resources_set: ResourcesByCluster = {}
        self.default_resource_scales: dict[str, Any] | None = None
        self.default_resource_scales_set: ResourcesByCluster = {}
        self.default_max_attempts: int | None = None

    # --- server identity ----------------------------------------------------------------------

    @property
    def requester(self) -> Requester:
        if self._requester is None:
            from herdsman.client.embedded import default_requester

            self._requester = default_requester()
        return self._requester

    @property
    def id(self) -> int:
        return self._load()[0]

    @property
    def active_tool_version_id(self) -> int:
        return self._load()[1]

    def _load(self) -> tuple[int, int]:
        """The tool's id and its active version's, asked of the server on first use."""
        if self._ids is None:
            tool = bind_requests.put_tool(self.requester, ToolIn(name=self.name))
            self._ids = tool.id, self._active_version(tool.version_ids)
        return self._ids

    def _active_version(self, version_ids: list[int]) -> int:
        if self._requested_version == "latest":
            return version_ids[-1]
        if self._requested_version in version_ids:
            return int(self._requested_version)
        raise InvalidToolVersionError(
            f"tool {self.name!r} has no version {self._requested_version!r}; its versions "
            f"are {version_ids}"
        )

    def get_new_tool_version(self) -> int:
        """Create a new version of this tool and make it the active one."""
        body = ToolVersionIn(request_key=uuid.uuid4().hex)  # one name for all retries
        version = bind_requests.create_tool_version(self.requester, self.id, body)
        self._ids = self.id, version.id
        return version.id

    def set_active_tool_version_id(self, tool_version_id: int | str) -> None:
        self._requested_version = tool_version_id
        self._ids = None

    # --- defaults -----------------------------------------------------------------------------

    def set_default_cluster_name(self, cluster_name: str) -> None:
        self.default_cluster_name = cluster_name

    @property
    def active_task_templates(self) -> dict[str, TaskTemplate]:
        """Jobmon's name for :attr:`task_templates`."""
        return self.task_templates

    def _default_cluster_if_unset(self, cluster_name: str) -> None:
        if not self.default_cluster_name:
            self.default_cluster_name = cluster_name

    def set_default_compute_resources_from_dict(
        self, cluster_name: str, compute_resources: Mapping[str, Any]
    ) -> None:
        """Resources on ``cluster_name``; it becomes the default cluster if there is none."""
        self._default_cluster_if_unset(cluster_name)
        self.default_compute_resources_set[cluster_name] = dict(compute_resources)

    def update_default_compute_resources(self, cluster_name: str, **resources: Any) -> None:
        """Change only the keys given of the resources on ``cluster_name``."""
        self._default_cluster_if_unset(cluster_name)
        self.default_compute_resources_set.setdefault(cluster_name, {}).update(resources)

    def set_default_resource_scales_from_dict(
        self, cluster_name: str, resource_scales: Mapping[str, Any]
    ) -> None:
        """Scales for tasks on ``cluster_name`` (:meth:`set_default_resource_scales`: any)."""
        self._default_cluster_if_unset(cluster_name)
        self.default_resource_scales_set[cluster_name] = dict(resource_scales)

    def update_default_resource_scales(self, cluster_name: str, **resource_scales: Any) -> None:
        """Change only the keys given of the scales on ``cluster_name``."""
        self._default_cluster_if_unset(cluster_name)
        self.default_resource_scales_set.setdefault(cluster_name, {}).update(resource_scales)

    @short_traceback
    def set_default_compute_resources_from_yaml(
        self,
        default_cluster_name: str | Path,
        yaml_file: str | Path | None = None,
        set_task_templates: bool = False,
        ignore_missing_keys: bool = False,
    ) -> None:
        """Tool defaults (and, with ``set_task_templates``, those of its templates) from YAML.

        Jobmon's form, ``(cluster, file)``: the resources on that cluster, which becomes the
        default cluster; a section missing for the cluster raises unless
        ``ignore_missing_keys``. The one-argument form, ``(file)``: every cluster of the file,
        the default cluster left as it is.
        """
        if yaml_file is None:
            self._resources_from_whole_file(default_cluster_name, set_task_templates)
            return
        cluster = str(default_cluster_name)
        found = load_resources_file(yaml_file)
        self._apply_cluster_section(
            found.tool_resources,
            found.task_template_resources if set_task_templates else None,
            cluster,
            yaml_file,
            ignore_missing_keys,
            scales=False,
        )

    @short_traceback
    def set_default_resource_scales_from_yaml(
        self,
        default_cluster_name: str,
        yaml_file: str | Path,
        set_task_templates: bool = False,
        ignore_missing_keys: bool = False,
    ) -> None:
        """Resource scales on one cluster from a file's ``tool_scales`` (and, with
        ``set_task_templates``, ``task_template_scales``) sections."""
        found = load_resources_file(yaml_file)
        self._apply_cluster_section(
            found.tool_scales,
            found.task_template_scales if set_task_templates else None,
            default_cluster_name,
            yaml_file,
            ignore_missing_keys,
            scales=True,
        )

    def _resources_from_whole_file(self, path: str | Path, set_task_templates: bool) -> None:
        found = load_resources_file(path)
        self.default_compute_resources_set.update(found.tool_resources)
        self.default_resource_scales_set.update(found.tool_scales)
        if not set_task_templates:
            return
        for name, template in self.task_templates.items():
            template.default_compute_resources_set.update(
                found.task_template_resources.get(name, {})
            )
            template.default_resource_scales_set.update(found.task_template_scales.get(name, {}))

    def _apply_cluster_section(
        self,
        tool_section: ResourcesByCluster,
        template_sections: dict[str, ResourcesByCluster] | None,
        cluster: str,
        path: str | Path,
        ignore_missing_keys: bool,
        *,
        scales: bool,
    ) -> None:
        kind = "scales" if scales else "resources"
        if cluster in tool_section:
            if scales:
                self.default_resource_scales_set[cluster] = dict(tool_section[cluster])
            else:
                self.default_compute_resources_set[cluster] = dict(tool_section[cluster])
        elif not ignore_missing_keys:
            raise InvalidResourceError(
                f"{path}: tool_{kind} has no entry for cluster {cluster!r}; add one or pass "
                "ignore_missing_keys=True"
            )
        self.default_cluster_name = cluster
        if template_sections is None:
            return
        for name, template in self.task_templates.items():
            section = template_sections.get(name, {})
            if cluster not in section:
                if ignore_missing_keys:
                    continue
                raise InvalidResourceError(
                    f"{path}: task_template_{kind} has no entry for template {name!r} on "
                    f"cluster {cluster!r}; add one or pass ignore_missing_keys=True"
                )
            if scales:
                template.default_resource_scales_set[cluster] = dict(section[cluster])
            else:
                template.default_compute_resources_set[cluster] = dict(section[cluster])

    def set_default_resource_scales(self, resource_scales: Mapping[str, Any]) -> None:
        """Scales for tasks on any cluster (per cluster: set_default_resource_scales_from_dict)."""
        self.default_resource_scales = dict(resource_scales)

    def set_default_max_attempts(self, max_attempts: int) -> None:
        self.default_max_attempts = checks.whole_number(max_attempts, "max_attempts", 1)

    # --- templates and workflows --------------------------------------------------------------

    @short_traceback
    def get_task_template(
        self,
        template_name: str,
        command_template: str,
        node_args: Iterable[str] | None = None,
        task_args: Iterable[str] | None = None,
        op_args: Iterable[str] | None = None,
        default_cluster_name: str | None = None,
        default_compute_resources: Mapping[str, Any] | None = None,
        default_resource_scales: Mapping[str, Any] | None = None,
        yaml_file: str | Path | None = None,
        max_attempts: int | None = None,
        *,
        default_max_attempts: int | None = None,
    ) -> TaskTemplate:
        """The template called ``template_name``, with this command as its active version.

        ``default_compute_resources`` apply on ``default_cluster_name`` (or the tool's default
        cluster); ``yaml_file`` may hold ``task_template_resources`` and
        ``task_template_scales`` for this template. ``max_attempts`` (Jobmon's name) and
        ``default_max_attempts`` are the same setting.
        """
        if max_attempts is not None and default_max_attempts is not None:
            raise WorkflowValidationError(
                f"template {template_name!r}: give max_attempts or default_max_attempts, not both"
            )
        attempts = max_attempts if max_attempts is not None else default_max_attempts
        template = self.task_templates.get(template_name)
        if template is None:
            template = TaskTemplate(self, template_name)
            self.task_templates[template_name] = template
        template.use_version(command_template, node_args or (), task_args or (), op_args or ())
        if default_cluster_name:
            template.set_default_cluster_name(default_cluster_name)
        if yaml_file is not None:
            found = load_resources_file(yaml_file)
            template.default_compute_resources_set.update(
                found.task_template_resources.get(template_name, {})
            )
            template.default_resource_scales_set.update(
                found.task_template_scales.get(template_name, {})
            )
        if default_compute_resources is not None:
            cluster = template.default_cluster_name or self.default_cluster_name
            if cluster is None:
                raise WorkflowValidationError(
                    f"template {template_name!r}: default_compute_resources need a cluster; "
                    "pass default_cluster_name or set the tool's default cluster first"
                )
            template.set_default_compute_resources_from_dict(cluster, default_compute_resources)
        if default_resource_scales is not None:
            template.set_default_resource_scales(default_resource_scales)
        if attempts is not None:
            template.set_default_max_attempts(attempts)
        return template

    @short_traceback
    def create_workflow(
        self,
        workflow_args: str = "",
        name: str = "",
        description: str = "",
        workflow_attributes: Mapping[str, Any] | Iterable[str] | None = None,
        max_concurrently_running: int = UNLIMITED,
        chunk_size: int | None = None,
        default_cluster_name: str | None = None,
        default_compute_resources_set: ResourcesByCluster | None = None,
        default_resource_scales_set: Mapping[str, Any] | None = None,
        default_max_attempts: int | None = None,
        *,
        default_resource_scales: Mapping[str, Any] | None = None,
    ) -> Workflow:
        """A new workflow of this tool, with Jobmon's arguments in Jobmon's order.

        Without ``workflow_args`` it is unique (a random id). ``default_resource_scales_set``
        (as in Jobmon, one ``{resource: scale}`` mapping) applies on ``default_cluster_name``;
        ``default_resource_scales`` on any cluster.
        """
        workflow = Workflow(
            tool=self,
            name=name,
            workflow_args=workflow_args or str(uuid.uuid4()),
            max_concurrently_running=max_concurrently_running,
            workflow_attributes=workflow_attributes,
            default_cluster_name=default_cluster_name or None,
            default_compute_resources_set=default_compute_resources_set,
            default_resource_scales=default_resource_scales,
            default_max_attempts=default_max_attempts,
            description=description,
            chunk_size=chunk_size,
        )
        if default_resource_scales_set:
            # Jobmon's argument is one {resource: scale} mapping, for the default cluster.
            if default_cluster_name:
                workflow.set_default_resource_scales_from_dict(
                    default_cluster_name, default_resource_scales_set
                )
            else:
                workflow.default_resource_scales = dict(default_resource_scales_set)
        return workflow

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"


# TaskGenerators (herdsman.core.task_generator) make their tools by name with this class.
task_generator.register_tool_factory(Tool)
