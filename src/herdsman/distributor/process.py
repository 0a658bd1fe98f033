"""Starting and stopping a distributor process, and its ``main``.

The client starts one distributor per workflow run::

    with DistributorProcess(run_id, "multiprocess", server_url).start(timeout=60) as distributor:
        ...  # the swarm's loop

Handshake: the distributor writes exactly one line to its stdout, ``HERDSMAN_DISTRIBUTOR_READY
{"pid": ...}``, once its plugin has started (a multiprocess pool is up, a Slurm connection
is open); :meth:`DistributorProcess.start` reads lines until it sees it. Nothing else reaches
that pipe: the distributor points its own stdout at stderr first, so its plugin's children
cannot fill a pipe nobody reads any more. Logs go to stderr: a file of the caller's choosing,
or the caller's own stderr.

The distributor runs in its own session, so a Ctrl-C meant for the client does not hit it
directly; the client stops it with :meth:`DistributorProcess.stop`. If the client dies without
stopping it, the distributor still ends when the run reaches a final status (the server's
reaper ends a run whose swarm stopped heart-beating).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import psutil
import structlog

from herdsman.core.errors import DistributorStartupTimeout
from herdsman.core.logs import LogFormat

__all__ = ["READY_MARKER", "DistributorProcess", "DistributorStartError"]

logger = structlog.get_logger(__name__)

# The setting every herdsman client reads its token from (see herdsman.core.config).
TOKEN_VARIABLE = "HERDSMAN_TOKEN"

READY_MARKER = "HERDSMAN_DISTRIBUTOR_READY"
LOG_TAIL_CHARACTERS = 4_000
# After the distributor itself is gone, how long its pool processes get to kill their commands
# (they watch their parent; a command gets its own kill grace) before they are killed.
TREE_DRAIN_SECONDS = 15.0
_EXIT_POLL_SECONDS = 0.02


class DistributorStartError(DistributorStartupTimeout):
    """The distributor exited or stayed silent before it was ready; the message has its log."""


class DistributorProcess:
    """A distributor process for one workflow run. Start it, use it, stop it.

    ``token``: the run's token, which the distributor and its jobs send (given to it in its
    environment, never on its command line, where other users could read it); None leaves
    the environment's. ``log_file``: where its stderr (its logs) is appended; None inherits
    this process's.
    ``log_level``: its log level; None uses the ``log_level`` setting. ``log_format``: that
    of its logs (see :mod:`herdsman.core.logs`); its pool processes log alike. ``after_seq``:
    the change-feed position to follow from (the run's ``last_seq`` when it was created).
    ``embedded_server``: the server is the embedded one, which the distributor starts again
    should it die (its settings come from this process's environment plus ``environment``).
    """

    def __init__(
        self,
        workflow_run_id: int,
        cluster_name: str,
        server_url: str,
        *,
        token: str | None = None,
        log_file: Path | None = None,
        log_level: str | None = None,
        log_format: LogFormat = "text",
        after_seq: int = 0,
        embedded_server: bool = False,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        self.workflow_run_id = workflow_run_id
        self._token = token
        self.cluster_name = cluster_name
        self.server_url = server_url
        self.log_file = log_file
        self.log_level = log_level
        self.log_format = log_format
        self.after_seq = after_seq
        self.embedded_server = embedded_server
        self.environment = dict(environment or {})
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def exit_code(self) -> int | None:
        """Its exit code once it has exited (negative: killed by that signal), else None."""
        return self._process.poll() if self._process is not None else None

    def command(self) -> list[str]:
        """The command line that starts the distributor."""
        command = [
            sys.executable,
            "-m",
            "herdsman.distributor",
            "--workflow-run-id",
            str(self.workflow_run_id),
            "--cluster-name",
            self.cluster_name,
            "--server-url",
            self.server_url,
            "--after-seq",
            str(self.after_seq),
        ]
        if self.log_level:
            command += ["--log-level", self.log_level]
        if self.log_format != "text":
            command += ["--log-format", self.log_format]
        if self.embedded_server:
            command.append("--embedded-server")
        return command

    def start(self, timeout: float = 60.0) -> DistributorProcess:
        """Start the process and wait until it is ready; returns self.

        Raises :class:`DistributorStartError` (with the end of its log) when it exits first or
        is not ready within ``timeout`` seconds; it is stopped in that case.
        """
        if self._process is not None:
            raise RuntimeError("this distributor process was started already")
        stderr = self.log_file.open("ab") if self.log_file is not None else None
        try:
            self._process = subprocess.Popen(
                self.command(),
                env=self._environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
                close_fds=True,
            )
        finally:
            if stderr is not None:
                stderr.close()
        log = logger.bind(workflow_run_id=self.workflow_run_id, pid=self._process.pid)
        log.info("distributor_starting", cluster=self.cluster_name)
        try:
            self._await_ready(self._process, timeout)
        except DistributorStartError:
            self.stop(timeout=5.0)
            raise
        log.info("distributor_started")
        return self

    def _environment(self) -> dict[str, str] | None:
        """This process's environment plus ``environment`` and the run's token, if any."""
        if self._token is None and not self.environment:
            return None
        added = dict(self.environment)
        if self._token is not None:
            added[TOKEN_VARIABLE] = self._token
        return {**os.environ, **added}

    def is_alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, wait ``timeout`` s, SIGKILL; returns the exit code. Idempotent.

        After a SIGKILL the distributor's pool processes notice their parent's death and kill
        their commands; whatever of its process tree is still there after
        ``TREE_DRAIN_SECONDS`` is killed. A distributor that already exited on its own is
        left alone: it stopped its plugin on the way out.
        """
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            tree = _process_tree(process.pid)
            _signal(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "distributor_killed",
                    pid=process.pid,
                    timeout=timeout,
                    workflow_run_id=self.workflow_run_id,
                )
                _signal(process.pid, signal.SIGKILL)
                process.wait()
            for straggler in _wait_until_gone(tree, TREE_DRAIN_SECONDS):
                logger.warning("distributor_straggler_killed", pid=straggler.pid)
                with contextlib.suppress(psutil.Error):
                    straggler.kill()
            logger.info("distributor_stopped", pid=process.pid, exit_code=process.returncode)
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    def __enter__(self) -> DistributorProcess:
        if self._process is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _await_ready(self, process: subprocess.Popen[bytes], timeout: float) -> None:
        """Read the distributor's stdout until the ready line; raise if it never comes."""
        stdout = process.stdout
        if stdout is None:  # Popen gives one for stdout=PIPE; without it there is no handshake
            raise DistributorStartError("the distributor was started without a pipe to read")
        deadline = time.monotonic() + timeout
        buffer = b""
        ended = False
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while not ended and (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(min(remaining, 1.0)):
                    continue
                chunk = os.read(stdout.fileno(), 65_536)
                ended = not chunk  # end of file: the distributor is exiting
                *lines, buffer = (buffer + chunk).split(b"\n")
                if any(line.startswith(READY_MARKER.encode()) for line in lines):
                    return
        try:
            status = process.wait(timeout=5.0) if ended else process.poll()
        except subprocess.TimeoutExpired:
            status = None
        reason = (
            f"exited with status {status} before it was ready"
            if status is not None
            else f"was not ready within {timeout:.0f} s"
        )
        raise DistributorStartError(
            f"the herdsman distributor for workflow run {self.workflow_run_id} {reason}; "
            + self._log_tail(),
            details={"workflow_run_id": self.workflow_run_id, "exit_status": status},
        )

    def _log_tail(self) -> str:
        if self.log_file is None:
            return "its log went to this process's stderr"
        try:
            with self.log_file.open("rb") as stream:
                stream.seek(0, os.SEEK_END)
                stream.seek(max(0, stream.tell() - LOG_TAIL_CHARACTERS))
                tail = stream.read().decode(errors="replace")
        except OSError as error:
            return f"its log {self.log_file} cannot be read: {error}"
        return f"the end of its log {self.log_file}:\n{tail}"


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _process_tree(pid: int) -> list[psutil.Process]:
    """The descendants of ``pid`` (pool processes, commands), for stop() to wait on."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def _wait_until_gone(processes: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until each process has exited; return those still running after ``timeout``.

    An exited grandchild stays a zombie until init reaps it, which on some hosts takes a
    second or more; it is gone for our purpose, so a zombie counts as exited (psutil's
    ``wait_procs`` would wait for the reaping).
    """
    deadline = time.monotonic() + timeout
    alive = list(processes)
    while alive:
        alive = [process for process in alive if _running(process)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(_EXIT_POLL_SECONDS)
    return alive


def _running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
