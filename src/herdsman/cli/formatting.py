"""How the ``herdsman`` tables show values: statuses by name, durations, sizes, timestamps.

Only the tables use these; ``--json`` prints the server's values unchanged (status letters,
seconds, bytes, ISO timestamps), which is what scripts want.
"""

from __future__ import annotations

import enum

from herdsman.core.units import format_bytes

__all__ = [
    "duration",
    "first_line",
    "gib",
    "last_lines",
    "plural",
    "size",
    "status_name",
    "timestamp",
]


def status_name(status_type: type[enum.Enum], letter: str) -> str:
    """A status letter shown as its member's name in lower case (``done``); the letter
    itself if herdsman does not know it."""
    try:
        return str(status_type(letter).name.lower())
    except ValueError:
        return letter


def duration(seconds: float | None) -> str:
    """``1h02m03s``-style, or ``-`` when unknown; under a minute with one decimal."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s"


def size(number_of_bytes: int | None) -> str:
    """``12.3 MiB``-style, or ``-`` when unknown."""
    return "-" if number_of_bytes is None else format_bytes(number_of_bytes)


def gib(value: float) -> str:
    """A size given in GiB, shown like :func:`size`."""
    return size(round(value * 1024**3))


def timestamp(iso: str | None) -> str:
    """``2026-12-04 13:45:07`` from the server's ISO string (UTC), or ``-``."""
    if not iso:
        return "-"
    return iso.replace("T", " ")[:19]


def first_line(text: str | None, width: int = 80) -> str:
    """The first non-empty line of ``text``, cut to ``width`` characters with an ellipsis."""
    if not text:
        return ""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def plural(count: int, noun: str) -> str:
    """``1 error``, ``2 errors``: a count with its noun."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def last_lines(text: str, lines: int | None) -> list[str]:
    """The last ``lines`` lines of ``text`` (every line for None), trailing blanks dropped."""
    kept = text.rstrip().splitlines()
    return kept if lines is None else kept[-lines:]
