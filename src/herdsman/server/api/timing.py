"""Request timings and database statement counts of one server process, for load benchmarks.

Off unless ``server.timing_dir`` is set. Then every request's route, caller group (the router's
tag: swarm, distributor, worker, client, gui, ...), status and duration on the server is kept in
memory, every statement and commit sent to the database is counted, and at shutdown the process
writes ``timing-<pid>.json`` into the directory. ``benchmarks/load.py`` reads those files to
report latency percentiles per caller group and round trips per task, measured where the work
is done rather than through the clients' queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine, event
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["RequestTimer", "RequestTimings"]

logger = structlog.get_logger(__name__)

SAMPLE_SECONDS = 0.5


class RequestTimings:
    """Durations by route, 5xx counts, and the database's statement and commit counts, of this
    process; :meth:`write` saves them.

    The counters are ``itertools.count`` objects: ``next()`` on one is atomic under the GIL,
    and the statement events fire in the thread pool's threads.
    """

    def __init__(self, directory: Path, engines: tuple[Engine, ...]) -> None:
        self._directory = directory
        # Per route: (wall-clock end, seconds) of each request.
        self._durations: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self._errors: dict[str, int] = defaultdict(int)
        self._statements = itertools.count()
        self._commits = itertools.count()
        # (wall-clock time, statements, commits) every SAMPLE_SECONDS, so that a benchmark can
        # count a phase of its own (a run after a bind) by its start and end times.
        self._samples: list[tuple[float, int, int]] = []
        for engine in set(engines):
            event.listen(engine, "before_cursor_execute", self._on_statement)
            event.listen(engine, "commit", self._on_commit)

    def _on_statement(self, *_args: Any) -> None:
        next(self._statements)

    def _on_commit(self, *_args: Any) -> None:
        next(self._commits)

    def record(self, key: str, seconds: float, status: int) -> None:
        self._durations[key].append((time.time(), seconds))
        if status >= 500:
            self._errors[key] += 1

    def counts(self) -> tuple[int, int]:
        """Statements and commits so far. A counter's repr is ``count(n)``: n is how many
        ``next()`` calls it has seen."""
        return int(repr(self._statements)[6:-1]), int(repr(self._commits)[6:-1])

    async def sample_periodically(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._samples.append((time.time(), *self.counts()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_SECONDS)

    def write(self) -> Path:
        """Save what was recorded as ``timing-<pid>.json``; returns its path."""
        self._directory.mkdir(parents=True, exist_ok=True)
        path = self._directory / f"timing-{os.getpid()}.json"
        statements, commits = self.counts()
        document = {
            "pid": os.getpid(),
            "statements": statements,
            "commits": commits,
            "samples": [*self._samples, (time.time(), statements, commits)],
            "routes": {
                key: {"requests": durations, "errors_5xx": self._errors.get(key, 0)}
                for key, durations in self._durations.items()
            },
        }
        path.write_text(json.dumps(document))
        logger.info("request_timings_written", path=str(path), statements=statements)
        return path


class RequestTimer:
    """ASGI middleware: each request's route, status and duration to a :class:`RequestTimings`."""

    def __init__(self, app: ASGIApp, timings: RequestTimings) -> None:
        self._app = app
        self._timings = timings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, send_recording)
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            tags = getattr(route, "tags", None) or ["page"]
            path = getattr(route, "path", None) or "(no route)"
            self._timings.record(f"{tags[0]} {scope['method']} {path}", elapsed, status)
