"""Running a task's command: the shell, its process group, its output, its resource usage.

The command runs as ``/bin/bash -c COMMAND`` (``/bin/sh`` where there is no bash): task
commands are written for the login shell of HPC systems, which is bash, and use its syntax
(``source``, ``[[``, ``set -o pipefail``). It gets its own session and process group
(``start_new_session``) so that one ``killpg`` reaches everything it started, and so that a
Ctrl-C meant for the process hosting the worker does not reach it.

Usage is measured for the command's process tree:

* wall time from just before the start to the moment it is reaped;
* CPU time (user + system) from ``os.wait4`` on the command's pid, which covers the command and
  every descendant it waited for, plus the orphans the worker reaps itself (below).
  ``RUSAGE_CHILDREN`` would not do: in a long-lived pool process it accumulates over every task
  the process ever ran;
* max RSS as the larger of ``wait4``'s peak of the largest process and the sampled peak of the
  tree's sum (:mod:`herdsman.worker.usage`).

Those figures must be the command's alone. Linux keeps a process's peak RSS across ``exec``
(``ru_maxrss`` is the larger of the old and the new program's peak), and a process forked by
the hosting Python -- a pool process or a distributor of 40 MiB and more -- starts with that
Python's memory mapped, so an ``echo`` started directly would be recorded at the host's size.
Hence, where the hosting process is a subreaper (below), the command is started by a launcher:
a small shell that forks the command's shell and exits at once. Its child was forked from the
launcher's fresh, small image, and is adopted by the hosting process, which waits for it
directly; its figures are those of the command's own tree. The child starts the command only
once the hosting process has reaped the launcher (a pipe the hosting process holds open
closes), so the launcher can never reap it first and the command's parent (``$PPID``) is the
hosting process, as if it had been started directly. It costs about two milliseconds per
command. The launcher is the process-group leader: the group's id stays that of the (ended)
launcher.

When the command's main process exits, anything it left running in its process group is
terminated (SIGTERM, then SIGKILL after the grace period), as a cluster does at the end of a
job step. Otherwise a forgotten background process would hold the output pipes open and keep
the worker (or a pool process) from reporting.

On Linux the hosting process makes itself a *child subreaper* (``prctl``), so descendants
orphaned by the command's shell become its children instead of init's. It reaps them by
process group as soon as they end, adding their CPU time to the usage; left to init, they
linger as zombies until it gets round to them (seconds, in some containers), and a process
group counts as alive while it holds a zombie. The price: a descendant that leaves the group
(its own ``setsid``, a daemon) is adopted too and, never reaped, stays a zombie of the hosting
process until that exits.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from herdsman.core.schemas.worker import Usage
from herdsman.worker.output import OutputCapture
from herdsman.worker.usage import SAMPLE_SECONDS, TreeMemorySampler

__all__ = [
    "SHELL",
    "CommandResult",
    "RunningCommand",
    "become_subreaper",
    "process_group_exists",
    "terminate_process_group",
]

logger = structlog.get_logger(__name__)

SHELL = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"

# How long the output readers may take to drain the pipes once the process group is gone.
# Only a process that escaped the group (its own setsid) can hold them open longer; its
# output is then abandoned so the report is not held up.
READER_DRAIN_SECONDS = 5.0
_POLL_SECONDS = 0.05
_PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>
# ru_maxrss is in kilobytes on Linux and in bytes on macOS.
_MAXRSS_UNIT = 1 if sys.platform == "darwin" else 1024

# The launcher (see the module docstring): ``$0`` is the shell, ``$1`` the command; {report}
# takes the child's pid, {gate} is read until the hosting process closes the gate's other end,
# which it does once it has reaped the launcher. Only then has the kernel handed the child to
# the hosting process: a launcher's files are closed before its children are reparented, so
# a gate that closed with the launcher could let the command start with the exiting launcher
# as its parent (its ``$PPID``). The child resets SIGINT and SIGQUIT, which a shell without
# job control ignores in background jobs, so the command sees the signal dispositions it would
# see started directly.
_LAUNCHER = (
    "( exec {report}>&-; trap - INT QUIT; read -r -u {gate} _; "
    'exec {gate}<&-; exec "$0" -c "$1" ) & echo $! >&{report}'
)


@dataclass(frozen=True)
class CommandResult:
    """How a command ended.

    ``exit_code`` follows :mod:`subprocess` (negative: killed by that signal) and is None only
    when the exit status was lost (someone else reaped the process).
    """

    exit_code: int | None
    stdout_tail: str
    stderr_tail: str
    stdout_path: Path | None
    stderr_path: Path | None
    usage: Usage


def process_group_exists(pgid: int) -> bool:
    """True while any process (a zombie included) is in process group ``pgid``."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the id now belongs to another user's group: ours is gone
        return False
    return True


def terminate_process_group(
    pgid: int, grace: float, *, reap: Callable[[], None] | None = None
) -> bool:
    """SIGTERM process group ``pgid``, SIGKILL it if it is not empty after ``grace`` seconds.

    Blocks until the group is empty or has been sent SIGKILL. Returns False when the group was
    already empty. Somebody must reap the group's processes for it to count as gone: the
    thread that waits for the command does, and passes ``reap`` when it is the caller.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not process_group_exists(pgid):
            return True
        time.sleep(_POLL_SECONDS)
    logger.info("process_group_killed", pgid=pgid, grace_seconds=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    return True


@functools.cache
def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux; once per process).

    Returns whether this process is a subreaper. Elsewhere, or when ``prctl`` fails, orphans
    go to init as usual and only the prompt reaping described in the module docstring is lost.
    """
    if sys.platform != "linux":
        return False
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        logger.debug("subreaper_unavailable", errno=ctypes.get_errno())
        return False
    return True


class RunningCommand:
    """A started command. Create with :meth:`start`; end with exactly one :meth:`wait`.

    :meth:`tails` and :meth:`terminate` may be called from other threads (the heartbeat) while
    one thread waits.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        main_pid: int,
        stdout: OutputCapture,
        stderr: OutputCapture,
        started: float,
        sampler: TreeMemorySampler,
    ) -> None:
        self._process = process
        self._main_pid = main_pid
        self._stdout = stdout
        self._stderr = stderr
        self._started = started
        self._cpu_time = 0.0
        self._wait_maxrss = 0
        self._sampler = sampler
        self._sampler.start()

    @classmethod
    def start(
        cls,
        command: str,
        *,
        env: Mapping[str, str],
        stdout_path: Path | None,
        stderr_path: Path | None,
        sample_interval: float = SAMPLE_SECONDS,
        on_memory_sample: Callable[[int], None] | None = None,
    ) -> RunningCommand:
        """Start ``command`` through the shell; raises what stopped it from starting
        (``OSError``, or ``ValueError`` for a NUL byte), and then nothing of it runs.

        The tree's memory is sampled every ``sample_interval`` seconds and each summed RSS
        (bytes) passed to ``on_memory_sample`` (see :class:`TreeMemorySampler`).
        """
        started = time.monotonic()
        if become_subreaper() and SHELL == "/bin/bash":
            process, main_pid = _launch(command, env)
        else:  # nobody would adopt the command's shell: run it directly, figures and all
            process = _popen([SHELL, "-c", command], env, ())
            main_pid = process.pid
        try:
            if process.stdout is None or process.stderr is None:  # Popen gives both for PIPE
                raise OSError("the command's output pipes were not opened")
            stdout = OutputCapture(process.stdout, stdout_path, stream="stdout")
            stderr = OutputCapture(process.stderr, stderr_path, stream="stderr")
            stdout.start()
            stderr.start()
            sampler = TreeMemorySampler(
                main_pid, interval=sample_interval, listener=on_memory_sample
            )
        except BaseException:
            # Nobody would wait for a command whose start failed half-way: stop it now.
            terminate_process_group(process.pid, 0)
            process.wait()
            raise
        return cls(process, main_pid, stdout, stderr, started, sampler)

    @property
    def pid(self) -> int:
        """The command's process-group id (the pid of the launcher, or of the shell itself)."""
        return self._process.pid

    def tails(self) -> tuple[str, str]:
        """The current ends of stdout and stderr."""
        return self._stdout.tail(), self._stderr.tail()

    def terminate(self, grace: float) -> bool:
        """Stop the command's whole process group: SIGTERM, ``grace`` seconds, SIGKILL.

        Returns False when the group was already gone: the command had ended by itself.
        """
        return terminate_process_group(self.pid, grace)

    def wait(self, *, straggler_grace: float) -> CommandResult:
        """Wait for the command to end, clean up its group, and collect output and usage."""
        try:
            _, wait_status, rusage = os.wait4(self._main_pid, 0)
        except ChildProcessError:  # reaped by someone else: the status is gone
            exit_code = None
        else:
            exit_code = os.waitstatus_to_exitcode(wait_status)
            self._count(rusage)
        wall_time = time.monotonic() - self._started
        if self._process.returncode is None:
            # Popen must not try to reap the pid again (it may be reused by then).
            self._process.returncode = exit_code if exit_code is not None else -1
        self._sampler.stop()
        self._reap_group()
        if process_group_exists(self.pid):
            logger.info("command_stragglers_terminated", pgid=self.pid)
            terminate_process_group(self.pid, straggler_grace, reap=self._reap_group)
            self._reap_group()
        for capture in (self._stdout, self._stderr):
            if not capture.join(READER_DRAIN_SECONDS):
                logger.warning("command_output_abandoned", pgid=self.pid)
        max_rss = max(self._wait_maxrss, self._sampler.peak) or None
        return CommandResult(
            exit_code=exit_code,
            stdout_tail=self._stdout.tail(),
            stderr_tail=self._stderr.tail(),
            stdout_path=self._stdout.path,
            stderr_path=self._stderr.path,
            usage=Usage(
                wall_time=wall_time,
                cpu_time=self._cpu_time if exit_code is not None else None,
                max_rss=max_rss,
            ),
        )

    def _reap_group(self) -> None:
        """Reap ended processes of the command's group that are ours (orphans we adopted)."""
        while True:
            try:
                pid, _, rusage = os.wait4(-self.pid, os.WNOHANG)
            except ChildProcessError:  # none of our children is in the group
                return
            if pid == 0:
                return
            self._count(rusage)

    def _count(self, rusage: resource.struct_rusage) -> None:
        self._cpu_time += rusage.ru_utime + rusage.ru_stime
        self._wait_maxrss = max(self._wait_maxrss, rusage.ru_maxrss * _MAXRSS_UNIT)


def _popen(
    args: list[str], env: Mapping[str, str], keep: tuple[int, ...]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
        start_new_session=True,
        close_fds=True,
        pass_fds=keep,
    )


def _launch(command: str, env: Mapping[str, str]) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``command`` through the launcher; the launcher (reaped) and the command's pid.

    Raises OSError when the launcher could not start the command's shell.
    """
    report_read, report = os.pipe()
    gate, gate_hold = os.pipe()
    script = _LAUNCHER.format(report=report, gate=gate)
    try:
        try:
            launcher = _popen([SHELL, "-c", script, SHELL, command], env, (report, gate))
        finally:
            for fd in (report, gate):
                os.close(fd)
        with os.fdopen(report_read, "rb") as pids:
            reported = pids.read()  # until the launcher exits: it holds the only writer left
        _, status, _ = os.wait4(launcher.pid, 0)
        launcher.returncode = os.waitstatus_to_exitcode(status)
    finally:
        os.close(gate_hold)  # the launcher is reaped: its child is ours, let it start
    try:
        return launcher, int(reported)
    except ValueError:
        for pipe in (launcher.stdout, launcher.stderr):
            if pipe is not None:
                pipe.close()
        raise OSError(
            f"the launcher of the command's shell failed ({launcher.returncode})"
        ) from None
