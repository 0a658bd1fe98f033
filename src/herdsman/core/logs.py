"""Log set-up for herdsman's processes, and the one format in which log lines reach a person.

Library code only calls ``structlog.get_logger(__name__)``; the entry point of a process
decides where logs go, from which level and in which format, once. Logs go to stderr so that
a command's stdout stays machine-readable (``herdsman config show`` prints YAML there).

Three formats:

``text``   structlog's key=value lines with timestamps: the server's log, ``--debug``.
``json``   one JSON object per line: the log file of a distributor started by ``run()``, which
           the user's process reads back (:mod:`herdsman.client.run_display`) to show its
           warnings and, when the distributor died, its last lines.
``human``  what a person at a terminal reads: ``herdsman warning: task 12 (attempt 34): ...``.
           The user's script, the ``herdsman`` command and the warnings relayed from a
           distributor all use it, so machinery warnings (a pool process died, a command
           exceeded its memory) read the same wherever they come from, and name the task and
           attempt concerned.

``HERDSMAN_LOG_FORMAT`` picks the format of processes that only import herdsman (pool
processes): a distributor writing JSON sets it for its children.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO, cast

import structlog
from structlog.typing import ExcInfo

__all__ = [
    "FORMAT_VARIABLE",
    "LogFormat",
    "configure_library_logging",
    "configure_logging",
    "debugging",
    "describe_event",
    "human_line",
]

LogFormat = Literal["text", "json", "human"]
FORMAT_VARIABLE = "HERDSMAN_LOG_FORMAT"

_debug = False

# Sentences for events a person may see, by event name. Fields in braces come from the
# event; an event missing one of them falls back to the generic rendering.
_SENTENCES: Mapping[str, str] = {
    # The watcher's reason says what was used, what was asked and that the task is retried.
    "worker_limit_exceeded": "{reason}",
    "worker_limit_kill_failed": "the command exceeded its {resource} request but could not be "
    "killed",
    "multiprocess_worker_died": "a process of the multiprocess pool died (exit code "
    "{exit_code}); the pool started a new one",
    "pool_process_terminated": "a pool process (pid {pid}) did not exit when asked and was "
    "terminated",
    "distributor_killed": "the distributor (pid {pid}) did not stop within {timeout} s of "
    "being asked and was killed",
    "distributor_straggler_killed": "a process the distributor left behind (pid {pid}) was killed",
    "distributor_server_unreachable": "the distributor cannot reach the server ({error}); "
    "it keeps trying",
    "distributor_submit_failed": "the cluster refused {count} job(s) of array {array_id}: {error}",
    "swarm_heartbeat_failed": "a heartbeat to the server failed ({failures} in a row): {error}",
    "swarm_feed_unavailable": "the server did not answer ({error}); retrying",
    "swarm_sync_unavailable": "the periodic sync with the server failed ({error}); retrying",
    "swarm_forced_release": "earlier runs {runs} did not confirm their kills in time and were "
    "released; check the cluster for their jobs",
    "swarm_final_status_not_recorded": "the run's final status {status} could not be recorded "
    "({error}); the server's reaper ends the run",
    "embedded_server_restarted": "the local herdsman server had stopped; it was started again "
    "at {url} on the same database",
    "report_batch_failed": "{reports} report(s) could not be sent ({error}); they are sent again",
    "worker_output_write_failed": "the command's {stream} could not be written: {error}",
    "slurm_backing_off": "Slurm commands failed {failures} times in a row; waiting {seconds} s",
}
# Keys that say what an event is about; shown as its subject, not repeated as key=value.
_SUBJECT_KEYS = ("task_id", "task_instance_id", "workflow_run_id", "workflow_id")
_QUIET_KEYS = frozenset({"event", "level", "timestamp", "logger", "hint", *_SUBJECT_KEYS})


def debugging() -> bool:
    """True when herdsman logs at debug level: then errors keep their full tracebacks."""
    return _debug


def describe_event(event: Mapping[str, Any]) -> str:
    """One readable sentence for a structlog event: its subject, then what happened.

    ``{"event": "worker_limit_exceeded", "task_id": 12, "task_instance_id": 34, ...}`` becomes
    ``task 12 (attempt 34): the command's processes used ...``. Events without a sentence of
    their own show their name in words and their fields as ``key=value``.
    """
    name = str(event.get("event", ""))
    subject = _subject(event)
    template = _SENTENCES.get(name)
    text = None
    if template is not None:
        try:
            text = template.format_map(_Formatted(event))
        except (KeyError, IndexError, ValueError):
            text = None
    if text is None:
        fields = [
            f"{key}={_value(value)}" for key, value in event.items() if key not in _QUIET_KEYS
        ]
        text = name.replace("_", " ") + (f" ({', '.join(fields)})" if fields else "")
    hint = event.get("hint")
    if hint:
        text += f"; {hint}"
    return f"{subject}: {text}" if subject else text


def human_line(event: Mapping[str, Any]) -> str:
    """``herdsman <level>: <sentence>``, the human format of one event."""
    level = str(event.get("level", "info")).lower()
    return f"herdsman {level}: {describe_event(event)}"


def _subject(event: Mapping[str, Any]) -> str:
    task, attempt = event.get("task_id"), event.get("task_instance_id")
    if task is not None and attempt is not None:
        return f"task {task} (attempt {attempt})"
    if task is not None:
        return f"task {task}"
    if attempt is not None:
        return f"attempt {attempt}"
    run = event.get("workflow_run_id")
    if run is not None:
        return f"workflow run {run}"
    workflow = event.get("workflow_id")
    return "" if workflow is None else f"workflow {workflow}"


def _value(value: Any) -> str:
    text = str(value)
    return repr(text) if " " in text else text


class _Formatted(dict[str, Any]):
    """``format_map`` source: floats shown briefly, missing keys raise KeyError."""

    def __init__(self, event: Mapping[str, Any]) -> None:
        super().__init__(
            {
                key: (f"{value:g}" if isinstance(value, float) else value)
                for key, value in event.items()
            }
        )


def _render_human(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> str:
    return human_line(event)


def _renderer(format: LogFormat) -> Any:
    if format == "json":
        return structlog.processors.JSONRenderer()
    if format == "human":
        return _render_human
    return structlog.dev.ConsoleRenderer(colors=False, exception_formatter=_plain_traceback)


def configure_logging(
    level: str, *, stream: TextIO | None = None, format: LogFormat = "text"
) -> None:
    """Send structlog and stdlib logs at ``level`` or above to ``stream`` in ``format``.

    Without colours, because a server's output usually ends up in a file. Without ``stream``
    logs go to whatever ``sys.stderr`` is at the time of each write, so code that swaps it
    (click's test runner, pytest's capture) still gets them.
    """
    global _debug
    numeric = logging.getLevelNamesMapping()[level.upper()]
    _debug = numeric <= logging.DEBUG
    target = stream if stream is not None else cast(TextIO, _CurrentStderr())
    # basicConfig does nothing when the root logger has handlers already (a second call, or
    # pytest's capture), so the level is set separately.
    logging.basicConfig(stream=target, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger().setLevel(numeric)
    # httpx logs every request at info: our own events say what the requests were for.
    for chatty in ("httpx", "httpcore"):
        logging.getLogger(chatty).setLevel(numeric if _debug else max(numeric, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            _renderer(format),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(target),
        cache_logger_on_first_use=False,
    )


def configure_library_logging(level: str) -> None:
    """Defaults for herdsman used as a library, in a user's script.

    structlog unconfigured would print every event, debug included, to stdout, in the middle
    of the user's own output. When the application has not configured structlog itself,
    herdsman's events go to stderr from ``level`` up (the ``log_level`` setting, default
    warning), in the human format unless ``HERDSMAN_LOG_FORMAT`` names another.
    """
    global _debug
    if structlog.is_configured():
        return
    numeric = logging.getLevelNamesMapping()[level.upper()]
    _debug = numeric <= logging.DEBUG
    format = os.environ.get(FORMAT_VARIABLE, "human").lower()
    if format not in ("text", "json", "human"):
        format = "human"
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            _renderer(cast(LogFormat, format)),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )


def _plain_traceback(stream: TextIO, exc_info: ExcInfo) -> None:
    """Tracebacks as Python prints them, without local variables.

    structlog's default, with rich installed, shows every frame's locals: a command's
    environment, request bodies, credentials. Logs are read by more people than those.
    """
    structlog.dev.plain_traceback(stream, exc_info)


class _CurrentStderr(io.TextIOBase):
    """A write-only stream that forwards to the current ``sys.stderr``."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
