"""What kind of failure an attempt's error is: its signature and its exit class.

A workflow of a million tasks can fail a hundred thousand times for three reasons. To show
those three reasons, the server stores with each error a *signature*: a digest of the error's
message and the last meaningful lines of its stderr, with what varies from one task to the next
masked -- numbers, paths, hex strings, ids and timestamps. Errors that differ only in those
share a signature, so grouping them is a SQL ``GROUP BY`` on an indexed column at any size,
rather than clustering messages per request.

Exit codes and signal numbers are kept: ``exit code 1`` and ``exit code 137`` are different
failures. The signature's text (:attr:`ErrorSignature.text`) is what a reader sees as the
group's pattern; its digest (:attr:`ErrorSignature.digest`) is what is stored.

The *exit class* says what ended the attempt in the words a user thinks in (the command failed,
it ran out of memory or time, its node or job was lost, it was killed), derived from the
attempt's error status and, for a resource kill, from its message.

Pure functions: no I/O, no state. Changing the masking changes signatures, so errors recorded
before and after such a change fall into different groups; keep it stable.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass

from herdsman.core.lifecycle import LOST_INSTANCE_STATUSES
from herdsman.core.statuses import TaskInstanceStatus

__all__ = [
    "DIGEST_LENGTH",
    "MEANINGFUL_LINES",
    "ErrorSignature",
    "ExitClass",
    "error_signature",
    "exit_class_of",
    "last_meaningful_lines",
    "mask",
]

DIGEST_LENGTH = 16
"""Hex characters of the stored digest: 64 bits, no collisions among a workflow's errors."""

MEANINGFUL_LINES = 3
"""Lines of stderr a signature keeps: a traceback's last frame, its source line, the error."""

_LINE_CHARACTERS = 200
_MESSAGE_CHARACTERS = 500


class ExitClass(enum.StrEnum):
    """What ended a failed attempt; the value is what tables and JSON show."""

    COMMAND_ERROR = "command error"
    OUT_OF_MEMORY = "out of memory"
    OVER_TIME = "over time"
    NODE_FAILURE = "node failure"
    NOT_LAUNCHED = "not launched"
    KILLED = "killed"


@dataclass(frozen=True)
class ErrorSignature:
    """An error with its varying parts masked (``text``) and the digest of that text."""

    text: str
    digest: str


# Order matters: timestamps and ids before hex, hex before numbers, paths before numbers.
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?"
        ),
        "<time>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<time>"),
    (
        re.compile(
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE
        ),
        "<id>",
    ),
    (re.compile(r"\b0x[0-9a-f]+\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{6,}\b", re.IGNORECASE), "<hex>"),
    # A path has at least one slash between name characters: /a, ./a/b, ~/x, a/b/c.
    (
        re.compile(r"(?:~|\.{1,2}|[\w.@+-]+)?(?:/[\w.@%+=-]+)+/?|(?:[\w.@+-]+/)+[\w.@+-]*"),
        "<path>",
    ),
    (re.compile(r"(?<!exit code )(?<!signal )(?<![\d.])(?:(?<![\w-])-)?\d+(?:\.\d+)*"), "<n>"),
)
_SPACE = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")


def mask(text: str) -> str:
    """``text`` on one line, its spaces collapsed and its varying parts replaced by
    placeholders (``<time>``, ``<id>``, ``<hex>``, ``<path>``, ``<n>``)."""
    masked = _SPACE.sub(" ", text).strip()
    for pattern, placeholder in _MASKS:
        masked = pattern.sub(placeholder, masked)
    return masked


def last_meaningful_lines(text: str | None, count: int = MEANINGFUL_LINES) -> list[str]:
    """The last ``count`` lines of ``text`` that say something: with a letter outside the
    placeholders, once masked; cut to 200 characters each. Blank lines, rulers (``-----``)
    and bare numbers (progress counters) are skipped."""
    if not text:
        return []
    kept: list[str] = []
    for line in reversed(text.splitlines()):
        masked = mask(line)
        if not _LETTER.search(re.sub(r"<\w+>", "", masked)):
            continue
        kept.append(masked[:_LINE_CHARACTERS])
        if len(kept) == count:
            break
    kept.reverse()
    return kept


def error_signature(message: str, stderr_tail: str | None = None) -> ErrorSignature:
    """The signature of an error ``message`` and the stderr the attempt left.

    The text is the masked message, then `` | `` and the last meaningful stderr lines joined
    by `` / ``, when there are any.
    """
    parts = [mask(message)[:_MESSAGE_CHARACTERS]]
    lines = last_meaningful_lines(stderr_tail)
    if lines:
        parts.append(" / ".join(lines))
    text = " | ".join(parts)
    digest = hashlib.sha256(text.encode()).hexdigest()[:DIGEST_LENGTH]
    return ErrorSignature(text=text, digest=digest)


_TIME_WORDS = re.compile(r"time limit|runtime|timeout|wall ?time", re.IGNORECASE)


def exit_class_of(
    status: TaskInstanceStatus,
    message: str,
    *,
    previous: TaskInstanceStatus | None = None,
    killed: bool = False,
) -> ExitClass:
    """The exit class of an attempt that ended in error ``status`` with ``message``.

    ``previous`` is the status the attempt left for ``status``: an attempt that fell silent
    (X) before its error was lost with its node or job, whatever the error's status.
    ``killed``: it was ended on request (a stop, a resume, a kill by hand). A resource error
    (Z) is over time when its message speaks of time (``runtime``, ``time limit``,
    ``TIMEOUT``) and out of memory otherwise, as every resource kill herdsman knows of is one
    of those two.
    """
    if killed or status is TaskInstanceStatus.KILL_SELF:
        return ExitClass.KILLED
    if status is TaskInstanceStatus.NO_DISTRIBUTOR_ID:
        return ExitClass.NOT_LAUNCHED
    if status in LOST_INSTANCE_STATUSES or previous is TaskInstanceStatus.NO_HEARTBEAT:
        return ExitClass.NODE_FAILURE
    if status is TaskInstanceStatus.RESOURCE_ERROR:
        if _TIME_WORDS.search(message) and "memory" not in message.lower():
            return ExitClass.OVER_TIME
        return ExitClass.OUT_OF_MEMORY
    return ExitClass.COMMAND_ERROR
