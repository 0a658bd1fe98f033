"""How tables show values."""

from __future__ import annotations

from herdsman.cli.formatting import (
    duration,
    first_line,
    gib,
    last_lines,
    plural,
    size,
    status_name,
    timestamp,
)
from herdsman.core.statuses import TaskStatus


def test_status_names() -> None:
    assert status_name(TaskStatus, "F") == "error_fatal"
    assert status_name(TaskStatus, "?") == "?"


def test_durations_sizes_and_times() -> None:
    assert [duration(s) for s in (None, 0.25, 59.94, 61, 3 * 3600 + 62)] == [
        "-",
        "0.2s",
        "59.9s",
        "1m01s",
        "3h01m02s",
    ]
    assert [size(b) for b in (None, 512, 1536, 5 << 30)] == ["-", "512 B", "1.5 KiB", "5.0 GiB"]
    assert gib(0.5) == "512.0 MiB"
    assert timestamp("2026-12-04T13:45:07.123456") == "2026-12-04 13:45:07"
    assert timestamp(None) == "-"


def test_first_line() -> None:
    assert first_line("\n\n  boom: it broke \nsecond") == "boom: it broke"
    assert first_line("x" * 100, 10) == "x" * 9 + "…"
    assert first_line(None) == ""


def test_plural_and_last_lines() -> None:
    assert [plural(n, "group") for n in (0, 1, 2)] == ["0 groups", "1 group", "2 groups"]
    assert last_lines("a\nb\nc\n\n", 2) == ["b", "c"]
    assert last_lines("a\nb\n", None) == ["a", "b"]
    assert last_lines("", 3) == []
