"""Input limits: the value object, and the one test of text both sides apply."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from herdsman.core.config import Settings
from herdsman.core.limits import MAX_ARG_STRLEN, InputLimits, text_problem, utf8_size


def test_the_default_command_limit_leaves_room_under_the_kernel_limit() -> None:
    limits = InputLimits()

    assert limits.max_command_bytes < MAX_ARG_STRLEN
    assert limits.max_arg_value_bytes <= limits.max_command_bytes
    assert limits.max_request_bytes == 64 * 2**20


def test_a_command_limit_the_kernel_would_refuse_is_not_a_setting() -> None:
    with pytest.raises(ValidationError, match="max_command_bytes"):
        InputLimits(max_command_bytes=MAX_ARG_STRLEN)


def test_an_argument_limit_over_the_command_limit_is_refused() -> None:
    with pytest.raises(ValidationError, match="pasted into"):
        InputLimits(max_command_bytes=5_000, max_arg_value_bytes=6_000)


def test_limits_are_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERDSMAN_LIMITS__MAX_REQUEST_BYTES", str(2 * 2**20))

    assert Settings().limits.max_request_bytes == 2 * 2**20


@pytest.mark.parametrize(
    ("text", "size"), [("", 0), ("abc", 3), ("é", 2), ("日本", 6), ("\U0001f600", 4)]
)
def test_sizes_are_utf8_bytes(text: str, size: int) -> None:
    assert utf8_size(text) == size


def test_a_lone_surrogate_has_no_size() -> None:
    assert utf8_size("a\udc80") is None


def test_text_within_the_limit_has_no_problem() -> None:
    assert text_problem("x" * 10, 10, "s") is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x" * 11, "is 11 bytes long; the limit is 10 (setting s)"),
        ("éééééé", "is 12 bytes long"),
        ("ab\x00c", "NUL character at position 2"),
        ("a\ud800", "lone surrogate"),
    ],
)
def test_problems_are_named(text: str, expected: str) -> None:
    problem = text_problem(text, 10, "s")

    assert problem is not None and expected in problem
