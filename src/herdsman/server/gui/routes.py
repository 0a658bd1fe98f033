"""The GUI's pages: workflows, one workflow, its tasks, its errors, one task.

Each page reads through the same query functions as the JSON route it mirrors, so the CLI and
the GUI agree, and applies that route's access rule (``PAGE_RULES``) before reading: a page
refuses whom the JSON route refuses. Every read is bounded (LIMIT, keyset paging, GROUP BY
counts), so pages stay fast for a workflow of a million tasks.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from herdsman.core.errors import InvalidInputError, PermissionDeniedError
from herdsman.core.schemas.queries import TaskAttemptsOut
from herdsman.core.schemas.types import Id
from herdsman.core.statuses import TaskStatus, WorkflowStatus
from herdsman.server.api.access import check_route
from herdsman.server.database import models
from herdsman.server.database.engine import Database
from herdsman.server.gui import dag, status
from herdsman.server.gui import timeline as timeline_chart
from herdsman.server.gui.rendering import render as _render
from herdsman.server.gui.rendering import render_blocks
from herdsman.server.gui.session import PageCaller
from herdsman.server.queries import (
    diagnostics,
    history,
    lookups,
    tasks,
    timeline,
    usage,
    workflows,
)

__all__ = ["PAGE_RULES", "page_access", "router"]

T = TypeVar("T")

# GUI path -> the JSON routes (POLICY keys) whose reads the page shows: the page applies each
# of their rules. A page without a row here is refused, as a JSON route without a POLICY row.
PAGE_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "/": (("GET", "/workflow_summaries"),),
    "/workflows/{workflow_id}": (
        ("GET", "/workflows/{workflow_id}"),
        ("GET", "/workflows/{workflow_id}/history"),
        ("GET", "/workflows/{workflow_id}/timeline"),
    ),
    "/workflows/{workflow_id}/timeline": (("GET", "/workflows/{workflow_id}/timeline"),),
    "/workflows/{workflow_id}/tasks": (("GET", "/workflows/{workflow_id}/tasks"),),
    "/workflows/{workflow_id}/tasks.csv": (("GET", "/workflows/{workflow_id}/tasks"),),
    "/workflows/{workflow_id}/errors": (("GET", "/workflows/{workflow_id}/error_groups"),),
    "/tasks/{task_id}": (
        ("GET", "/tasks/{task_id}"),
        ("GET", "/tasks/{task_id}/attempts"),
        ("GET", "/tasks/{task_id}/dependencies"),
    ),
    "/tasks/{task_id}/{direction}": (("GET", "/tasks/{task_id}/dependencies"),),
    # Live updates of the pages above (gui/live.py): what the page shows, so its rules.
    "/live": (("GET", "/workflow_summaries"),),
    "/workflows/{workflow_id}/live": (
        ("GET", "/workflows/{workflow_id}"),
        ("GET", "/workflows/{workflow_id}/history"),
        ("GET", "/workflows/{workflow_id}/timeline"),
    ),
    "/tasks/{task_id}/live": (
        ("GET", "/tasks/{task_id}"),
        ("GET", "/tasks/{task_id}/attempts"),
    ),
}

MAX_PER_PAGE = 500
WORKFLOWS_PER_PAGE = 50
TASKS_PER_PAGE = 100
NEIGHBOURS_PER_PAGE = 50
CSV_CHUNK = 1000
HISTORY_ENTRIES = 50
RUNS_SHOWN = 5
ERROR_GROUPS = 25
TAIL_LINES = 40
MEDIAN_SAMPLE = 1000
BLOCKERS_LISTED = 20


async def _page_access(request: Request, caller: PageCaller) -> None:
    """Refuse the page (403, 404) unless the rules of the JSON routes it mirrors allow it."""
    path: str = request.scope["route"].path
    keys = PAGE_RULES.get(path)
    if keys is None:
        raise PermissionDeniedError(f"the page {path} has no access rule")
    for key in keys:
        await check_route(request, caller, key)


page_access = _page_access  # for the live streams of the same pages (gui/live.py)

router = APIRouter(include_in_schema=False, dependencies=[Depends(_page_access)])


async def _read(request: Request, query: Callable[[Session], T]) -> T:
    database: Database = request.app.state.database
    return await run_in_threadpool(database.read, query)


def _with(request: Request, **changes: object) -> str:
    """This page's URL with some query parameters changed (None removes one)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    for key, value in changes.items():
        if value is not None:
            params.append((key, str(value)))
    return request.url.path + ("?" + urlencode(params) if params else "")


def _date(name: str, value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
    except ValueError:
        raise InvalidInputError(
            f"{name} {value!r} is not a date (YYYY-MM-DD)", details={"fields": [name]}
        ) from None


def _whole(name: str, value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    if not value.strip().isdigit():
        raise InvalidInputError(
            f"{name} {value!r} is not a whole number", details={"fields": [name]}
        )
    return int(value)


Text = Annotated[str | None, Query(max_length=255)]


@router.get("/", response_class=HTMLResponse)
async def workflows_page(
    request: Request,
    caller: PageCaller,
    user: Text = None,
    tool: Text = None,
    name: Text = None,
    args: Text = None,
    id: Text = None,
    status_: Annotated[list[str] | None, Query(alias="status", max_length=20)] = None,
    submitted_from: Text = None,
    submitted_to: Text = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = WORKFLOWS_PER_PAGE,
) -> HTMLResponse:
    """Workflows, newest first: the caller's own unless the user filter says otherwise."""
    shown_user = caller.user if user is None else user.strip()
    if request.app.state.owners_only_read and not caller.is_admin:
        shown_user = caller.user  # as GET /workflow_summaries: only their own
    until = _date("submitted_to", submitted_to)
    filters = workflows.WorkflowFilter(
        user=shown_user or None,
        tool=tool or None,
        name=name or None,
        args=args or None,
        workflow_id=_whole("id", id),
        statuses=tuple(status_ or ()),
        submitted_from=_date("submitted_from", submitted_from),
        submitted_to=until + dt.timedelta(days=1) if until is not None else None,
    )
    page = await _read(request, lambda s: workflows.find_workflows(s, filters, before, limit))
    return _render(
        request,
        "workflows.html",
        caller,
        page=page,
        user=shown_user,
        filters=filters,
        form={
            "tool": tool or "",
            "name": name or "",
            "args": args or "",
            "id": id or "",
            "submitted_from": submitted_from or "",
            "submitted_to": submitted_to or "",
        },
        workflow_statuses=list(WorkflowStatus),
        next_url=_with(request, before=page.next_before) if page.next_before else None,
        first_url=_with(request, before=None) if before is not None else None,
    )


@router.get("/workflows/{workflow_id}", response_class=HTMLResponse)
async def workflow_page(request: Request, caller: PageCaller, workflow_id: Id) -> HTMLResponse:
    """A workflow's header, health, templates, template DAG and audit history."""

    def read(session: Session) -> dict[str, Any]:
        detail = workflows.workflow_detail(session, workflow_id)
        summary = workflows.workflow_summaries(session, [workflow_id], None, 1).workflows[0]
        rows = workflows.template_rows(session, workflow_id)
        return {
            "detail": detail,
            "summary": summary,
            "runs": workflows.latest_runs(session, workflow_id, RUNS_SHOWN),
            "templates": rows,
            "medians": usage.template_medians(
                session, workflow_id, [row.array_id for row in rows], MEDIAN_SAMPLE
            ),
            "edges": workflows.template_edges(session, workflow_id),
            "history": history.workflow_history(session, workflow_id, HISTORY_ENTRIES),
            **timeline_context(session, workflow_id),
        }

    found = await _read(request, read)
    runs: list[workflows.RunRow] = found["runs"]
    return _render(
        request,
        "workflow.html",
        caller,
        **found,
        health=status.health(found["detail"].status, runs[0] if runs else None, models.utcnow()),
        dag=dag.layout(found["templates"], found["edges"]),
        median_sample=MEDIAN_SAMPLE,
    )


def _task_filter(
    status_: Annotated[list[str] | None, Query(alias="status", max_length=20)] = None,
    template: Text = None,
    name: Text = None,
    attempts: Text = None,
    signature: Text = None,
) -> tasks.TaskFilter:
    """The tasks page's filters, read from the query (a dependency of its routes)."""
    return tasks.TaskFilter(
        statuses=tuple(status_ or ()),
        template=template or None,
        name=name or None,
        min_attempts=_whole("attempts", attempts),
        signature=signature or None,
    )


def _sort(value: str | None) -> tasks.TaskSort:
    try:
        return tasks.TaskSort(value or "id")
    except ValueError:
        choices = ", ".join(sort.value for sort in tasks.TaskSort)
        raise InvalidInputError(
            f"sort {value!r} is not one of {choices}", details={"fields": ["sort"]}
        ) from None


TaskFilterQuery = Annotated[tasks.TaskFilter, Depends(_task_filter)]


TIMELINE_BUCKETS = 120


def timeline_context(session: Session, workflow_id: int) -> dict[str, Any]:
    """The timeline's data and its drawing, for the workflow page and its live updates."""
    found = timeline.workflow_timeline(session, workflow_id, TIMELINE_BUCKETS)
    return {"timeline": found, "chart": timeline_chart.layout(found)}


@router.get("/workflows/{workflow_id}/timeline", response_class=HTMLResponse)
async def timeline_fragment(request: Request, workflow_id: Id) -> HTMLResponse:
    """The workflow page's timeline alone (the live updates send it with the rest)."""
    found = await _read(request, lambda s: timeline_context(s, workflow_id))
    return HTMLResponse(
        render_blocks("workflow.html", ("live_timeline",), found, out_of_band=False)
    )


@router.get("/workflows/{workflow_id}/tasks", response_class=HTMLResponse)
async def tasks_page(
    request: Request,
    caller: PageCaller,
    workflow_id: Id,
    filters: TaskFilterQuery,
    sort: Text = None,
    after: Text = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = TASKS_PER_PAGE,
) -> HTMLResponse:
    """The workflow's tasks, filtered and sorted on the server, a page at a time; htmx asks
    for the next page's rows only (``HX-Request``)."""
    order = _sort(sort)
    fragment = request.headers.get("hx-request") == "true" and bool(after)

    def read(session: Session) -> dict[str, Any]:
        page = tasks.task_page(session, workflow_id, filters, order, after, limit)
        if fragment:
            return {"page": page}
        return {
            "page": page,
            "detail": workflows.workflow_detail(session, workflow_id),
            "templates": workflows.template_names(session, workflow_id),
        }

    found = await _read(request, read)
    page: tasks.TaskPage = found["page"]
    next_url = _with(request, after=page.next_after) if page.next_after else None
    if fragment:
        return _render(request, "_task_rows.html", caller, page=page, next_url=next_url)
    return _render(
        request,
        "tasks.html",
        caller,
        **found,
        workflow_id=workflow_id,
        filters=filters,
        sort=order.value,
        sorts=[sort.value for sort in tasks.TaskSort],
        task_statuses=list(TaskStatus),
        form={
            "name": filters.name or "",
            "attempts": "" if filters.min_attempts is None else str(filters.min_attempts),
            "signature": filters.signature or "",
        },
        next_url=next_url,
        csv_url=_with(request, after=None).replace(
            f"/workflows/{workflow_id}/tasks", f"/workflows/{workflow_id}/tasks.csv", 1
        ),
        first_url=_with(request, after=None) if after else None,
    )


CSV_COLUMNS = (
    "id",
    "name",
    "template",
    "status",
    "status_name",
    "attempts",
    "max_attempts",
    "runtime_seconds",
    "max_rss_bytes",
)


@router.get("/workflows/{workflow_id}/tasks.csv")
async def tasks_csv(
    request: Request,
    workflow_id: Id,
    filters: TaskFilterQuery,
    sort: Text = None,
) -> Response:
    """Every task the filters keep, as CSV, streamed a thousand rows per read."""
    order = _sort(sort)
    database: Database = request.app.state.database
    await _read(request, lambda s: lookups.require_workflow(s, workflow_id))  # a 404 first

    def chunk(cursor: str | None) -> tasks.TaskPage:
        return database.read(
            lambda s: tasks.task_page(s, workflow_id, filters, order, cursor, CSV_CHUNK)
        )

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_COLUMNS)
        # The header at once: the download starts before the first rows are read.
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        after: str | None = None
        while True:
            page = chunk(after)
            for row in page.tasks:
                writer.writerow(
                    (
                        row.id,
                        row.name,
                        row.template,
                        row.status,
                        status.status_name("task", row.status),
                        row.num_attempts,
                        row.max_attempts,
                        "" if row.runtime is None else row.runtime,
                        "" if row.memory is None else row.memory,
                    )
                )
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if page.next_after is None:
                return
            after = page.next_after

    filename = f"workflow-{workflow_id}-tasks.csv"
    return StreamingResponse(
        rows(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/workflows/{workflow_id}/errors", response_class=HTMLResponse)
async def errors_page(
    request: Request,
    caller: PageCaller,
    workflow_id: Id,
    template: Text = None,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """The workflow's errors grouped by signature, for all templates or one, a page of
    groups at a time (the largest first)."""

    def read(session: Session) -> dict[str, Any]:
        array_id = None
        if template:
            array_id = lookups.array_of_template(session, workflow_id, template)
        by_template = diagnostics.errors_by_template(session, workflow_id)
        groups = diagnostics.error_groups(
            session, workflow_id, ERROR_GROUPS, TAIL_LINES, array_id=array_id, offset=offset
        )
        return {
            "detail": workflows.workflow_detail(session, workflow_id),
            "by_template": by_template,
            "groups": groups,
        }

    found = await _read(request, read)
    shown = len(found["groups"].groups)
    more = offset + shown < found["groups"].group_count
    return _render(
        request,
        "errors.html",
        caller,
        **found,
        workflow_id=workflow_id,
        template=template or "",
        offset=offset,
        previous_url=_with(request, offset=max(0, offset - ERROR_GROUPS) or None)
        if offset
        else None,
        next_url=_with(request, offset=offset + ERROR_GROUPS) if more else None,
    )


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(request: Request, caller: PageCaller, task_id: Id) -> HTMLResponse:
    """A task: its command, resources, attempts, neighbours and why it is not running."""

    def read(session: Session) -> dict[str, Any]:
        detail = tasks.task_detail(session, task_id, neighbour_limit=0)
        blockers = None
        if detail.status != TaskStatus.RUNNING.value:
            blockers = tasks.task_blockers(session, task_id, BLOCKERS_LISTED)
        return {
            "detail": detail,
            "attempts": tasks.task_attempts(session, task_id, TAIL_LINES),
            "blockers": blockers,
            "upstream": tasks.neighbour_page(
                session, task_id, "upstream", None, NEIGHBOURS_PER_PAGE
            ),
            "downstream": tasks.neighbour_page(
                session, task_id, "downstream", None, NEIGHBOURS_PER_PAGE
            ),
        }

    found = await _read(request, read)
    blockers = found["blockers"]
    pending = _pending(request, found["attempts"])
    return _render(
        request,
        "task.html",
        caller,
        **found,
        reasons=status.why_not_running(blockers, pending) if blockers is not None else [],
    )


def _pending(request: Request, attempts: TaskAttemptsOut) -> str | None:
    """The cluster's reason the newest attempt's job waits, in words, if one was reported."""
    if not attempts.attempts:
        return None
    found = request.app.state.pending_reasons.of(attempts.attempts[-1].id)
    return None if found is None else status.pending_words(found.scheduler, found.reason)


@router.get("/tasks/{task_id}/{direction}", response_class=HTMLResponse)
async def neighbours_fragment(
    request: Request,
    caller: PageCaller,
    task_id: Id,
    direction: Literal["upstream", "downstream"],
    after: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = NEIGHBOURS_PER_PAGE,
) -> HTMLResponse:
    """The next page of a task's upstream or downstream tasks, as table rows (for htmx)."""
    page = await _read(
        request,
        lambda s: tasks.neighbour_page(s, task_id, direction, after, limit),
    )
    return _render(
        request,
        "_neighbour_rows.html",
        caller,
        page=page,
        task_id=task_id,
        direction=direction,
        limit=limit if limit != NEIGHBOURS_PER_PAGE else None,
    )
