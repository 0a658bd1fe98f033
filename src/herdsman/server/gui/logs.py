"""The log viewer of an attempt: its stored output tail, and its output file when allowed.

The page shows the tail the attempt reported (always), and, when the server may read the
file the attempt recorded (:mod:`herdsman.server.gui.logfiles`: under ``gui.log_roots``), the
file's last 64 KB. Its script asks for earlier parts by byte range, follows a live attempt's
file while the tab is visible, searches the file on the server and downloads it whole.

The access rules are the task page's: the attempt is looked up among the task's attempts
(:func:`herdsman.server.queries.tasks.task_attempts`, as ``GET /tasks/{id}/attempts``), so a
task the caller may read never leads to another workflow's attempt.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from herdsman.core.errors import HerdsmanError, NotFoundError
from herdsman.core.lifecycle import UNFINISHED_INSTANCE_STATUSES
from herdsman.core.schemas import queries as schemas
from herdsman.core.schemas.types import Id
from herdsman.server.database.engine import Database
from herdsman.server.gui import logfiles
from herdsman.server.gui.rendering import render
from herdsman.server.gui.routes import PAGE_RULES, page_access
from herdsman.server.gui.session import PageCaller
from herdsman.server.queries import tasks

__all__ = ["router"]

_BASE = "/tasks/{task_id}/attempts/{attempt_id}/{stream}"
_RULES = (("GET", "/tasks/{task_id}"), ("GET", "/tasks/{task_id}/attempts"))
# The viewer shows a task's attempts: the task page's rules.
for _path in (_BASE, _BASE + "/bytes", _BASE + "/search", _BASE + "/download"):
    PAGE_RULES[_path] = _RULES

router = APIRouter(include_in_schema=False, dependencies=[Depends(page_access)])

Stream = Literal["stdout", "stderr"]
_UNFINISHED = frozenset(status.value for status in UNFINISHED_INSTANCE_STATUSES)


async def _attempt(request: Request, task_id: int, attempt_id: int) -> schemas.AttemptOut:
    """The attempt, if it is one of the task's (404 otherwise)."""
    database: Database = request.app.state.database

    def read(session: Session) -> schemas.TaskAttemptsOut:
        return tasks.task_attempts(session, task_id)

    found = await run_in_threadpool(database.read, read)
    for attempt in found.attempts:
        if attempt.id == attempt_id:
            return attempt
    raise NotFoundError(f"task {task_id} has no attempt {attempt_id}")


def _roots(request: Request) -> tuple[Path, ...]:
    roots: tuple[Path, ...] = request.app.state.log_roots
    return roots


def _recorded(attempt: schemas.AttemptOut, stream: Stream) -> str | None:
    return attempt.stdout_path if stream == "stdout" else attempt.stderr_path


def _piece(piece: logfiles.Piece) -> dict[str, Any]:
    return {"start": piece.start, "end": piece.end, "size": piece.size, "text": piece.text}


@router.get(_BASE, response_class=HTMLResponse)
async def log_page(
    request: Request, caller: PageCaller, task_id: Id, attempt_id: Id, stream: Stream
) -> HTMLResponse:
    """The attempt's stored tail and, when allowed, the last part of its output file."""
    attempt = await _attempt(request, task_id, attempt_id)
    recorded = _recorded(attempt, stream)
    piece: logfiles.Piece | None = None
    refusal: str | None = None
    if recorded is None:
        refusal = f"attempt {attempt_id} recorded no {stream} file"
    else:
        try:
            with logfiles.opened(recorded, _roots(request)) as (descriptor, size):
                piece = await run_in_threadpool(logfiles.read_before, descriptor, size, None)
        except HerdsmanError as error:
            refusal = error.message
    return render(
        request,
        "log.html",
        caller,
        task_id=task_id,
        attempt=attempt,
        stream=stream,
        recorded=recorded,
        tail=attempt.stdout_tail if stream == "stdout" else attempt.stderr_tail,
        piece=piece,
        refusal=refusal,
        live=attempt.status in _UNFINISHED,
        base=f"/tasks/{task_id}/attempts/{attempt_id}/{stream}",
    )


@router.get(_BASE + "/bytes")
async def log_bytes(
    request: Request,
    task_id: Id,
    attempt_id: Id,
    stream: Stream,
    before: Annotated[int | None, Query(ge=0)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> JSONResponse:
    """Up to 64 KB of the file: the part ending at ``before``, or starting at ``after`` (the
    live tail asks for what was written since); the end of the file without either."""
    attempt = await _attempt(request, task_id, attempt_id)
    live = attempt.status in _UNFINISHED
    with logfiles.opened(_recorded(attempt, stream), _roots(request)) as (descriptor, size):
        if after is not None:
            piece = await run_in_threadpool(
                functools.partial(logfiles.read_after, whole_lines=live),
                descriptor,
                size,
                after,
            )
        else:
            piece = await run_in_threadpool(logfiles.read_before, descriptor, size, before)
    return JSONResponse({**_piece(piece), "live": live})


@router.get(_BASE + "/search")
async def log_search(
    request: Request,
    task_id: Id,
    attempt_id: Id,
    stream: Stream,
    q: Annotated[str, Query(min_length=1, max_length=200)],
) -> JSONResponse:
    """The lines of the file that hold ``q`` (ignoring case), bounded (see logfiles)."""
    attempt = await _attempt(request, task_id, attempt_id)
    with logfiles.opened(_recorded(attempt, stream), _roots(request)) as (descriptor, size):
        found = await run_in_threadpool(logfiles.search, descriptor, size, q)
    return JSONResponse(
        {
            "matches": [
                {"line": match.line, "offset": match.offset, "text": match.text}
                for match in found.matches
            ],
            "searched": found.searched,
            "size": size,
            "complete": found.complete,
        }
    )


@router.get(_BASE + "/download")
async def log_download(
    request: Request, task_id: Id, attempt_id: Id, stream: Stream
) -> StreamingResponse:
    """The whole file, streamed; refused before the answer starts if it may not be read."""
    attempt = await _attempt(request, task_id, attempt_id)
    recorded = _recorded(attempt, stream)
    roots = _roots(request)
    with logfiles.opened(recorded, roots):
        pass  # refusals and missing files answer here, not halfway through the download
    if recorded is None:  # pragma: no cover - opened refuses it
        raise NotFoundError(f"attempt {attempt_id} recorded no {stream} file")
    name = Path(recorded).name.replace('"', "_")
    return StreamingResponse(
        logfiles.stream(recorded, roots),
        media_type="text/plain; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )
