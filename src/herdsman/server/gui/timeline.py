"""The workflow page's timeline as server-drawn SVG: tasks by state, and running against the
limit, over time.

Pure layout: a :class:`~herdsman.core.schemas.queries.TimelineOut` in, polylines in pixel
coordinates out, so the template only writes them down. Statuses are summed into the GUI's
colour buckets (:mod:`herdsman.server.gui.status`), one line each.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from herdsman.core.schemas.queries import TimelineOut
from herdsman.server.gui.status import Bucket, bucket_of

__all__ = ["Chart", "Line", "layout"]

WIDTH = 720
HEIGHT = 160
LEFT = 56
RIGHT = 8
TOP = 8
BOTTOM = 22


@dataclass(frozen=True)
class Line:
    """One series: its colour bucket (or "limit"), its points and its last value."""

    name: str
    points: str
    last: int


@dataclass(frozen=True)
class Chart:
    """One plot: its lines, the top of its y axis and the labels of its time axis."""

    lines: list[Line]
    y_max: int
    start: str
    end: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def layout(timeline: TimelineOut) -> tuple[Chart, Chart] | None:
    """The two plots (tasks by state; running and the limit), or None with no history."""
    if not timeline.times:
        return None
    by_bucket: dict[Bucket, list[int]] = {bucket: [0] * len(timeline.times) for bucket in Bucket}
    for letter, values in timeline.statuses.items():
        target = by_bucket[bucket_of("task", letter)]
        for index, value in enumerate(values):
            target[index] += value
    shown = {bucket: values for bucket, values in by_bucket.items() if any(values)}
    states = _chart(timeline.times, {str(b): v for b, v in shown.items()})
    limit = [timeline.max_concurrently_running] * len(timeline.times)
    running_top = max(timeline.running, default=0)
    # The limit is drawn only where it is within sight of what runs, not as a line at 10,000
    # that flattens a hundred running tasks to the axis.
    series = {"running": timeline.running}
    if timeline.max_concurrently_running <= max(4 * running_top, 10):
        series["limit"] = limit
    running = _chart(timeline.times, series)
    return states, running


def _chart(times: list[int], series: dict[str, list[int]]) -> Chart:
    y_max = max((max(values) for values in series.values()), default=0) or 1
    first, last = times[0], times[-1]
    span = (last - first) or 1
    inner_w = WIDTH - RIGHT - LEFT
    inner_h = HEIGHT - BOTTOM - TOP

    def x(t: int) -> float:
        return LEFT + inner_w * (t - first) / span

    def y(v: int) -> float:
        return HEIGHT - BOTTOM - inner_h * v / y_max

    lines = [
        Line(
            name,
            " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, values, strict=True)),
            values[-1],
        )
        for name, values in series.items()
    ]
    return Chart(lines, y_max, _clock(first), _clock(last))


def _clock(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
