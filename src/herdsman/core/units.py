"""Memory and runtime values: parsed once, at the edge, into GiB and whole seconds.

Users write resources the way their cluster taught them: ``"512M"``, ``"2GiB"``, ``4``,
``"1-12:00:00"``, ``"1h30m"``. Every scheduler plugin, though, needs one number in one unit, and
an unreadable value should fail when the task is created -- with a message that says what would
have worked -- not hours later when the cluster rejects the job. So the whole grammar lives here.

Arithmetic on parsed strings is exact (:class:`fractions.Fraction`), because ``1.1 * 3600`` in
floating point is ``3960.0000000000005`` and rounding a runtime *up* would then give a second
the user never asked for. Memory multiples are binary: ``1K`` is 1024 bytes, as on every
scheduler herdsman talks to.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction

from herdsman.core.errors import InvalidMemoryFormat, InvalidResourceError

__all__ = [
    "format_bytes",
    "format_memory",
    "format_runtime",
    "parse_memory",
    "parse_runtime",
]

_GIB = 1024**3

# Bytes per unit letter (the "" unit -- a bare number -- is GiB).
_MEMORY_UNITS: dict[str, int] = {
    "": _GIB,
    "b": 1,
    "k": 1024,
    "m": 1024**2,
    "g": _GIB,
    "t": 1024**4,
}

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"

# "512", "1.5", "512M", "512 mb", "512MiB", "2g", "100B" -- but not "5iB" or "MB" alone.
_MEMORY_RE = re.compile(rf"(?P<number>{_NUMBER})\s*(?:(?P<unit>[kmgt])(?:i?b)?|(?P<bytes>b))?")

# "HH:MM:SS", "MM:SS" and Slurm's "D-HH:MM:SS".
_CLOCK_RE = re.compile(
    r"(?:(?P<days>\d+)-(?P<dhours>\d+):(?P<dminutes>\d+):(?P<dseconds>\d+))"
    r"|(?:(?P<hours>\d+):(?P<minutes>\d+):(?P<seconds>\d+))"
    r"|(?:(?P<mminutes>\d+):(?P<mseconds>\d+))"
)

_UNSIGNED = r"(?:\d+(?:\.\d*)?|\.\d+)"
# "1d2h3m4s" and any subset in that order, each part optionally spaced: "1h 30m", "90 s".
_DURATION_RE = re.compile(
    rf"(?:(?P<d>{_UNSIGNED})\s*d)?\s*"
    rf"(?:(?P<h>{_UNSIGNED})\s*h)?\s*"
    rf"(?:(?P<m>{_UNSIGNED})\s*m)?\s*"
    rf"(?:(?P<s>{_UNSIGNED})\s*s)?",
    re.IGNORECASE,
)
_DURATION_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}

_MEMORY_FORMS = (
    "use a number of GiB (4, 0.5) or a string with a unit: '512M', '512MB', '2GiB', '1T'"
)
_RUNTIME_FORMS = (
    "use a number of seconds (3600), a clock time ('HH:MM:SS', 'MM:SS', 'D-HH:MM:SS') "
    "or a duration ('1h30m', '90s', '2d', '1.5h')"
)


def _quoted(value: object) -> str:
    # Always single quotes, whatever the value holds, so messages read the same for every input.
    return f"'{value}'"


def _memory_error(value: object, problem: str) -> InvalidMemoryFormat:
    return InvalidMemoryFormat(
        f"memory {_quoted(value)} {problem}; {_MEMORY_FORMS}",
        details={"resource": "memory", "value": str(value)},
    )


def _runtime_error(value: object, problem: str) -> InvalidResourceError:
    return InvalidResourceError(
        f"runtime {_quoted(value)} {problem}; {_RUNTIME_FORMS}",
        details={"resource": "runtime", "value": str(value)},
    )


def _number_of(value: int | float, error: InvalidResourceError) -> Fraction:
    """An int or finite float as an exact fraction; ``error`` for bools, NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error
    if isinstance(value, float) and not math.isfinite(value):
        raise error
    return Fraction(value)


def parse_memory(value: int | float | str) -> float:
    """Memory in GiB from a number of GiB or a string such as ``"512M"`` or ``"2GiB"``.

    Raises InvalidResourceError for anything else, and for values that are not above zero.
    """
    if isinstance(value, str):
        match = _MEMORY_RE.fullmatch(value.strip().lower())
        if match is None:
            raise _memory_error(value, "is not understood")
        unit = match["unit"] or match["bytes"] or ""
        amount = Fraction(match["number"]) * _MEMORY_UNITS[unit] / _GIB
    else:
        amount = _number_of(value, _memory_error(value, "is not understood"))
    if amount <= 0:
        raise _memory_error(value, "must be greater than zero")
    try:
        gib = float(amount)
    except OverflowError:
        raise _memory_error(value, "is too large") from None
    if gib == 0.0:
        raise _memory_error(value, "is too small")
    return gib


def parse_runtime(value: int | float | str) -> int:
    """Runtime in whole seconds (fractions round up) from seconds or a clock/duration string.

    Accepts ``3600``, ``"3600"``, ``"01:00:00"``, ``"60:00"``, ``"1-00:00:00"``, ``"1h30m"``,
    ``"90s"``, ``"2d"``, ``"1.5h"``. Raises InvalidResourceError for anything else, and for
    values that are not above zero.
    """
    if isinstance(value, str):
        seconds = _parse_runtime_text(value)
    else:
        seconds = _number_of(value, _runtime_error(value, "is not understood"))
    if seconds <= 0:
        raise _runtime_error(value, "must be greater than zero")
    return math.ceil(seconds)


def _parse_runtime_text(value: str) -> Fraction:
    text = value.strip()
    if re.fullmatch(_NUMBER, text):
        return Fraction(text)
    clock = _CLOCK_RE.fullmatch(text)
    if clock is not None:
        if clock["days"] is not None:
            days, hours = int(clock["days"]), int(clock["dhours"])
            minutes, seconds = int(clock["dminutes"]), int(clock["dseconds"])
            if hours >= 24:
                raise _runtime_error(value, "has hours past 23 after the days")
        elif clock["hours"] is not None:
            days, hours = 0, int(clock["hours"])
            minutes, seconds = int(clock["minutes"]), int(clock["seconds"])
        else:
            days, hours = 0, 0
            minutes, seconds = int(clock["mminutes"]), int(clock["mseconds"])
        has_hours = clock["days"] is not None or clock["hours"] is not None
        if seconds >= 60 or (has_hours and minutes >= 60):
            raise _runtime_error(value, "has minutes or seconds past 59")
        return Fraction(((days * 24 + hours) * 60 + minutes) * 60 + seconds)
    duration = _DURATION_RE.fullmatch(text)
    if duration is not None and any(duration.groupdict().values()):
        return sum(
            (
                Fraction(amount) * _DURATION_SECONDS[unit]
                for unit, amount in duration.groupdict().items()
                if amount is not None
            ),
            start=Fraction(0),
        )
    raise _runtime_error(value, "is not understood")


def format_memory(gib: float) -> str:
    """A memory string that :func:`parse_memory` reads back to the same value.

    Whole units are preferred, largest first: ``0.5`` is ``"512M"``, ``2`` is ``"2G"``,
    ``1.5`` is ``"1536M"``. A value that is no whole number of bytes is written as a decimal
    in the largest unit it reaches, e.g. ``0.1`` is ``"102.4M"``.
    """
    if isinstance(gib, bool) or not isinstance(gib, int | float) or not math.isfinite(gib):
        raise _memory_error(gib, "cannot be formatted")
    if gib <= 0:
        raise _memory_error(gib, "must be greater than zero")
    exact = Fraction(gib) * _GIB  # in bytes; exact, as floats are dyadic fractions
    units = [(letter.upper(), size) for letter, size in _MEMORY_UNITS.items() if letter]
    units.sort(key=lambda unit: unit[1], reverse=True)
    if exact.denominator == 1:
        for letter, size in units:
            if exact.numerator % size == 0:
                return f"{exact.numerator // size}{letter}"
    for letter, size in units:
        if exact >= size or size == 1:
            # Dividing a float by a power of two is exact, so repr() round-trips; Decimal keeps
            # it out of scientific notation, which parse_memory does not read.
            scaled = float(exact / size)
            return f"{Decimal(repr(scaled)):f}{letter}"
    raise AssertionError("unreachable: the byte unit always matches")  # pragma: no cover


def format_runtime(seconds: int) -> str:
    """``"HH:MM:SS"``, or ``"D-HH:MM:SS"`` from one day on (the form Slurm reads)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise _runtime_error(seconds, "cannot be formatted; it must be whole seconds")
    if seconds < 0:
        raise _runtime_error(seconds, "must not be negative")
    minutes, secs = divmod(seconds, 60)
    hours, mins = divmod(minutes, 60)
    days, hrs = divmod(hours, 24)
    if days:
        return f"{days}-{hrs:02d}:{mins:02d}:{secs:02d}"
    return f"{hrs:02d}:{mins:02d}:{secs:02d}"


def format_bytes(number_of_bytes: float) -> str:
    """``12.3 MiB``-style, for people reading a size (not for :func:`parse_memory`)."""
    value = float(number_of_bytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
