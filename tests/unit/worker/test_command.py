"""The command's usage is its own, not that of the Python process hosting the worker."""

from __future__ import annotations

import os
import signal

from herdsman.worker.command import RunningCommand

_MIB = 1024**2


def _run(command: str) -> tuple[int | None, int | None, str, str]:
    running = RunningCommand.start(
        command, env=dict(os.environ), stdout_path=None, stderr_path=None
    )
    result = running.wait(straggler_grace=1.0)
    return result.exit_code, result.usage.max_rss, result.stdout_tail, result.stderr_tail


def test_a_short_command_is_not_recorded_at_the_hosts_size() -> None:
    ballast = bytearray(100 * _MIB)  # make the host far bigger than any shell
    ballast[::4096] = b"\1" * len(ballast[::4096])
    exit_code, max_rss, stdout, _ = _run("echo hello")
    assert (exit_code, stdout) == (0, "hello\n")
    assert max_rss is not None and max_rss < 10 * _MIB
    del ballast


def test_exit_codes_signals_and_output_pass_through_the_launcher() -> None:
    assert _run("echo oops >&2; exit 3")[0::3] == (3, "oops\n")
    assert _run("kill -TERM $$")[0] == -signal.SIGTERM


def test_the_command_gets_default_signal_handling_and_no_extra_descriptors() -> None:
    _, _, stdout, _ = _run("grep SigIgn /proc/self/status; ls /proc/self/fd | wc -l")
    ignored, descriptors = stdout.split("\n")[:2]
    assert int(ignored.split()[1], 16) & (1 << (signal.SIGINT - 1)) == 0
    assert int(descriptors) == 4  # stdin, stdout, stderr and ls's own listing


def test_the_commands_parent_is_the_hosting_process() -> None:
    """Commands that signal or watch ``$PPID`` reach the worker, never the gone launcher."""
    for _ in range(30):  # the launcher's exit and the command's start race without the gate
        _, _, stdout, _ = _run("echo $PPID; cut -d' ' -f4 /proc/$$/stat")
        assert stdout.split() == [str(os.getpid())] * 2
