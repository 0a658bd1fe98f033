"""Tool: the project or pipeline a workflow belongs to, with versions and defaults.

A Tool is the top of the resource resolution chain and the owner of task templates. Nothing is
sent to the server until it is needed (an id is asked for, or a workflow binds), so a workflow
can be built and validated offline and a tool that is never used costs nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from herdsman.client import bind_requests, checks
from herdsman.client.resources import ResourcesByCluster, load_resources_yaml
from herdsman.client.task_template import TaskTemplate
from herdsman.client.workflow import Workflow
from herdsman.core.errors import WorkflowValidationError, short_traceback
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import ToolIn, ToolVersionIn

__all__ = ["Tool"]


class Tool:
    """A named tool. ``active_tool_version_id="latest"`` uses its newest version."""

    def __init__(
        self,
        name: str,
        active_tool_version_id: int | str = "latest",
        requester: Requester | None = None,
    ) -> None:
        if not isinstance(name, str) or not name or len(name) > 255:
            raise WorkflowValidationError(
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
        raise WorkflowValidationError(
            f"tool {self.name!r} has no version {self._requested_version!r}; its versions "
            f"are {version_ids}"
        )

    def get_new_tool_version(self) -> int:
        """Create a new version of this tool and make it the active one."""
        body = ToolVersionIn(request_key=uuid.uuid4().hex)  # one name for all retries
        version = bind_requests.create_tool_version(self.requester, self.id, body)
        self._ids = self.id, version.id
        return version.id

    def set_active_tool_version_id(self, version_id: int | str) -> None:
        self._requested_version = version_id
        self._ids = None

    # --- defaults -----------------------------------------------------------------------------

    def set_default_cluster_name(self, cluster_name: str) -> None:
        self.default_cluster_name = cluster_name

    def set_default_compute_resources_from_dict(
        self, cluster_name: str, compute_resources: Mapping[str, Any]
    ) -> None:
        self.default_compute_resources_set[cluster_name] = dict(compute_resources)

    @short_traceback
    def set_default_compute_resources_from_yaml(
        self,
        yaml_file: str | Path,
        default_cluster_name: str | None = None,
        set_task_templates: bool = True,
    ) -> None:
        """Tool defaults (and, with ``set_task_templates``, those of its templates) from YAML."""
        tool_resources, template_resources = load_resources_yaml(yaml_file)
        self.default_compute_resources_set.update(tool_resources)
        if default_cluster_name is not None:
            self.default_cluster_name = default_cluster_name
        if set_task_templates:
            for template_name, by_cluster in template_resources.items():
                if template_name in self.task_templates:
                    template = self.task_templates[template_name]
                    template.default_compute_resources_set.update(by_cluster)

    def set_default_resource_scales(self, resource_scales: Mapping[str, Any]) -> None:
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
        default_max_attempts: int | None = None,
        yaml_file: str | Path | None = None,
    ) -> TaskTemplate:
        """The template called ``template_name``, with this command as its active version.

        ``default_compute_resources`` apply on ``default_cluster_name`` (or the tool's default
        cluster); ``yaml_file`` may hold ``task_template_resources`` for this template.
        """
        template = self.task_templates.get(template_name)
        if template is None:
            template = TaskTemplate(self, template_name)
            self.task_templates[template_name] = template
        template.use_version(command_template, node_args or (), task_args or (), op_args or ())
        if default_cluster_name is not None:
            template.set_default_cluster_name(default_cluster_name)
        if yaml_file is not None:
            _, by_template = load_resources_yaml(yaml_file)
            template.default_compute_resources_set.update(by_template.get(template_name, {}))
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
        if default_max_attempts is not None:
            template.set_default_max_attempts(default_max_attempts)
        return template

    @short_traceback
    def create_workflow(
        self,
        name: str = "",
        workflow_args: str = "",
        max_concurrently_running: int = 10_000,
        workflow_attributes: Mapping[str, Any] | Iterable[str] | None = None,
        default_cluster_name: str | None = None,
        default_compute_resources_set: ResourcesByCluster | None = None,
        default_resource_scales: Mapping[str, Any] | None = None,
        default_max_attempts: int | None = None,
        description: str = "",
        chunk_size: int | None = None,
    ) -> Workflow:
        """A new workflow of this tool. Without ``workflow_args`` it is unique (a random id)."""
        return Workflow(
            tool=self,
            name=name,
            workflow_args=workflow_args or str(uuid.uuid4()),
            max_concurrently_running=max_concurrently_running,
            workflow_attributes=workflow_attributes,
            default_cluster_name=default_cluster_name,
            default_compute_resources_set=default_compute_resources_set,
            default_resource_scales=default_resource_scales,
            default_max_attempts=default_max_attempts,
            description=description,
            chunk_size=chunk_size,
        )

    def __repr__(self) -> str:
        return f"Tool(name={self.name!r})"
