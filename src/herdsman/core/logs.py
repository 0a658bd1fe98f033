"""Log set-up for herdsman's own processes: the server, the CLI, later the distributor and worker.

Library code only calls ``structlog.get_logger(__name__)``; the entry point of a process
decides where logs go and from which level, once. Logs go to stderr so that a command's
stdout stays machine-readable (``herdsman config show`` prints YAML there).
"""

from __future__ import annotations

import io
import logging
import sys
from typing import TextIO, cast

import structlog
from structlog.typing import ExcInfo

__all__ = ["configure_library_logging", "configure_logging"]


def configure_logging(level: str, *, stream: TextIO | None = None) -> None:
    """Send structlog and stdlib logs at ``level`` or above as plain text to ``stream``.

    Plain text without colours, because a server's output usually ends up in a file. Without
    ``stream`` logs go to whatever ``sys.stderr`` is at the time of each write, so code that
    swaps it (click's test runner, pytest's capture) still gets them.
    """
    numeric = logging.getLevelNamesMapping()[level.upper()]
    target = stream if stream is not None else cast(TextIO, _CurrentStderr())
    # basicConfig does nothing when the root logger has handlers already (a second call, or
    # pytest's capture), so the level is set separately.
    logging.basicConfig(stream=target, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger().setLevel(numeric)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=_plain_traceback),
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
    warning).
    """
    if structlog.is_configured():
        return
    numeric = logging.getLevelNamesMapping()[level.upper()]
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=_plain_traceback),
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
