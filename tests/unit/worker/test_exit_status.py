"""Exit codes to statuses and messages."""

from __future__ import annotations

import pytest

from herdsman.worker.exit_status import (
    default_exit_code_status,
    describe_exit_code,
    shell_exit_code,
)


@pytest.mark.parametrize(
    ("exit_code", "text"),
    [
        (1, "exit code 1"),
        (127, "exit code 127"),
        (-9, "killed by signal SIGKILL"),
        (-15, "killed by signal SIGTERM"),
        (137, "exit code 137 (128 + SIGKILL: a process was probably killed by that signal)"),
        (255, "exit code 255"),
    ],
)
def test_describe_exit_code(exit_code: int, text: str) -> None:
    assert describe_exit_code(exit_code) == text


def test_the_default_reports_every_failure_as_an_error() -> None:
    assert default_exit_code_status(-9) == ("E", "killed by signal SIGKILL")
    assert default_exit_code_status(2) == ("E", "exit code 2")


@pytest.mark.parametrize(("exit_code", "shell"), [(0, 0), (3, 3), (-9, 137), (-15, 143)])
def test_shell_exit_code(exit_code: int, shell: int) -> None:
    assert shell_exit_code(exit_code) == shell
