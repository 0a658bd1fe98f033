"""Compute resources: resolution along Task -> Array/TaskTemplate -> Workflow -> Tool, and
validation against the limits of the cluster's queue.

Users give resources as dicts keyed by cluster name at the tool, template and workflow level
(``{"slurm": {"memory": "4G"}}``) and as a plain dict for one task. Resolution merges them key
by key, the most specific level winning. Validation then parses units once (memory to GiB,
runtime to seconds), picks the queue (the cluster's default when none is named) and refuses a
request the queue cannot serve, naming the task, the value and the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from herdsman.core.errors import InvalidResourceError
from herdsman.core.schemas.client import LOCAL_PLUGINS, ClusterOut, QueueOut
from herdsman.core.units import parse_memory, parse_runtime

__all__ = [
    "DEFAULT_RESOURCE_SCALES",
    "ResourcesByCluster",
    "ResourcesFile",
    "ValidatedResources",
    "load_resources_file",
    "load_resources_yaml",
    "validate_resources",
]

ResourcesByCluster = dict[str, dict[str, Any]]

# Read-only: it is shared by every task that sets no scales of its own.
DEFAULT_RESOURCE_SCALES: Mapping[str, float] = MappingProxyType({"memory": 0.5, "runtime": 0.5})

# The units queue limits are kept in, for messages that quote them.
_LIMIT_UNITS = {"memory": " GiB", "runtime": " seconds", "cores": " cores"}

# Keys every plugin understands; others pass through to the plugin unchanged.
_INT_KEYS = ("cores",)


@dataclass(frozen=True)
class ValidatedResources:
    """A request the queue accepts, in canonical units (memory GiB, runtime seconds)."""

    queue: QueueOut
    requested: dict[str, Any]


def validate_resources(
    cluster: ClusterOut, requested: Mapping[str, Any], *, task_name: str
) -> ValidatedResources:
    """Parse and check ``requested`` against its queue; raise with a message naming the task."""
    queue = _queue_for(cluster, requested.get("queue"), task_name)
    canonical: dict[str, Any] = dict(requested)
    canonical["queue"] = queue.name
    try:
        if "memory" in requested:
            canonical["memory"] = parse_memory(requested["memory"])
        if "runtime" in requested:
            canonical["runtime"] = parse_runtime(requested["runtime"])
        for key in _INT_KEYS:
            if key in requested:
                canonical[key] = _positive_int(key, requested[key])
    except InvalidResourceError as error:
        raise InvalidResourceError(f"task {task_name!r}: {error.message}") from error
    for key, (low, high) in queue.limits.items():
        value = canonical.get(key)
        if isinstance(value, int | float) and not low <= value <= high:
            raise InvalidResourceError(
                f"task {task_name!r} asks for {key}={requested[key]!r} but queue {queue.name!r} "
                f"of cluster {cluster.name!r} allows {key} from {low:g} to {high:g}"
                f"{_LIMIT_UNITS.get(key, '')}",
                details={"task_name": task_name, "resource": key, "queue": queue.name},
            )
    return ValidatedResources(queue=queue, requested=canonical)


def _queue_for(cluster: ClusterOut, name: object, task_name: str) -> QueueOut:
    if name is None:
        for queue in cluster.queues:
            if queue.is_default:
                return queue
        raise InvalidResourceError(
            f"task {task_name!r} names no queue and cluster {cluster.name!r} has no default "
            "queue; add 'queue' to its compute resources",
            details={"task_name": task_name},
        )
    for queue in cluster.queues:
        if queue.name == name:
            return queue
    if cluster.plugin in LOCAL_PLUGINS:
        return _queue_for(cluster, None, task_name)
    known = ", ".join(q.name for q in cluster.queues)
    raise InvalidResourceError(
        f"task {task_name!r} asks for queue {name!r}, which cluster {cluster.name!r} does not "
        f"have; its queues: {known}",
        details={"task_name": task_name, "queue": str(name)},
    )


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidResourceError(f"{key} {value!r} is not a whole number")
    try:
        number = float(value)
    except ValueError:
        raise InvalidResourceError(f"{key} {value!r} is not a whole number") from None
    if number != int(number) or number < 1:
        raise InvalidResourceError(f"{key} {value!r} must be a whole number of at least 1")
    return int(number)


@dataclass(frozen=True)
class ResourcesFile:
    """What a resources YAML file holds, each section keyed by cluster name."""

    tool_resources: ResourcesByCluster
    task_template_resources: dict[str, ResourcesByCluster]
    tool_scales: ResourcesByCluster
    task_template_scales: dict[str, ResourcesByCluster]


_SECTIONS = ("tool_resources", "task_template_resources", "tool_scales", "task_template_scales")


def load_resources_file(path: str | Path) -> ResourcesFile:
    """Read a resources file (the format Jobmon's ``yaml_file`` arguments take)::

    tool_resources:
      slurm: {cores: 1, memory: 2G, runtime: "01:00:00", queue: all.q}
    task_template_resources:
      fit_model:
        slurm: {memory: 8G}
    tool_scales:
      slurm: {memory: 0.5, runtime: 0.5}
    task_template_scales:
      fit_model:
        slurm: {memory: 1.0}
    """
    try:
        with Path(path).open() as stream:
            content = yaml.safe_load(stream) or {}
    except FileNotFoundError:
        raise InvalidResourceError(f"resources file {str(path)!r} does not exist") from None
    except yaml.YAMLError as error:
        raise InvalidResourceError(
            f"resources file {str(path)!r} is not valid YAML: {error}"
        ) from None
    if not isinstance(content, dict):
        raise InvalidResourceError(
            f"resources file {str(path)!r} must hold a mapping with some of {list(_SECTIONS)}"
        )
    unknown = sorted(set(content) - set(_SECTIONS))
    if unknown:
        raise InvalidResourceError(
            f"resources file {str(path)!r} has unknown keys {unknown}; it may hold "
            f"{list(_SECTIONS)}"
        )
    return ResourcesFile(
        tool_resources=_by_cluster(content.get("tool_resources") or {}, f"{path}: tool_resources"),
        task_template_resources=_by_template(content, "task_template_resources", path),
        tool_scales=_by_cluster(content.get("tool_scales") or {}, f"{path}: tool_scales"),
        task_template_scales=_by_template(content, "task_template_scales", path),
    )


def load_resources_yaml(
    path: str | Path,
) -> tuple[ResourcesByCluster, dict[str, ResourcesByCluster]]:
    """A resources file's ``(tool_resources, {template name: task_template_resources})``."""
    found = load_resources_file(path)
    return found.tool_resources, found.task_template_resources


def _by_template(content: dict[str, Any], section: str, path: str | Path) -> dict[str, Any]:
    raw = content.get(section) or {}
    if not isinstance(raw, dict):
        raise InvalidResourceError(f"{path}: {section} must be a mapping")
    return {
        str(name): _by_cluster(value, f"{path}: {section}.{name}") for name, value in raw.items()
    }


def _by_cluster(value: Any, where: str) -> ResourcesByCluster:
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise InvalidResourceError(
            f"{where} must map cluster names to resource mappings, e.g. "
            "{'slurm': {'memory': '2G', 'cores': 1}}"
        )
    return {str(cluster): dict(resources) for cluster, resources in value.items()}
