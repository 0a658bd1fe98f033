"""Live pages: one server-sent event stream per open page, fed by the change feed.

A page that shows a running workflow opens ``.../live``; the stream sends an ``update`` event
whose data are the page's changing parts (status counts, bars, attempts) as htmx out-of-band
fragments, each replacing the element with its id. Three rules keep this cheap for the
server however many people watch:

* Coalesced: after an event the stream waits :data:`MIN_INTERVAL_SECONDS` before it looks
  again, so a workflow whose tasks change a thousand times a second costs each viewer one
  event a second.
* Shared: a fragment is computed once per feed position (``workflow.change_seq``) and kept
  in a small cache keyed by (fragment, what it shows, position), so a hundred viewers of the
  same page cost one read per change, not a hundred.
* Idle is free: between changes the stream waits on the in-process change notifier (or
  re-reads the positions every :data:`RECHECK_SECONDS`, for changes committed by another
  server process); no database connection is held while it waits. When the client goes
  away Starlette cancels the stream, and its waiters are dropped.

The browser closes the stream while the tab is hidden and opens it again when it is shown
(``static/live.js``), so background tabs cost nothing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Sequence
from typing import Annotated, Any, TypeVar

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from herdsman.core.changes import EVERY_CHANGE
from herdsman.core.schemas.types import Id
from herdsman.server.database import models, sql
from herdsman.server.database.engine import Database
from herdsman.server.database.feed import ChangeNotifier
from herdsman.server.gui import status
from herdsman.server.gui.rendering import render_blocks
from herdsman.server.gui.routes import (
    MEDIAN_SAMPLE,
    TAIL_LINES,
    WORKFLOWS_PER_PAGE,
    page_access,
    timeline_context,
)
from herdsman.server.gui.session import PageCaller
from herdsman.server.queries import lookups, tasks, usage, workflows

__all__ = [
    "MIN_INTERVAL_SECONDS",
    "RECHECK_SECONDS",
    "FragmentCache",
    "end_streams",
    "router",
    "sse_event",
]

logger = structlog.get_logger(__name__)

T = TypeVar("T")

MIN_INTERVAL_SECONDS = 1.0
"""At most one event a second per stream, however often the feed moves."""

RECHECK_SECONDS = 2.0
"""How often an idle stream re-reads its positions, for commits of another server process
(commits of this process wake it at once)."""

KEEPALIVE_SECONDS = 15.0
"""A comment line this often on an idle stream, so proxies do not close it as dead."""

STREAM_LIFETIME_SECONDS = 600.0
"""A stream ends after this long and the browser opens a new one (EventSource reconnects by
itself), so the access rules and the sign-in cookie's expiry and revocation are checked again."""

CACHE_ENTRIES = 256

UPDATE_EVENT = "update"


class FragmentCache:
    """Rendered fragments by (fragment, subject, feed position), newest kept, computed once.

    Two viewers asking for the same key at once share one computation: the second awaits the
    first's future instead of reading the database again.
    """

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._done: OrderedDict[Hashable, str] = OrderedDict()
        self._pending: dict[Hashable, asyncio.Future[str]] = {}
        self.computed = 0  # how many fragments were rendered: for tests and logs

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[str]]) -> str:
        while True:
            found = self._done.get(key)
            if found is not None:
                self._done.move_to_end(key)
                return found
            pending = self._pending.get(key)
            if pending is None:
                return await self._compute(key, compute)
            try:
                return await asyncio.shield(pending)
            except _Abandoned:
                continue  # its viewer left while computing it: the next one computes it

    async def _compute(self, key: Hashable, compute: Callable[[], Awaitable[str]]) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            value = await compute()
        except BaseException as error:  # cancelled too: the viewer computing it went away
            future.set_exception(error if isinstance(error, Exception) else _Abandoned())
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._pending[key]
        self.computed += 1
        future.set_result(value)
        self._done[key] = value
        while len(self._done) > self._entries:
            self._done.popitem(last=False)
        return value


class _Abandoned(Exception):
    """The fragment's computation was cancelled (its stream ended), not failed."""


def _stopping(request: Request) -> asyncio.Event:
    state = request.app.state
    event: asyncio.Event | None = getattr(state, "gui_streams_stopping", None)
    if event is None:
        event = state.gui_streams_stopping = asyncio.Event()
    return event


def end_streams(app: Any) -> None:
    """End every live stream of ``app`` now: the server is stopping, and open pages would
    otherwise hold up its graceful shutdown until it gives up on them."""
    event: asyncio.Event | None = getattr(app.state, "gui_streams_stopping", None)
    if event is not None:
        event.set()


def sse_event(event: str, data: str) -> str:
    """One server-sent event; each line of ``data`` is its own ``data:`` field."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


async def _pause(seconds: float) -> None:
    """The coalescing wait after an event (a function of its own, so tests can count it)."""
    await asyncio.sleep(seconds)


async def _wait_any(events: Sequence[asyncio.Event], timeout: float) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def follow(
    request: Request,
    workflow_ids: Sequence[int],
    position: Callable[[Session], Hashable],
    fragment: Callable[[Hashable], Awaitable[str]],
) -> AsyncIterator[str]:
    """Events of one stream: the fragment now, then again each time ``position`` moves.

    ``position`` is a short read (the workflows' feed counters); the fragment is computed
    (through the cache) only when it changed. Runs until the client disconnects, when
    Starlette cancels it, for :data:`STREAM_LIFETIME_SECONDS`, or until the server stops
    (:func:`end_streams`).
    """
    database: Database = request.app.state.database
    notifier: ChangeNotifier = request.app.state.notifier
    loop = asyncio.get_running_loop()
    shown: Hashable = object()  # nothing shown yet: the first read always sends
    stopping = _stopping(request)
    quiet_since = started = loop.time()
    yield "retry: 3000\n\n"
    try:
        while loop.time() - started < STREAM_LIFETIME_SECONDS and not stopping.is_set():
            # Watch before reading, so a commit between the read and the wait still wakes us.
            events = [notifier.watch(w, EVERY_CHANGE) for w in workflow_ids]
            try:
                now = await run_in_threadpool(database.read, position)
                if now != shown:
                    yield sse_event(UPDATE_EVENT, await fragment(now))
                    shown = now
                    quiet_since = loop.time()
                    await _pause(MIN_INTERVAL_SECONDS)
                    continue
                if loop.time() - quiet_since >= KEEPALIVE_SECONDS:
                    yield ": keepalive\n\n"
                    quiet_since = loop.time()
                await _wait_any([*events, stopping], RECHECK_SECONDS)
            finally:
                for workflow_id, event in zip(workflow_ids, events, strict=True):
                    notifier.forget(workflow_id, event)
    finally:
        logger.debug("live stream ended", path=request.url.path)


def _stream(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        events,
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )


def _cache(request: Request) -> FragmentCache:
    app_state = request.app.state
    cache: FragmentCache | None = getattr(app_state, "gui_fragments", None)
    if cache is None:
        cache = app_state.gui_fragments = FragmentCache()
    return cache


async def _read(request: Request, query: Callable[[Session], T]) -> T:
    database: Database = request.app.state.database
    return await run_in_threadpool(database.read, query)


def _positions(workflow_ids: Sequence[int]) -> Callable[[Session], Hashable]:
    """The workflows' feed counters and statuses (a workflow's status changes with its
    runs, which are in the feed, but a read between the two commits must not miss it)."""

    def read(session: Session) -> Hashable:
        if not workflow_ids:
            return ()
        marks = ", ".join("?" for _ in workflow_ids)
        rows = sql.fetch_all(
            session,
            f"SELECT id, change_seq, status FROM workflow WHERE id IN ({marks}) ORDER BY id",
            tuple(workflow_ids),
        )
        return tuple((int(i), int(seq), str(s)) for i, seq, s in rows)

    return read


router = APIRouter(include_in_schema=False, dependencies=[Depends(page_access)])


@router.get("/workflows/{workflow_id}/live")
async def workflow_live(request: Request, workflow_id: Id) -> StreamingResponse:
    """The workflow page's header (status, counts, health) and its per-template table."""
    cache = _cache(request)

    def read(session: Session) -> dict[str, Any]:
        detail = workflows.workflow_detail(session, workflow_id)
        runs = workflows.latest_runs(session, workflow_id, 1)
        rows = workflows.template_rows(session, workflow_id)
        return {
            "detail": detail,
            "summary": workflows.workflow_summaries(session, [workflow_id], None, 1).workflows[0],
            "templates": rows,
            "medians": usage.template_medians(
                session, workflow_id, [row.array_id for row in rows], MEDIAN_SAMPLE
            ),
            "median_sample": MEDIAN_SAMPLE,
            "health": status.health(detail.status, runs[0] if runs else None, models.utcnow()),
            **timeline_context(session, workflow_id),
        }

    async def fragment(position: Hashable) -> str:
        async def compute() -> str:
            found = await _read(request, read)
            return render_blocks(
                "workflow.html", ("live_header", "live_templates", "live_timeline"), found
            )

        return await cache.get(("workflow", workflow_id, position), compute)

    def exists(session: Session) -> None:
        lookups.require_workflow(session, workflow_id)  # a 404 now, not an empty stream

    await _read(request, exists)
    return _stream(follow(request, [workflow_id], _positions([workflow_id]), fragment))


@router.get("/tasks/{task_id}/live")
async def task_live(request: Request, task_id: Id) -> StreamingResponse:
    """The task page's title (status) and its attempts."""
    cache = _cache(request)
    workflow_id = (
        await _read(request, lambda s: tasks.task_detail(s, task_id, neighbour_limit=0))
    ).workflow_id

    def read(session: Session) -> dict[str, Any]:
        return {
            "detail": tasks.task_detail(session, task_id, neighbour_limit=0),
            "attempts": tasks.task_attempts(session, task_id, TAIL_LINES),
        }

    async def fragment(position: Hashable) -> str:
        async def compute() -> str:
            found = await _read(request, read)
            return render_blocks("task.html", ("live_title", "live_attempts"), found)

        return await cache.get(("task", task_id, position), compute)

    return _stream(follow(request, [workflow_id], _positions([workflow_id]), fragment))


@router.get("/live")
async def workflows_live(
    request: Request,
    caller: PageCaller,
    ids: Annotated[list[Id] | None, Query(alias="id", max_length=WORKFLOWS_PER_PAGE * 10)] = None,
) -> StreamingResponse:
    """The workflows page's visible rows (status, bar, totals), by their ids.

    Where only owners read, only the caller's own workflows are followed, as on the page.
    """
    cache = _cache(request)
    wanted = sorted(set(ids or ()))
    only_user = caller.user if request.app.state.owners_only_read and not caller.is_admin else None

    def read(session: Session) -> dict[str, Any]:
        if not wanted:
            return {"rows": []}
        found = workflows.workflow_summaries(session, wanted, only_user, len(wanted) or 1)
        return {"rows": found.workflows}

    shown = await _read(request, read)
    followed = [row.id for row in shown["rows"]]

    async def fragment(position: Hashable) -> str:
        async def compute() -> str:
            found = await _read(request, read)
            return "".join(
                render_blocks("workflows.html", ("live_row",), {"w": row}) for row in found["rows"]
            )

        return await cache.get(("workflows", only_user, tuple(followed), position), compute)

    return _stream(follow(request, followed, _positions(followed), fragment))
