"""What done attempts used: runtime and memory by task template and cluster, as statistics.

Statistics are computed here in Python over the fetched values rather than in SQL: SQLite has
no percentile function and PostgreSQL's and MariaDB's differ, while users comparing numbers
across deployments expect the same answer from every engine.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVarTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from herdsman.core.errors import InvalidInputError, NotFoundError
from herdsman.core.schemas import queries as schemas
from herdsman.core.statuses import TaskInstanceStatus
from herdsman.server.database import models
from herdsman.server.queries.lookups import (
    require_workflow,
    with_task_template_names,
)

_Columns = TypeVarTuple("_Columns")

__all__ = ["resource_usage", "statistics_of"]


_GIB = 1024**3


def resource_usage(
    session: Session, template: str | None, workflow_ids: Sequence[int]
) -> schemas.ResourceUsageOut:
    """Runtime and memory of done attempts, by task template and cluster.

    Only done attempts count: a failed one stopped early or was killed for its resources, so
    its usage says nothing about what the task needs.
    """
    if template is None and not workflow_ids:
        raise InvalidInputError("name a task template, one or more workflows, or both")
    instance, task = models.TaskInstance, models.Task
    template_name = models.TaskTemplate.name
    query = with_task_template_names(
        select(template_name, models.Cluster.name, instance.wall_time, instance.max_rss)
        .join(task, task.id == instance.task_id)
        .join(models.Cluster, models.Cluster.id == task.cluster_id)
    ).where(instance.status == TaskInstanceStatus.DONE.value)
    if template is not None:
        known = select(func.count()).select_from(models.TaskTemplate)
        if session.scalar(known.where(template_name == template)) == 0:
            raise NotFoundError(
                f"no task template is called {template!r}", details={"value": template}
            )
        query = query.where(template_name == template)
    if workflow_ids:
        for workflow_id in workflow_ids:
            require_workflow(session, workflow_id)
        query = query.where(task.workflow_id.in_(workflow_ids))
    runtimes: dict[tuple[str, str], list[float]] = defaultdict(list)
    memories: dict[tuple[str, str], list[float]] = defaultdict(list)
    attempts: dict[tuple[str, str], int] = defaultdict(int)
    for name, cluster, wall_time, max_rss in session.execute(query).tuples():
        key = (name, cluster)
        attempts[key] += 1
        if wall_time is not None:
            runtimes[key].append(float(wall_time))
        if max_rss is not None:
            memories[key].append(max_rss / _GIB)
    return schemas.ResourceUsageOut(
        templates=[
            schemas.TemplateUsageOut(
                task_template=name,
                cluster=cluster,
                attempts=attempts[(name, cluster)],
                runtime=statistics_of(runtimes[(name, cluster)]),
                memory=statistics_of(memories[(name, cluster)]),
            )
            for name, cluster in sorted(attempts)
        ]
    )


def statistics_of(values: Sequence[float]) -> schemas.StatisticsOut | None:
    """min, mean, median, p95 and max; quantiles interpolate linearly between order
    statistics (the common "type 7" definition), so p95 of one value is that value."""
    if not values:
        return None
    ordered = sorted(values)
    return schemas.StatisticsOut(
        count=len(ordered),
        min=ordered[0],
        mean=statistics.fmean(ordered),
        median=_quantile(ordered, 0.5),
        p95=_quantile(ordered, 0.95),
        max=ordered[-1],
    )


def _quantile(ordered: Sequence[float], q: float) -> float:
    position = (len(ordered) - 1) * q
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction
