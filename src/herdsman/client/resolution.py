"""Per-task settings resolved along Task -> TaskTemplate -> Workflow -> Tool.

Resolution runs once per task at validation and again at bind, over up to a million tasks, so
everything that does not depend on the task itself is cached per (template version, cluster):
most tasks of a template share their resources and resolve with two dictionary look-ups.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from herdsman.client.resources import (
    DEFAULT_RESOURCE_SCALES,
    ValidatedResources,
    validate_resources,
)
from herdsman.client.task import Task
from herdsman.core.errors import InvalidResourceError, NotFoundError, WorkflowValidationError
from herdsman.core.schemas.client import ClusterOut

if TYPE_CHECKING:
    from herdsman.client.task_template import TaskTemplateVersion
    from herdsman.client.workflow import Workflow

__all__ = ["DEFAULT_MAX_ATTEMPTS", "ResolvedResources", "Resolver"]

DEFAULT_MAX_ATTEMPTS = 3

ClusterLookup = Callable[[str], ClusterOut]


@dataclass(frozen=True)
class ResolvedResources:
    """A task's cluster and its request, before (``original``) and after validation."""

    key: str
    cluster: ClusterOut
    original: dict[str, Any]
    validated: ValidatedResources


class Resolver:
    """Resolves tasks of one workflow; clusters are looked up once each through ``clusters``."""

    def __init__(self, workflow: Workflow, clusters: ClusterLookup) -> None:
        self._workflow = workflow
        self._lookup = clusters
        self._clusters: dict[str, ClusterOut] = {}
        self._defaults: dict[tuple[TaskTemplateVersion, str], dict[str, Any]] = {}
        self._shared: dict[tuple[TaskTemplateVersion, str], ResolvedResources] = {}
        self._by_key: dict[str, ResolvedResources] = {}

    def cluster_name(self, task: Task) -> str:
        template = task.template_version.template
        name = (
            task.cluster_name
            or template.default_cluster_name
            or self._workflow.default_cluster_name
            or template.tool.default_cluster_name
        )
        if not name:
            raise WorkflowValidationError(
                f"task {task.name!r} has no cluster; set default_cluster_name on its tool, "
                "template or workflow, or pass cluster_name= to create_task"
            )
        return name

    def cluster(self, name: str) -> ClusterOut:
        found = self._clusters.get(name)
        if found is None:
            try:
                found = self._lookup(name)
            except NotFoundError as error:
                raise InvalidResourceError(error.message) from error
            self._clusters[name] = found
        return found

    def resources(self, task: Task) -> ResolvedResources:
        cluster_name = self.cluster_name(task)
        shared_key = (task.template_version, cluster_name)
        if task.compute_resources is None:
            shared = self._shared.get(shared_key)
            if shared is None:
                shared = self._resolve(task, cluster_name, self._defaults_for(*shared_key))
                self._shared[shared_key] = shared
            return shared
        merged = {**self._defaults_for(*shared_key), **task.compute_resources}
        return self._resolve(task, cluster_name, merged)

    def _defaults_for(self, version: TaskTemplateVersion, cluster_name: str) -> dict[str, Any]:
        found = self._defaults.get((version, cluster_name))
        if found is None:
            template = version.template
            found = {
                **template.tool.default_compute_resources_set.get(cluster_name, {}),
                **self._workflow.default_compute_resources_set.get(cluster_name, {}),
                **template.default_compute_resources_set.get(cluster_name, {}),
            }
            self._defaults[(version, cluster_name)] = found
        return found

    def _resolve(self, task: Task, cluster_name: str, merged: dict[str, Any]) -> ResolvedResources:
        key = cluster_name + "\0" + json.dumps(merged, sort_keys=True, default=str)
        found = self._by_key.get(key)
        if found is None:
            cluster = self.cluster(cluster_name)
            validated = validate_resources(cluster, merged, task_name=task.name)
            found = ResolvedResources(key, cluster, merged, validated)
            self._by_key[key] = found
        return found

    def max_attempts(self, task: Task) -> int:
        template = task.template_version.template
        for value in (
            task.max_attempts,
            template.default_max_attempts,
            self._workflow.default_max_attempts,
            template.tool.default_max_attempts,
        ):
            if value is not None:
                return value
        return DEFAULT_MAX_ATTEMPTS

    def resource_scales(self, task: Task) -> Mapping[str, Any]:
        """The first scales set along task, template, workflow, tool; at each level those for
        the task's cluster (``*_from_dict(cluster, ...)``) come before those for any cluster."""
        if task.resource_scales is not None:
            return task.resource_scales
        template = task.template_version.template
        cluster = (
            task.cluster_name
            or template.default_cluster_name
            or self._workflow.default_cluster_name
            or template.tool.default_cluster_name
            or ""
        )
        for level in (template, self._workflow, template.tool):
            by_cluster = level.default_resource_scales_set.get(cluster)
            if by_cluster is not None:
                return by_cluster
            if level.default_resource_scales is not None:
                return level.default_resource_scales
        return DEFAULT_RESOURCE_SCALES
