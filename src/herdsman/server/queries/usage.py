"""What done attempts used: runtime and memory by tool, task template and cluster, as
statistics.

Statistics are computed here in Python over the fetched values rather than in SQL: SQLite has
no percentile function and PostgreSQL's and MariaDB's differ, while users comparing numbers
across deployments expect the same answer from every engine.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import Session

from herdsman.core.errors import InvalidInputError, NotFoundError
from herdsman.core.schemas import queries as schemas
from herdsman.core.statuses import TaskInstanceStatus
from herdsman.server.database import models
from herdsman.server.queries.lookups import (
    require_workflow,
    with_task_template_names,
    with_template_names,
)

_Columns = TypeVarTuple("_Columns")

__all__ = [
    "TemplateMedians",
    "array_usage",
    "resource_usage",
    "statistics_of",
    "template_medians",
    "usage_totals",
]


_GIB = 1024**3


def resource_usage(
    session: Session,
    template: str | None,
    workflow_ids: Sequence[int],
    *,
    tool: str | None = None,
    node_args: Mapping[str, str] | None = None,
) -> schemas.ResourceUsageOut:
    """Runtime and memory of done attempts, by tool, task template and cluster.

    Templates of different tools are different templates even when they share a name, so
    each tool's are kept apart; ``tool`` keeps only that tool's. ``node_args`` keeps only
    tasks whose node has each of those values (``{"region": "emea"}``), since one template's
    tasks often need very different resources by what they work on.

    Only done attempts count: a failed one stopped early or was killed for its resources, so
    its usage says nothing about what the task needs.
    """
    if template is None and not workflow_ids and tool is None:
        raise InvalidInputError("name a tool, a task template, one or more workflows, or some")
    instance, task = models.TaskInstance, models.Task
    template_name = models.TaskTemplate.name
    query = with_task_template_names(
        select(
            models.Tool.name,
            template_name,
            models.Cluster.name,
            instance.wall_time,
            instance.max_rss,
        )
        .join(task, task.id == instance.task_id)
        .join(models.Cluster, models.Cluster.id == task.cluster_id)
    )
    query = (
        query.join(models.ToolVersion, models.ToolVersion.id == models.TaskTemplate.tool_version_id)
        .join(models.Tool, models.Tool.id == models.ToolVersion.tool_id)
        .where(instance.status == TaskInstanceStatus.DONE.value)
    )
    if template is not None:
        known = select(func.count()).select_from(models.TaskTemplate)
        if session.scalar(known.where(template_name == template)) == 0:
            raise NotFoundError(
                f"no task template is called {template!r}", details={"value": template}
            )
        query = query.where(template_name == template)
    if tool is not None:
        if session.scalar(select(models.Tool.id).where(models.Tool.name == tool)) is None:
            raise NotFoundError(f"no tool is called {tool!r}", details={"value": tool})
        query = query.where(models.Tool.name == tool)
    if workflow_ids:
        for workflow_id in workflow_ids:
            require_workflow(session, workflow_id)
        query = query.where(task.workflow_id.in_(workflow_ids))
    for name, value in (node_args or {}).items():
        query = query.where(_has_node_arg(name, value))
    return _usage_out(session.execute(query).tuples())


def array_usage(session: Session, array_id: int, sample: int) -> schemas.ResourceUsageOut:
    """:func:`resource_usage` of one workflow's template (its array), over its newest
    ``sample`` done attempts only, read backwards along the attempts' (array, id) index: a
    template of a million attempts costs what one of ``sample`` does.

    Each attempt's cluster is looked up by its task's key, row by row: joined, planners
    prefer reading every task of the database to ``sample`` look-ups.
    """
    instance, task = models.TaskInstance, models.Task
    cluster_of = select(task.cluster_id).where(task.id == instance.task_id).scalar_subquery()
    rows = session.execute(
        select(cluster_of, instance.wall_time, instance.max_rss)
        .where(instance.array_id == array_id, instance.status == TaskInstanceStatus.DONE.value)
        .order_by(instance.id.desc())
        .limit(sample)
    ).all()
    if not rows:
        return schemas.ResourceUsageOut(templates=[])
    tool, template = session.execute(
        with_template_names(
            select(models.Tool.name, models.TaskTemplate.name).select_from(models.Array)
        )
        .join(models.ToolVersion, models.ToolVersion.id == models.TaskTemplate.tool_version_id)
        .join(models.Tool, models.Tool.id == models.ToolVersion.tool_id)
        .where(models.Array.id == array_id)
    ).one()
    clusters = dict(
        session.execute(
            select(models.Cluster.id, models.Cluster.name).where(
                models.Cluster.id.in_({row[0] for row in rows})
            )
        ).all()
    )
    return _usage_out(
        (tool, template, clusters[cluster], wall_time, max_rss)
        for cluster, wall_time, max_rss in rows
    )


def _usage_out(
    rows: Iterable[tuple[str, str, str, float | None, int | None]],
) -> schemas.ResourceUsageOut:
    """Statistics of (tool, template, cluster, wall time, peak memory) rows, by the first
    three."""
    runtimes: dict[_Key, list[float]] = defaultdict(list)
    memories: dict[_Key, list[float]] = defaultdict(list)
    attempts: dict[_Key, int] = defaultdict(int)
    for tool_name, name, cluster, wall_time, max_rss in rows:
        key = (tool_name, name, cluster)
        attempts[key] += 1
        if wall_time is not None:
            runtimes[key].append(float(wall_time))
        if max_rss is not None:
            memories[key].append(max_rss / _GIB)
    return schemas.ResourceUsageOut(
        templates=[
            schemas.TemplateUsageOut(
                tool=key[0],
                task_template=key[1],
                cluster=key[2],
                attempts=attempts[key],
                runtime=statistics_of(runtimes[key]),
                memory=statistics_of(memories[key]),
            )
            for key in sorted(attempts)
        ]
    )


_Key = tuple[str, str, str]


def _has_node_arg(name: str, value: str) -> ColumnElement[bool]:
    """The task's node has node arg ``name`` set to ``value``."""
    node_arg, arg = models.NodeArg, models.Arg
    return exists(
        select(node_arg.node_id)
        .join(arg, arg.id == node_arg.arg_id)
        .where(node_arg.node_id == models.Task.node_id, arg.name == name, node_arg.value == value)
    )


def statistics_of(values: Sequence[float]) -> schemas.StatisticsOut | None:
    """min, mean, median, p90, p95, p99 and max; quantiles interpolate linearly between order
    statistics (the common "type 7" definition), so p95 of one value is that value."""
    if not values:
        return None
    ordered = sorted(values)
    return schemas.StatisticsOut(
        count=len(ordered),
        min=ordered[0],
        mean=statistics.fmean(ordered),
        median=_quantile(ordered, 0.5),
        p90=_quantile(ordered, 0.90),
        p95=_quantile(ordered, 0.95),
        p99=_quantile(ordered, 0.99),
        max=ordered[-1],
    )


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = (len(ordered) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


@dataclass(frozen=True)
class TemplateMedians:
    """Median runtime (seconds) and peak memory (bytes) of a template's newest done attempts
    in one workflow, and how many attempts they are of; None without a report."""

    runtime: float | None
    memory: float | None
    attempts: int


def template_medians(
    session: Session, workflow_id: int, array_ids: Sequence[int], sample: int
) -> dict[int, TemplateMedians]:
    """By array (a template within the workflow): medians over its newest ``sample`` done
    attempts, so that a template of a million tasks costs no more than one of a thousand."""
    instance = models.TaskInstance
    found = {}
    # An array is one workflow's: its attempts are the workflow's, read newest first along the
    # (array, id) index, so a template's medians read about ``sample`` rows however many ran.
    for array_id in array_ids:
        rows = (
            session.execute(
                select(instance.wall_time, instance.max_rss)
                .where(
                    instance.array_id == array_id,
                    instance.status == TaskInstanceStatus.DONE.value,
                )
                .order_by(instance.id.desc())
                .limit(sample)
            )
            .tuples()
            .all()
        )
        runtimes = [value for value, _ in rows if value is not None]
        memories = [value for _, value in rows if value is not None]
        found[array_id] = TemplateMedians(
            statistics.median(runtimes) if runtimes else None,
            float(statistics.median(memories)) if memories else None,
            len(rows),
        )
    return found


def usage_totals(session: Session, workflow_id: int) -> schemas.UsageTotalsOut:
    """Requested against used core-hours and memory GiB-hours over the workflow's attempts
    that reported a wall time (see :class:`~herdsman.core.schemas.queries.UsageTotalsOut`).

    Read from the totals kept on write (a row per template), not from the attempts.
    """
    require_workflow(session, workflow_id)
    total = models.UsageTotal
    count, cores_asked, cpu, memory_asked, memory_used = session.execute(
        select(
            func.coalesce(func.sum(total.attempts), 0),
            func.sum(total.core_seconds_requested),
            func.sum(total.cpu_seconds),
            func.sum(total.memory_byte_seconds_requested),
            func.sum(total.memory_byte_seconds_used),
        ).where(total.workflow_id == workflow_id)
    ).one()

    def per_hour(total: float | None, unit: float = 1.0) -> float | None:
        return None if total is None else float(total) / unit / 3600

    return schemas.UsageTotalsOut(
        workflow_id=workflow_id,
        attempts=int(count),
        core_hours_requested=per_hour(cores_asked),
        core_hours_used=per_hour(cpu),
        memory_gib_hours_requested=per_hour(memory_asked, _GIB),
        memory_gib_hours_used=per_hour(memory_used, _GIB),
    )
