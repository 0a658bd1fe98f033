"""The resource request that what done attempts used suggests, and a resources file of them.

Shared by the ``herdsman resources`` command and the GUI's resources page, so both suggest
the same figures from the same statistics (:class:`~herdsman.core.schemas.queries.StatisticsOut`,
computed on the server).
"""

from __future__ import annotations

import math
from typing import Literal

import yaml

from herdsman.core.errors import InvalidInputError
from herdsman.core.schemas import queries as schemas
from herdsman.core.units import format_memory

__all__ = [
    "Strategy",
    "resources_yaml",
    "strategy",
    "suggested_memory",
    "suggested_runtime",
]

Strategy = Literal["avg", "max", "p90", "p95", "p99"]


def suggested_memory(stats: schemas.StatisticsOut, strategy: Strategy, headroom: float) -> float:
    """A memory request in GiB: the ``strategy`` statistic plus ``headroom`` (0.2 = 20 %),
    rounded up to whole MiB."""
    return max(1, math.ceil(_pick(stats, strategy) * (1 + headroom) * 1024)) / 1024


def suggested_runtime(stats: schemas.StatisticsOut, strategy: Strategy, headroom: float) -> int:
    """A runtime request in whole seconds: the ``strategy`` statistic plus ``headroom``."""
    return max(1, math.ceil(_pick(stats, strategy) * (1 + headroom)))


def resources_yaml(
    usage: schemas.ResourceUsageOut,
    *,
    memory: Strategy = "max",
    runtime: Strategy = "max",
    headroom: float = 0.0,
) -> str:
    """A resources file (``task_template_resources`` by cluster) for ``yaml_file=``.

    Memory is the ``memory`` statistic plus ``headroom``, rounded up to whole MiB and written
    with a unit (``"512M"``, ``"2G"``); runtime likewise in whole seconds. A comment at the top
    states both. Templates with no recorded usage are left out, so the file never claims a
    value nobody measured. Raises InvalidInputError when nothing is left, and when two tools
    have templates of one name (a resources file names templates only): pick one tool.
    """
    _refuse_shared_names(usage)
    templates: dict[str, dict[str, dict[str, object]]] = {}
    for entry in usage.templates:
        resources: dict[str, object] = {}
        if entry.memory is not None:
            resources["memory"] = format_memory(suggested_memory(entry.memory, memory, headroom))
        if entry.runtime is not None:
            resources["runtime"] = suggested_runtime(entry.runtime, runtime, headroom)
        if resources:
            templates.setdefault(entry.task_template, {})[entry.cluster] = resources
    if not templates:
        raise InvalidInputError(
            "no done attempt recorded its runtime or memory, so there is nothing to write"
        )
    percent = f"{headroom * 100:g} % headroom"
    header = (
        f"# memory: {memory} of the done attempts' peak memory + {percent}; "
        f"runtime: {runtime} of their wall time + {percent}\n"
    )
    return header + yaml.safe_dump({"task_template_resources": templates}, sort_keys=True)


def _refuse_shared_names(usage: schemas.ResourceUsageOut) -> None:
    tools: dict[str, set[str]] = {}
    for entry in usage.templates:
        tools.setdefault(entry.task_template, set()).add(entry.tool)
    shared = {name: sorted(found) for name, found in tools.items() if len(found) > 1}
    if shared:
        name, found = next(iter(sorted(shared.items())))
        raise InvalidInputError(
            f"task template {name!r} exists in tools {', '.join(map(repr, found))}; "
            "name one with --tool (a resources file holds one tool's templates)"
        )


def strategy(name: str) -> Strategy:
    """A strategy name as typed (any case) checked and narrowed; InvalidInputError if unknown."""
    lowered = name.lower()
    if lowered == "avg":
        return "avg"
    if lowered == "p90":
        return "p90"
    if lowered == "p95":
        return "p95"
    if lowered == "p99":
        return "p99"
    if lowered == "max":
        return "max"
    raise InvalidInputError(f"unknown strategy {name!r}; use avg, max or p95 (also p90 and p99)")


def _pick(stats: schemas.StatisticsOut, strategy: Strategy) -> float:
    if strategy == "avg":
        return stats.mean
    if strategy == "p95":
        return stats.p95
    if strategy == "p99":
        return stats.p99
    if strategy == "p90":
        return stats.p90
    return stats.max
