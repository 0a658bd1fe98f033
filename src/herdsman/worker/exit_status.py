"""What a command's exit code means: the error status to report and a message a user can read.

Exit codes follow :mod:`subprocess`: 0..255 is what the command returned, a negative number
``-N`` means it was killed by signal ``N``. A shell that runs a compound command reports a
child killed by signal ``N`` as ``128 + N`` instead, so such codes are described both ways.

The mapping is a plugin hook (:meth:`herdsman.distributor.plugin.ClusterPlugin.exit_code_status`):
a cluster plugin that knows its scheduler's conventions (Slurm's out-of-memory kill, a time
limit) maps those exits to a resource error (Z) so the task is retried with more resources.
The default knows no such convention and reports every failure as an error (E).
"""

from __future__ import annotations

import signal
from collections.abc import Callable

from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.statuses import TaskInstanceStatus

__all__ = [
    "ExitCodeStatus",
    "default_exit_code_status",
    "describe_exit_code",
    "shell_exit_code",
]

ExitCodeStatus = Callable[[int], tuple[ErrorStatus, str]]
"""Maps a non-zero exit code (subprocess convention) to the status and message to report."""

# Exit codes above this, up to 128 + the highest signal number, are a shell's "killed by".
_SHELL_SIGNAL_BASE = 128


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit_code(exit_code: int) -> str:
    """A short text for ``exit_code``: ``"exit code 3"`` or ``"killed by signal SIGKILL"``."""
    if exit_code < 0:
        return f"killed by signal {_signal_name(-exit_code)}"
    text = f"exit code {exit_code}"
    number = exit_code - _SHELL_SIGNAL_BASE
    if 0 < number < signal.NSIG:
        text += f" (128 + {_signal_name(number)}: a process was probably killed by that signal)"
    return text


def default_exit_code_status(exit_code: int) -> tuple[ErrorStatus, str]:
    """``(ERROR, description)`` for every failure: local clusters know no resource kills."""
    return TaskInstanceStatus.ERROR, describe_exit_code(exit_code)


def shell_exit_code(exit_code: int) -> int:
    """``exit_code`` as a process can return it: a signal ``N`` becomes ``128 + N``."""
    return _SHELL_SIGNAL_BASE - exit_code if exit_code < 0 else exit_code
