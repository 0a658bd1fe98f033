"""The terminal side of a run: live progress, the distributors' warnings, the final summary.

Everything goes to stderr, so a script's own stdout stays its own.

* :class:`RunDisplay` shows progress the way the output allows: a ``rich`` progress bar
  redrawn in place at a terminal (done / running / queued / failed, rate, elapsed, time
  left), a plain line now and then otherwise (a batch job's log), nothing when switched off.
  The swarm's loop hands it a :class:`RunProgress` after every pass: done and failed counts
  as the swarm knows them, at once. The swarm does not follow tasks starting to run (it has
  no use for that news), so how many of its active tasks run rather than wait in a queue
  comes from the server, asked every few seconds from the display's own thread; the loop
  never waits on the display or the terminal.
* :class:`LogRelay` reads the distributors' log files (JSON lines, see
  :mod:`herdsman.core.logs`) while the run goes on and shows their warnings through the
  display, in the same human format as the user's own process's warnings, above the bar.
  Reading the files rather than letting the distributors write to the terminal keeps the
  bar intact, and leaves the end of each log at hand for the summary of a distributor that
  died (:func:`log_tail`).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, TextIO

import structlog
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TaskID, TextColumn
from rich.table import Column

from herdsman.client.run_report import estimate_seconds_left, format_duration, progress_line
from herdsman.client.swarm.values import RunProgress
from herdsman.core.logs import human_line

__all__ = ["DisplayMode", "LogRelay", "RunDisplay", "choose_mode", "log_tail"]

logger = structlog.get_logger(__name__)

DisplayMode = Literal["live", "lines", "off"]

LINE_INTERVAL_SECONDS = 30.0
"""How often a plain progress line is written when the output is not a terminal."""
LIVE_REDRAW_SECONDS = 1.0
"""How often the live bar is redrawn when nothing changed (the clock, the rate move on)."""
RUNNING_POLL_SECONDS = 5.0
"""How often the live bar asks the server how many tasks run (one count per request)."""
WIDE_TERMINAL = 110
"""Columns from which the live display draws a bar beside the counts."""
RELAY_INTERVAL_SECONDS = 0.5
_RELAYED_LEVELS = frozenset({"warning", "error", "critical", "exception"})


def choose_mode(progress: bool, stream: TextIO | None = None) -> DisplayMode:
    """A live bar at a terminal, plain lines elsewhere, nothing when ``progress`` is off."""
    if not progress:
        return "off"
    stream = stream if stream is not None else sys.stderr
    try:
        return "live" if stream.isatty() else "lines"
    except (AttributeError, ValueError):
        return "lines"


class RunDisplay:
    """Progress of one workflow's run on stderr; see the module docstring.

    Use as a context manager around the run. :meth:`update` may be called from any thread;
    :meth:`say` prints a line above the bar (or plainly), :meth:`print_summary` after exit.
    ``running``: how many of the workflow's tasks run, as the server counts them (None: all
    active tasks count as queued). ``started``: the clock reading the run started at.
    """

    def __init__(
        self,
        workflow_id: int,
        mode: DisplayMode,
        *,
        running: Callable[[], int] | None = None,
        stream: TextIO | None = None,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.mode = mode
        self._running_source = running
        self._server_running = 0
        default = LIVE_REDRAW_SECONDS if mode == "live" else LINE_INTERVAL_SECONDS
        self._interval = default if interval is None else interval
        self._polled_at: float | None = None
        self._clock = clock
        self._started = clock() if started is None else started
        self._latest: RunProgress | None = None
        self._shown: RunProgress | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._console = Console(file=stream, stderr=stream is None, soft_wrap=True, highlight=False)

    # --- the run's side ---------------------------------------------------------------------

    def update(self, progress: RunProgress) -> None:
        """The tasks' latest counts; cheap, called after every pass of the swarm's loop."""
        self._latest = progress
        self._redraw()

    def split(self, progress: RunProgress) -> RunProgress:
        """``progress`` with its active tasks split into running and queued, as last known."""
        active = progress.running + progress.queued
        running = min(max(self._server_running, progress.running), active)
        return replace(progress, running=running, queued=active - running)

    def say(self, line: str) -> None:
        """Print ``line`` (a relayed warning, a notice) without breaking the bar."""
        with self._lock:
            bar = self._progress
            console = bar.console if bar is not None else self._console
            console.print(line, markup=False, highlight=False, soft_wrap=True)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Take the bar off the screen, e.g. while a question waits for an answer."""
        bar = self._progress
        if bar is not None:
            bar.stop()
        try:
            yield
        finally:
            if bar is not None:
                bar.start()

    def print_summary(self, text: str, *, ok: bool) -> None:
        """The end-of-run summary, after the display has stopped; its first line in colour."""
        first, _, rest = text.partition("\n")
        style = ("green" if ok else "bold red") if self.mode == "live" else None
        self._console.print(first, style=style, markup=False, highlight=False)
        if rest:
            self._console.print(rest, markup=False, highlight=False)

    # --- start and stop ---------------------------------------------------------------------

    def __enter__(self) -> RunDisplay:
        if self.mode == "off":
            return self
        if self.mode == "live":
            columns: list[ProgressColumn] = [
                TextColumn(f"workflow {self.workflow_id}:", table_column=Column(no_wrap=True))
            ]
            if self._console.width >= WIDE_TERMINAL:  # room for a bar beside the counts
                columns.append(BarColumn(bar_width=12))
            columns.append(TextColumn("{task.fields[text]}", table_column=Column(no_wrap=True)))
            self._progress = Progress(
                *columns, console=self._console, refresh_per_second=4, transient=False
            )
            self._task = self._progress.add_task("run", total=None, text="starting")
            self._progress.start()
        self._thread = threading.Thread(target=self._loop, name="herdsman-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._poll_running()  # where the run's jobs were when it ended, for the summary
        latest = self._latest
        if self._progress is not None:
            self._redraw(force=True)
            self._progress.stop()
            self._progress = None
        elif self.mode == "lines" and latest is not None:
            self._console.print(self._line(latest, final=True), markup=False, highlight=False)

    # --- internals --------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            if self.mode == "live":
                polled = self._polled_at
                if polled is None or self._clock() - polled >= RUNNING_POLL_SECONDS:
                    self._poll_running()
                self._redraw(force=True)  # the rate and time left move with the clock
            else:
                self._poll_running()
                if (latest := self._latest) is not None:
                    self.say(self._line(latest))

    def _poll_running(self) -> None:
        if self._running_source is None:
            return
        self._polled_at = self._clock()
        try:
            self._server_running = self._running_source()
        except Exception as error:  # progress is a courtesy; the run reports real failures
            logger.debug("progress_running_unavailable", error=str(error))

    def _redraw(self, force: bool = False) -> None:
        bar, latest = self._progress, self._latest
        if bar is None or self._task is None or latest is None:
            return
        shown = self.split(latest)
        if shown == self._shown and not force:
            return
        self._shown = shown
        bar.update(self._task, total=shown.total, completed=shown.done, text=self._bar_text(shown))

    def _bar_text(self, shown: RunProgress) -> str:
        elapsed = self._clock() - self._started
        parts = [
            f"{shown.done}/{shown.total} done",
            f"{shown.running} running",
            f"{shown.queued} queued",
            f"[red]{shown.failed} failed[/]" if shown.failed else "0 failed",
        ]
        if shown.newly_done and elapsed > 0:
            parts.append(f"{shown.newly_done / elapsed:.1f} tasks/s")
        parts.append(format_duration(elapsed))
        left = estimate_seconds_left(shown, elapsed)
        if left:
            parts.append(f"~{format_duration(left)} left")
        return ", ".join(parts)

    def _line(self, progress: RunProgress, *, final: bool = False) -> str:
        elapsed = self._clock() - self._started
        return progress_line(self.workflow_id, self.split(progress), elapsed, final=final)


class LogRelay:
    """Shows the warnings that distributors write to their log files, while the run goes on.

    Reads each file from where it ended when the relay started, every
    :data:`RELAY_INTERVAL_SECONDS`, and once more on exit (after the distributors stopped, so
    their last words are not lost). Lines that are not JSON (a traceback written by Python
    itself) are left in the file, where :func:`log_tail` finds them.
    """

    def __init__(
        self,
        files: Sequence[Path],
        say: Callable[[str], None],
        interval: float = RELAY_INTERVAL_SECONDS,
    ) -> None:
        self._say = say
        self._interval = interval
        self._offsets = {path: _size(path) for path in files}
        self._partial = dict.fromkeys(files, b"")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="herdsman-log-relay", daemon=True)

    def __enter__(self) -> LogRelay:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._read_all()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._read_all()

    def _read_all(self) -> None:
        for path in self._offsets:
            try:
                self._read(path)
            except OSError as error:  # the relay is a courtesy; the log stays on disk
                logger.debug("log_relay_failed", path=str(path), error=str(error))

    def _read(self, path: Path) -> None:
        with path.open("rb") as stream:
            stream.seek(self._offsets[path])
            chunk = stream.read()
        if not chunk:
            return
        self._offsets[path] += len(chunk)
        *lines, self._partial[path] = (self._partial[path] + chunk).split(b"\n")
        for raw in lines:
            event = _event(raw)
            if event is not None and str(event.get("level", "")).lower() in _RELAYED_LEVELS:
                self._say(human_line(event))


def log_tail(path: Path, lines: int, *, max_bytes: int = 64_000) -> tuple[str, ...]:
    """The last ``lines`` lines of a distributor's log, JSON events shown in the human format."""
    try:
        with path.open("rb") as stream:
            stream.seek(0, 2)
            stream.seek(max(0, stream.tell() - max_bytes))
            text = stream.read().decode(errors="replace")
    except OSError:
        return ()
    shown: deque[str] = deque(maxlen=lines)
    for raw in text.splitlines():
        if not raw.strip():
            continue
        event = _event(raw.encode())
        shown.append(human_line(event) if event is not None else raw.rstrip())
    return tuple(shown)


def _event(raw: bytes) -> dict[str, Any] | None:
    if not raw.startswith(b"{"):
        return None
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
