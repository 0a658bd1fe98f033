"""The resources page of a task template in a workflow: what its attempts asked for and used.

Histograms are counted by the database (:mod:`herdsman.server.queries.resources`) and drawn
here as SVG on the server, so no attempt's values reach the browser. The statistics, the
suggested request and the resources YAML are those of ``herdsman resources usage`` and
``herdsman resources yaml`` (:mod:`herdsman.core.suggestions`), so the page and the CLI agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from herdsman.core.errors import HerdsmanError
from herdsman.core.schemas.types import Id
from herdsman.core.suggestions import (
    resources_yaml,
    strategy,
    suggested_memory,
    suggested_runtime,
)
from herdsman.core.units import format_bytes
from herdsman.server.database.engine import Database
from herdsman.server.gui.rendering import render
from herdsman.server.gui.routes import PAGE_RULES, page_access
from herdsman.server.gui.session import PageCaller
from herdsman.server.queries import usage, workflows
from herdsman.server.queries.resources import Histogram, template_resources

__all__ = ["Bar", "Chart", "chart", "router"]

STRATEGIES = ("avg", "p90", "p95", "p99", "max")
WIDTH, HEIGHT, MARGIN = 640.0, 180.0, 28.0

# The page shows a workflow's reads and what GET /resource_usage answers: both rules apply.
PAGE_RULES["/workflows/{workflow_id}/usage-totals"] = (
    ("GET", "/workflows/{workflow_id}/usage_totals"),
)
PAGE_RULES["/workflows/{workflow_id}/resources/{array_id}"] = (
    ("GET", "/workflows/{workflow_id}"),
    ("GET", "/resource_usage"),
)

router = APIRouter(include_in_schema=False, dependencies=[Depends(page_access)])


@dataclass(frozen=True)
class Bar:
    """One bar of a histogram as drawn: position and size in the SVG's units."""

    series: str
    x: float
    y: float
    width: float
    height: float
    count: int
    low: float
    high: float


@dataclass(frozen=True)
class Chart:
    """A histogram of requested and used values as SVG bars, with its axis labels."""

    bars: tuple[Bar, ...]
    ticks: tuple[tuple[float, str, str], ...]  # (x, label, text-anchor) under the axis
    tallest: int


def _label(value: float, unit: str) -> str:
    """An axis label: bytes in binary units, seconds to three figures (a histogram of short
    tasks has bins of milliseconds)."""
    if unit == "bytes":
        return format_bytes(value)
    if value < 60:
        return f"{value:.3g} s"
    if value < 3600:
        return f"{value / 60:.3g} min"
    return f"{value / 3600:.3g} h"


def chart(histogram: Histogram, unit: str) -> Chart:
    """Bars side by side in each bin: requested (left) and used (right); ``unit`` is
    "bytes" or "seconds"."""
    bins = len(histogram.edges) - 1
    slot = (WIDTH - MARGIN) / bins
    tallest = max(histogram.tallest, 1)
    plot = HEIGHT - MARGIN
    bars = []
    for index in range(bins):
        low, high = histogram.edges[index], histogram.edges[index + 1]
        for offset, series, count in (
            (0.0, "requested", histogram.requested[index]),
            (0.5, "used", histogram.used[index]),
        ):
            height = plot * count / tallest
            bars.append(
                Bar(
                    series,
                    MARGIN + slot * (index + offset) + 1,
                    plot - height,
                    slot / 2 - 1,
                    height,
                    count,
                    low,
                    high,
                )
            )
    step = max(1, bins // 5)
    ticks = tuple(
        (
            MARGIN + slot * index,
            _label(histogram.edges[index], unit),
            "start" if index == 0 else "end" if index == bins else "middle",
        )
        for index in range(0, bins + 1, step)
    )
    return Chart(tuple(bars), ticks, tallest)


Choice = Annotated[str, Query(max_length=8)]


@router.get("/workflows/{workflow_id}/resources/{array_id}", response_class=HTMLResponse)
async def resources_page(
    request: Request,
    caller: PageCaller,
    workflow_id: Id,
    array_id: Id,
    memory: Choice = "max",
    runtime: Choice = "max",
    headroom: Annotated[float, Query(ge=0, le=1000)] = 20.0,
) -> HTMLResponse:
    """Requested and used memory and runtime of a template's done attempts, its kills, its
    waste, and the request and resources file they suggest."""
    memory_strategy, runtime_strategy = strategy(memory), strategy(runtime)

    def read_page(session: Session) -> dict[str, Any]:
        return {
            "detail": workflows.workflow_detail(session, workflow_id),
            "found": template_resources(session, workflow_id, array_id),
        }

    database: Database = request.app.state.database
    found = await run_in_threadpool(database.read, read_page)
    usage = found["found"].usage
    suggestions = []
    for entry in usage.templates:
        suggestions.append(
            {
                "cluster": entry.cluster,
                "tool": entry.tool,
                "attempts": entry.attempts,
                "runtime": entry.runtime,
                "memory": entry.memory,
                "suggested_runtime": None
                if entry.runtime is None
                else suggested_runtime(entry.runtime, runtime_strategy, headroom / 100),
                "suggested_memory": None
                if entry.memory is None
                else suggested_memory(entry.memory, memory_strategy, headroom / 100),
            }
        )
    try:
        text: str | None = resources_yaml(
            usage, memory=memory_strategy, runtime=runtime_strategy, headroom=headroom / 100
        )
        yaml_error = None
    except HerdsmanError as error:
        text, yaml_error = None, error.message
    result = found["found"]
    return render(
        request,
        "resources.html",
        caller,
        detail=found["detail"],
        result=result,
        memory_chart=chart(result.memory, "bytes") if result.memory else None,
        runtime_chart=chart(result.runtime, "seconds") if result.runtime else None,
        suggestions=suggestions,
        resources_yaml=text,
        yaml_error=yaml_error,
        strategies=STRATEGIES,
        memory_strategy=memory_strategy,
        runtime_strategy=runtime_strategy,
        headroom=headroom,
        width=WIDTH,
        height=HEIGHT,
        margin=MARGIN,
    )


@router.get("/workflows/{workflow_id}/usage-totals", response_class=HTMLResponse)
async def usage_totals_fragment(
    request: Request, caller: PageCaller, workflow_id: Id
) -> HTMLResponse:
    """The workflow page's totals of requested and used core-hours and memory-hours: a
    fragment the page loads after itself, since it sums every attempt of the workflow."""
    database: Database = request.app.state.database
    totals = await run_in_threadpool(
        database.read, lambda session: usage.usage_totals(session, workflow_id)
    )
    return render(request, "_usage_totals.html", caller, totals=totals)
