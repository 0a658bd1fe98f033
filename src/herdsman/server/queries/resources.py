"""What one task template of a workflow asked for and used: histograms, kills and waste.

For the GUI's resources page. Histograms are counted by the database, not here: a fixed
number of equal bins from zero to the largest value asked or used, each attempt's bin found
by comparing it with the bins' edges (``CASE`` sums, which every engine runs alike, unlike
``width_bucket`` or ``floor`` of a division), then one ``GROUP BY``. So the page costs a few
aggregate queries, and no attempt's values leave the database. Everything is figured over
the template's newest :data:`SAMPLE` done attempts, read backwards along the attempts' (array,
id) index, so a template of a million attempts costs what one of ``SAMPLE`` does. The
statistics and the suggested request come from
:func:`herdsman.server.queries.usage.array_usage`, computed as for ``herdsman resources
usage`` (which reads every attempt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Subquery, and_, case, func, literal, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session

from herdsman.core.error_signature import ExitClass
from herdsman.core.errors import NotFoundError
from herdsman.core.schemas import queries as schemas
from herdsman.core.statuses import TaskInstanceStatus
from herdsman.server.database import models
from herdsman.server.queries.lookups import require_workflow, with_template_names
from herdsman.server.queries.usage import array_usage

__all__ = ["BINS", "SAMPLE", "Histogram", "TemplateResources", "template_resources"]

BINS = 20
SAMPLE = 10_000
"""The newest done attempts of a template the page is figured over."""
_DONE = TaskInstanceStatus.DONE.value
_Value = ColumnElement[Any] | InstrumentedAttribute[Any]


@dataclass(frozen=True)
class Histogram:
    """Attempts counted in ``len(edges) - 1`` equal bins; ``edges`` in the resource's unit
    (bytes, seconds), the last bin closed on the right."""

    edges: tuple[float, ...]
    requested: tuple[int, ...]
    used: tuple[int, ...]

    @property
    def tallest(self) -> int:
        return max((*self.requested, *self.used, 0))


@dataclass(frozen=True)
class TemplateResources:
    """A template's resources within one workflow.

    ``done``: the done attempts figured over (the newest :data:`SAMPLE` at most; ``sampled``
    when the template has more). ``memory`` and ``runtime``: requested and used, over those
    attempts (None when none recorded either). ``used_share_*``: what they used as a share
    of what they asked (sum used / sum asked). ``wasted_gib_hours``: memory asked but unused,
    times the wall time it was held. ``killed_*``: attempts the cluster ended for memory or
    time (all of them: there are few).
    """

    workflow_id: int
    array_id: int
    template: str
    usage: schemas.ResourceUsageOut
    done: int
    memory: Histogram | None
    runtime: Histogram | None
    used_share_memory: float | None
    used_share_runtime: float | None
    wasted_gib_hours: float | None
    killed_memory: int
    killed_time: int
    sampled: bool = False


def template_resources(
    session: Session, workflow_id: int, array_id: int, bins: int = BINS, sample: int = SAMPLE
) -> TemplateResources:
    """The resources page's figures for the template of ``array_id`` in ``workflow_id``."""
    require_workflow(session, workflow_id)
    array = models.Array
    template = session.scalar(
        with_template_names(select(models.TaskTemplate.name).select_from(array)).where(
            array.id == array_id, array.workflow_id == workflow_id
        )
    )
    if template is None:
        raise NotFoundError(f"workflow {workflow_id} has no task template array {array_id}")
    done = _done_of(array_id, sample)
    peak, peak_asked = done.c.max_rss, done.c.requested_memory
    wall, wall_asked = done.c.wall_time, done.c.requested_runtime
    totals = session.execute(
        select(
            func.count(),
            func.sum(peak),
            func.sum(case((peak.is_not(None), peak_asked))),
            func.sum(wall),
            func.sum(case((wall.is_not(None), wall_asked))),
            func.sum(
                case(
                    (
                        and_(peak_asked > peak, wall.is_not(None)),
                        (peak_asked - peak) * wall,
                    )
                )
            ),
        ).select_from(done)
    ).one()
    count, used_mem, asked_mem, used_time, asked_time, wasted = totals
    kills = _kills(session, workflow_id, array_id)
    return TemplateResources(
        workflow_id=workflow_id,
        array_id=array_id,
        template=template,
        usage=array_usage(session, array_id, sample),
        done=int(count),
        memory=_histogram(session, done, peak_asked, peak, bins),
        runtime=_histogram(session, done, wall_asked, wall, bins),
        used_share_memory=_share(used_mem, asked_mem),
        used_share_runtime=_share(used_time, asked_time),
        wasted_gib_hours=None if wasted is None else float(wasted) / 1024**3 / 3600,
        killed_memory=kills.get(ExitClass.OUT_OF_MEMORY.value, 0),
        killed_time=kills.get(ExitClass.OVER_TIME.value, 0),
        sampled=int(count) >= sample,
    )


def _done_of(array_id: int, sample: int) -> Subquery:
    """The requests and usage of the array's newest ``sample`` done attempts, read backwards
    along its (array, id) index (as a derived table: joined back to the attempts, planners
    prefer reading all of them)."""
    instance = models.TaskInstance
    return (
        select(
            instance.requested_memory,
            instance.max_rss,
            instance.requested_runtime,
            instance.wall_time,
        )
        .where(instance.array_id == array_id, instance.status == _DONE)
        .order_by(instance.id.desc())
        .limit(sample)
        .subquery("newest")
    )


def _share(used: float | None, asked: float | None) -> float | None:
    if used is None or not asked:
        return None
    return float(used) / float(asked)


def _histogram(
    session: Session,
    done: Subquery,
    requested: _Value,
    used: _Value,
    bins: int,
) -> Histogram | None:
    """Requested and used values of the ``done`` attempts in ``bins`` bins from zero to the
    largest of either; None when neither was recorded."""
    top = session.execute(select(func.max(requested), func.max(used)).select_from(done)).one()
    high = max((float(value) for value in top if value is not None), default=0.0)
    if high <= 0:
        return None
    edges = tuple(high * k / bins for k in range(bins + 1))
    return Histogram(
        edges=edges,
        requested=_counts(session, done, requested, edges),
        used=_counts(session, done, used, edges),
    )


def _counts(
    session: Session,
    done: Subquery,
    column: _Value,
    edges: Sequence[float],
) -> tuple[int, ...]:
    """How many of the values of ``column`` fall in each bin between ``edges``: the bin is
    the number of inner edges a value reaches, counted in SQL."""
    inner = edges[1:-1]
    bin_of: ColumnElement[int] = literal(0)
    for edge in inner:
        bin_of = bin_of + case((column >= edge, 1), else_=0)
    counts = [0] * (len(edges) - 1)
    # Grouped by the label: PostgreSQL would not match the expression's bound edges in GROUP BY
    # to those in the select list.
    rows = session.execute(
        select(bin_of.label("bin_number"), func.count())
        .select_from(done)
        .where(column.is_not(None))
        .group_by(text("bin_number"))
    ).tuples()
    for number, count in rows:
        counts[int(number)] += int(count)
    return tuple(counts)


def _kills(session: Session, workflow_id: int, array_id: int) -> dict[str, int]:
    """Attempts of the array the cluster ended for memory or for time, by exit class: the
    kept error counts (each ended attempt logs one error)."""
    group = models.ErrorGroupCount
    classes = (ExitClass.OUT_OF_MEMORY.value, ExitClass.OVER_TIME.value)
    rows = session.execute(
        select(group.exit_class, func.sum(group.errors))
        .where(
            group.workflow_id == workflow_id,
            group.array_id == array_id,
            group.exit_class.in_(classes),
        )
        .group_by(group.exit_class)
    ).tuples()
    return {str(kind): int(count) for kind, count in rows}
