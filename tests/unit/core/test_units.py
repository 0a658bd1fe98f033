"""Memory and runtime parsing: every accepted form, many rejected ones, and round trips."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herdsman.core.errors import InvalidInputError, InvalidResourceError
from herdsman.core.units import format_memory, format_runtime, parse_memory, parse_runtime

KIB = 1 / 1024**2  # one KiB in GiB
MIB = 1 / 1024  # one MiB in GiB

# --- parse_memory ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "gib"),
    [
        # bare numbers are GiB
        (4, 4.0),
        (1, 1.0),
        (0.5, 0.5),
        (1.5, 1.5),
        ("4", 4.0),
        ("1.5", 1.5),
        (" 2 ", 2.0),
        (".5", 0.5),
        ("2.", 2.0),
        # mebibytes, every spelling
        ("512M", 0.5),
        ("512MB", 0.5),
        ("512MiB", 0.5),
        ("512 mb", 0.5),
        ("512m", 0.5),
        ("512 MiB", 0.5),
        ("512mib", 0.5),
        ("1536M", 1.5),
        ("1M", MIB),
        # gibibytes
        ("2g", 2.0),
        ("2G", 2.0),
        ("2GB", 2.0),
        ("2GiB", 2.0),
        ("2 gib", 2.0),
        ("0.25G", 0.25),
        ("1.5GB", 1.5),
        # tebibytes
        ("1T", 1024.0),
        ("1TB", 1024.0),
        ("1tib", 1024.0),
        ("0.5T", 512.0),
        # kibibytes and bytes
        ("100K", 100 * KIB),
        ("100KB", 100 * KIB),
        ("100KiB", 100 * KIB),
        ("1048576k", 1.0),
        ("100B", 100 / 1024**3),
        ("100 b", 100 / 1024**3),
        ("1073741824B", 1.0),
    ],
)
def test_parse_memory_accepts(value: int | float | str, gib: float) -> None:
    assert parse_memory(value) == pytest.approx(gib, rel=1e-15)
    assert isinstance(parse_memory(value), float)


@pytest.mark.parametrize(
    "value",
    [
        "12X",
        "",
        "   ",
        "M",
        "MB",
        "GiB",
        "5iB",
        "5 GiBs",
        "5P",
        "5PB",
        "5 G B",
        "1e3",
        "1e3M",
        "4 GB RAM",
        "four",
        "1,5G",
        "1.5.2G",
        "0x10",
        "inf",
        "nan",
        "G4",
        "5M5",
    ],
)
def test_parse_memory_rejects_garbage(value: str) -> None:
    with pytest.raises(InvalidResourceError) as caught:
        parse_memory(value)
    message = str(caught.value)
    assert f"'{value}'" in message
    assert "is not understood" in message
    assert "'512M'" in message and "'2GiB'" in message and "GiB (4, 0.5)" in message


@pytest.mark.parametrize(
    "value",
    [0, 0.0, -1, -0.5, "0", "0M", "-1", "-512M", "0.0G", "-0"],
)
def test_parse_memory_rejects_non_positive(value: int | float | str) -> None:
    with pytest.raises(InvalidResourceError, match="must be greater than zero") as caught:
        parse_memory(value)
    assert f"'{value}'" in str(caught.value)


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, -math.inf, None, [4], b"4G"])
def test_parse_memory_rejects_non_numbers(value: Any) -> None:
    with pytest.raises(InvalidResourceError) as caught:
        parse_memory(value)
    assert f"'{value}'" in str(caught.value)


def test_parse_memory_rejects_overflow() -> None:
    with pytest.raises(InvalidResourceError, match="too large"):
        parse_memory("9" * 400 + "T")


def test_memory_error_is_a_value_error_with_details() -> None:
    with pytest.raises(ValueError) as caught:
        parse_memory("12X")
    error = caught.value
    assert isinstance(error, InvalidResourceError)
    assert isinstance(error, InvalidInputError)
    assert error.details == {"resource": "memory", "value": "12X"}
    assert str(error) == (
        "memory '12X' is not understood; use a number of GiB (4, 0.5) or a string with a unit: "
        "'512M', '512MB', '2GiB', '1T'"
    )


# --- parse_runtime ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        # numbers of seconds; fractions round up
        (3600, 3600),
        (1, 1),
        (0.2, 1),
        (59.5, 60),
        (60.0, 60),
        ("3600", 3600),
        (" 90 ", 90),
        ("1.5", 2),
        ("0.001", 1),
        # clock times
        ("01:30:00", 5400),
        ("1:30:00", 5400),
        ("00:00:01", 1),
        ("36:00:00", 129600),
        ("100:00:00", 360000),
        ("90:00", 5400),
        ("00:30", 30),
        ("5:07", 307),
        ("2-00:00:00", 172800),
        ("1-01:01:01", 90061),
        ("0-00:00:30", 30),
        ("10-23:59:59", 10 * 86400 + 86399),
        # durations
        ("1h30m", 5400),
        ("90s", 90),
        ("2d", 172800),
        ("1d2h3m4s", 93784),
        ("45m", 2700),
        ("1.5h", 5400),
        ("1.1h", 3960),  # exact arithmetic: not 3961
        ("0.1s", 1),
        ("1H30M", 5400),
        ("1h 30m", 5400),
        (" 1 h 30 m ", 5400),
        ("2D", 172800),
        ("1d12h", 129600),
        ("1h1s", 3601),
        ("90m", 5400),
        ("0.5d", 43200),
        ("100000s", 100000),
    ],
)
def test_parse_runtime_accepts(value: int | float | str, seconds: int) -> None:
    result = parse_runtime(value)
    assert result == seconds
    assert type(result) is int


@pytest.mark.parametrize(
    "value",
    [
        "1x",
        "",
        "  ",
        "h",
        "hms",
        "1 hour",
        "30m1h",  # out of order
        "1h1h",
        "1:2:3:4",
        "1-2",
        "1-02:00",
        "1:",
        ":30",
        "01:30:00.5",
        "1-",
        "-1-00:00:00",
        "1e3",
        "1,5h",
        "forever",
        "inf",
        "nan",
        "1.2.3",
        "1w",
        "P1D",
    ],
)
def test_parse_runtime_rejects_garbage(value: str) -> None:
    with pytest.raises(InvalidResourceError) as caught:
        parse_runtime(value)
    message = str(caught.value)
    assert f"'{value}'" in message
    assert "is not understood" in message
    assert "'1h30m'" in message and "HH:MM:SS" in message and "3600" in message


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("00:60", "past 59"),
        ("01:60:00", "past 59"),
        ("01:00:60", "past 59"),
        ("1-24:00:00", "past 23"),
        ("1-00:60:00", "past 59"),
    ],
)
def test_parse_runtime_rejects_out_of_range_clock(value: str, problem: str) -> None:
    with pytest.raises(InvalidResourceError, match=problem) as caught:
        parse_runtime(value)
    assert f"'{value}'" in str(caught.value)


@pytest.mark.parametrize(
    "value",
    [0, 0.0, -1, -0.5, "0", "-5", "00:00:00", "00:00", "0-00:00:00", "0s", "0h0m", "0d"],
)
def test_parse_runtime_rejects_non_positive(value: int | float | str) -> None:
    with pytest.raises(InvalidResourceError, match="must be greater than zero") as caught:
        parse_runtime(value)
    assert f"'{value}'" in str(caught.value)


@pytest.mark.parametrize("value", [True, False, math.nan, math.inf, -math.inf, None, [60]])
def test_parse_runtime_rejects_non_numbers(value: Any) -> None:
    with pytest.raises(InvalidResourceError) as caught:
        parse_runtime(value)
    assert f"'{value}'" in str(caught.value)


def test_runtime_error_details() -> None:
    with pytest.raises(InvalidResourceError) as caught:
        parse_runtime("soon")
    assert caught.value.details == {"resource": "runtime", "value": "soon"}


# --- format_memory / format_runtime ----------------------------------------------------------


@pytest.mark.parametrize(
    ("gib", "text"),
    [
        (0.5, "512M"),
        (2, "2G"),
        (2.0, "2G"),
        (1.5, "1536M"),
        (1024, "1T"),
        (1536, "1536G"),
        (2048.0, "2T"),
        (MIB, "1M"),
        (KIB, "1K"),
        (100 * KIB, "100K"),
        (1 / 1024**3, "1B"),
        (0.1, "102.4M"),
        (0.25, "256M"),
    ],
)
def test_format_memory(gib: float, text: str) -> None:
    assert format_memory(gib) == text


@pytest.mark.parametrize("gib", [0, 0.0, -1, math.nan, math.inf, True])
def test_format_memory_rejects(gib: Any) -> None:
    with pytest.raises(InvalidResourceError):
        format_memory(gib)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "00:00:00"),
        (1, "00:00:01"),
        (59, "00:00:59"),
        (60, "00:01:00"),
        (3600, "01:00:00"),
        (5400, "01:30:00"),
        (86399, "23:59:59"),
        (86400, "1-00:00:00"),
        (90061, "1-01:01:01"),
        (10 * 86400 + 86399, "10-23:59:59"),
    ],
)
def test_format_runtime(seconds: int, text: str) -> None:
    assert format_runtime(seconds) == text


@pytest.mark.parametrize("seconds", [-1, 1.5, True, "60"])
def test_format_runtime_rejects(seconds: Any) -> None:
    with pytest.raises(InvalidResourceError):
        format_runtime(seconds)


# --- properties ------------------------------------------------------------------------------

positive_gib = st.floats(
    min_value=1 / 1024**3, max_value=1024.0**3, allow_nan=False, allow_infinity=False
)


@given(positive_gib)
def test_format_then_parse_memory_round_trips(gib: float) -> None:
    text = format_memory(gib)
    assert parse_memory(text) == pytest.approx(gib, rel=1e-12)


@given(st.integers(min_value=1, max_value=1024**3 * 1024))
def test_whole_bytes_format_as_whole_units(n_bytes: int) -> None:
    text = format_memory(n_bytes / 1024**3)
    assert "." not in text
    assert parse_memory(text) * 1024**3 == pytest.approx(n_bytes, rel=1e-15)


@given(st.integers(min_value=1, max_value=10**8))
def test_format_then_parse_runtime_round_trips(seconds: int) -> None:
    assert parse_runtime(format_runtime(seconds)) == seconds


@given(
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=23),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=59),
)
def test_duration_and_clock_agree(days: int, hours: int, minutes: int, seconds: int) -> None:
    total = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    if total == 0:
        return
    assert parse_runtime(f"{days}d{hours}h{minutes}m{seconds}s") == total
    assert parse_runtime(f"{days}-{hours:02d}:{minutes:02d}:{seconds:02d}") == total
    assert parse_runtime(f"{days * 24 + hours}:{minutes:02d}:{seconds:02d}") == total


@given(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False))
def test_numeric_runtime_rounds_up(seconds: float) -> None:
    result = parse_runtime(seconds)
    assert result == math.ceil(seconds)
    assert result >= 1
