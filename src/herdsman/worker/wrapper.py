"""The worker wrapper: runs one task instance and reports on it to the server.

The sequence, for task instance ``N``:

1. ``POST /task_instances/N/running`` with host, pid, cluster job id and herdsman version. The
   server answers with the command and where its output goes. If the answer's status is not
   R (the instance was told to die, or another attempt already finished it) the command is
   *not* run and the wrapper returns 0: the server decided, nothing failed. A version mismatch
   (409 :class:`ConflictError`) is not retried: a wrapper of another herdsman version would
   fail the same way every time, so it is logged and the wrapper returns 1.
2. The command runs (:mod:`herdsman.worker.command`) with ``HERDSMAN_WORKFLOW_ID``,
   ``HERDSMAN_WORKFLOW_RUN_ID``, ``HERDSMAN_TASK_ID`` and ``HERDSMAN_TASK_INSTANCE_ID`` in its
   environment, and the names Jobmon sets for the same ids (``JOBMON_WORKFLOW_ID``,
   ``JOBMON_TASK_ID``, ``JOBMON_TASK_INSTANCE_ID``). Meanwhile a heartbeat thread reports
   every ``heartbeat_interval`` seconds with the output tails. The server reaps an instance
   whose next report is overdue by ``heartbeat_interval * report_by_buffer`` seconds, so a
   beat or two may be lost to a busy server before anyone gives up on the instance. A
   heartbeat answered with K kills the command's process group (SIGTERM,
   ``kill_grace_seconds``, SIGKILL).
   With ``enforce_limits`` (asked for by clusters without a scheduler to do it), the
   command's memory and runtime requests from the running answer are enforced while it runs
   (:mod:`herdsman.worker.limits`): a command that outgrows one has its process group
   terminated, as on a kill request.
   A command that cannot be started at all is reported as an error (E) of the attempt, with
   the reason, and the wrapper returns 1.
3. Exit 0: ``POST .../done``. Otherwise ``POST .../error`` with the status and message from
   ``exit_code_status`` (a plugin hook; see :mod:`herdsman.worker.exit_status`), the tails,
   the output paths and the usage (wall time, CPU time, max RSS). A command killed for a
   limit is reported as Z whatever its exit code, with a message naming the request it
   outgrew, so its task is retried with more of it: a command that catches SIGTERM and exits
   0 (saving a checkpoint, say) did not finish its work.

The :class:`~herdsman.core.requester.Requester` retries transport failures; when a report
still cannot be delivered the wrapper logs it and returns 1, and the distributor's triage later
finds the instance through its missing heartbeats.

Return value (what ``herdsman-worker`` exits with): the command's exit code, ``128 + N`` when a
signal ``N`` killed it, 0 when the server said not to run, 1 when the wrapper itself failed.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
from collections.abc import Callable, Mapping
from typing import Any

import structlog

import herdsman
from herdsman.core.errors import ConflictError, HerdsmanError, TransitionRefused
from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.schemas.worker import (
    InstanceDoneIn,
    InstanceErrorIn,
    InstanceHeartbeatIn,
    InstanceRunningIn,
    InstanceRunningOut,
)
from herdsman.core.statuses import TaskInstanceStatus
from herdsman.core.timing import (
    DEFAULT_INSTANCE_HEARTBEAT_INTERVAL,
    DEFAULT_KILL_GRACE_SECONDS,
    DEFAULT_REPORT_BY_BUFFER,
    report_by_seconds,
)
from herdsman.worker.command import CommandResult, RunningCommand
from herdsman.worker.exit_status import (
    ExitCodeStatus,
    default_exit_code_status,
    shell_exit_code,
)
from herdsman.worker.limits import LimitExceeded, LimitWatcher, ResourceLimits
from herdsman.worker.output import output_file_path
from herdsman.worker.reporter import HttpReporter, InstanceReporter, WorkerRequester

__all__ = [
    "WRAPPER_ERROR_EXIT_CODE",
    "WorkerRequester",
    "command_environment",
    "run_reported_instance",
    "run_task_instance",
    "running_report",
]

logger = structlog.get_logger(__name__)

WRAPPER_ERROR_EXIT_CODE = 1
"""Returned when the wrapper could not do its job: refused, unreachable server, no shell."""


def command_environment(running: InstanceRunningOut, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` plus the ``HERDSMAN_*`` ids a command may use to find its place in the run,
    and the ``JOBMON_*`` names Jobmon gives the same ids, for commands written for Jobmon."""
    return {
        **base,
        "HERDSMAN_WORKFLOW_ID": str(running.workflow_id),
        "HERDSMAN_WORKFLOW_RUN_ID": str(running.workflow_run_id),
        "HERDSMAN_TASK_ID": str(running.task_id),
        "HERDSMAN_TASK_INSTANCE_ID": str(running.task_instance_id),
        "JOBMON_WORKFLOW_ID": str(running.workflow_id),
        "JOBMON_TASK_ID": str(running.task_id),
        "JOBMON_TASK_INSTANCE_ID": str(running.task_instance_id),
    }


def running_report(
    *, pid: int, distributor_id: str | None, next_report_seconds: float
) -> InstanceRunningIn:
    """The running report of a wrapper in process ``pid`` on this host."""
    return InstanceRunningIn(
        host=socket.gethostname()[:255],
        pid=pid,
        distributor_id=distributor_id,
        herdsman_version=herdsman.__version__,
        next_report_seconds=next_report_seconds,
    )


def run_task_instance(
    requester: WorkerRequester,
    task_instance_id: int,
    *,
    distributor_id: str | None = None,
    heartbeat_interval: float = DEFAULT_INSTANCE_HEARTBEAT_INTERVAL,
    report_by_buffer: float = DEFAULT_REPORT_BY_BUFFER,
    kill_grace_seconds: float = DEFAULT_KILL_GRACE_SECONDS,
    exit_code_status: ExitCodeStatus = default_exit_code_status,
    on_command_start: Callable[[int], None] | None = None,
    enforce_limits: bool = False,
) -> int:
    """Run task instance ``task_instance_id`` and report on it; see the module docstring.

    ``distributor_id`` is the cluster's job id (it names the output files; the instance id
    stands in without one). ``on_command_start`` is called with the command's pid, which is
    also its process-group id, as soon as it runs: a wrapper process passes it to its signal
    handler so the command can be killed. ``enforce_limits`` makes the wrapper kill a command
    that outgrows its task's memory or runtime request; off by default, because a cluster's
    scheduler does that where there is one. Never raises for server or command trouble; the
    return value says what happened.
    """
    reporter = HttpReporter(requester)
    log = logger.bind(task_instance_id=task_instance_id, distributor_id=distributor_id)
    next_report = report_by_seconds(heartbeat_interval, report_by_buffer)
    report = running_report(
        pid=os.getpid(), distributor_id=distributor_id, next_report_seconds=next_report
    )
    running = _report_running(reporter, task_instance_id, report, log)
    if running is None:
        return WRAPPER_ERROR_EXIT_CODE
    if running.status != TaskInstanceStatus.RUNNING:
        log.info("worker_not_running", status=running.status)
        return 0
    return run_reported_instance(
        reporter,
        running,
        distributor_id=distributor_id,
        heartbeat_interval=heartbeat_interval,
        next_report_seconds=next_report,
        kill_grace_seconds=kill_grace_seconds,
        exit_code_status=exit_code_status,
        on_command_start=on_command_start,
        enforce_limits=enforce_limits,
    )


def run_reported_instance(
    reporter: InstanceReporter,
    running: InstanceRunningOut,
    *,
    distributor_id: str | None,
    heartbeat_interval: float,
    next_report_seconds: float,
    kill_grace_seconds: float,
    exit_code_status: ExitCodeStatus = default_exit_code_status,
    on_command_start: Callable[[int], None] | None = None,
    enforce_limits: bool = False,
) -> int:
    """Steps 2 and 3 for an instance whose running report the server accepted (``running``).

    A local pool's parent makes the running report itself, in a batch, and hands a pool
    process the answer; a wrapper of its own gets there through :func:`run_task_instance`.
    The return value is that of :func:`run_task_instance`. Every log line of the attempt
    names its task and attempt (``task_id``, ``task_instance_id``).
    """
    with structlog.contextvars.bound_contextvars(
        task_id=running.task_id, task_instance_id=running.task_instance_id
    ):
        return _run_reported_instance(
            reporter,
            running,
            distributor_id=distributor_id,
            heartbeat_interval=heartbeat_interval,
            next_report_seconds=next_report_seconds,
            kill_grace_seconds=kill_grace_seconds,
            exit_code_status=exit_code_status,
            on_command_start=on_command_start,
            enforce_limits=enforce_limits,
        )


def _run_reported_instance(
    reporter: InstanceReporter,
    running: InstanceRunningOut,
    *,
    distributor_id: str | None,
    heartbeat_interval: float,
    next_report_seconds: float,
    kill_grace_seconds: float,
    exit_code_status: ExitCodeStatus,
    on_command_start: Callable[[int], None] | None,
    enforce_limits: bool,
) -> int:
    task_instance_id = running.task_instance_id
    log = logger.bind(task_instance_id=task_instance_id, distributor_id=distributor_id)
    job_id = distributor_id or str(task_instance_id)
    limits = (
        ResourceLimits.from_request(running.memory, running.runtime)
        if enforce_limits
        else ResourceLimits()
    )
    watcher = LimitWatcher(limits)
    try:
        command = RunningCommand.start(
            running.command,
            env=command_environment(running, os.environ),
            stdout_path=output_file_path(running.stdout_dir, running.name, "o", job_id),
            stderr_path=output_file_path(running.stderr_dir, running.name, "e", job_id),
            sample_interval=watcher.sample_interval,
            on_memory_sample=watcher.memory_listener,
        )
    except Exception as error:
        # Whatever stops the command from starting (no shell, a command or environment the
        # kernel refuses, a NUL byte Python refuses) is this attempt's error, reported so
        # that the task moves on; the wrapper itself carries on to a clean exit.
        reason = f"{type(error).__name__}: {error}"
        log.error("worker_command_start_failed", error=reason)
        body = InstanceErrorIn(
            status=TaskInstanceStatus.ERROR, message=f"could not start the command: {reason}"
        )
        _deliver(functools.partial(reporter.error, task_instance_id, body), "error", log)
        return WRAPPER_ERROR_EXIT_CODE
    watcher.start(functools.partial(command.terminate, kill_grace_seconds))
    log.info(
        "worker_command_started",
        pid=command.pid,
        memory_limit=limits.memory_bytes,
        runtime_limit=limits.runtime_seconds,
    )
    if on_command_start is not None:
        try:
            on_command_start(command.pid)
        except Exception:  # the command runs regardless; it must still be waited for
            log.exception("worker_start_callback_failed")
    heartbeat = _Heartbeat(
        reporter,
        task_instance_id,
        command,
        heartbeat_interval,
        next_report_seconds,
        kill_grace_seconds,
    )
    heartbeat.start()
    try:
        result = command.wait(straggler_grace=kill_grace_seconds)
    finally:
        heartbeat.stop()
        watcher.stop()
    exceeded = watcher.exceeded
    log.info(
        "worker_command_finished",
        exit_code=result.exit_code,
        killed=heartbeat.killed,
        limit_exceeded=exceeded.resource if exceeded else None,
    )
    if not _report_result(
        reporter, task_instance_id, result, heartbeat.killed, exceeded, exit_code_status
    ):
        return WRAPPER_ERROR_EXIT_CODE
    return (
        WRAPPER_ERROR_EXIT_CODE if result.exit_code is None else shell_exit_code(result.exit_code)
    )


def _report_running(
    reporter: HttpReporter,
    task_instance_id: int,
    report: InstanceRunningIn,
    log: structlog.typing.FilteringBoundLogger,
) -> InstanceRunningOut | None:
    """The server's answer to the running report; None when it failed (logged)."""
    try:
        return reporter.running(task_instance_id, report)
    except TransitionRefused as error:
        log.info("worker_not_running", status=error.details.get("status"), reason=error.message)
    except ConflictError as error:
        log.error("worker_refused", reason=error.message, version=herdsman.__version__)
    except HerdsmanError as error:
        log.error("worker_running_report_failed", error=error.message)
    return None


def _report_result(
    reporter: InstanceReporter,
    task_instance_id: int,
    result: CommandResult,
    killed: bool,
    exceeded: LimitExceeded | None,
    exit_code_status: ExitCodeStatus,
) -> bool:
    """Report done or error for ``result``; False when the report could not be delivered.

    ``killed``: on the server's request; ``exceeded``: by the wrapper, for a limit.
    """
    log = logger.bind(task_instance_id=task_instance_id)
    common: dict[str, Any] = {
        "stdout_tail": result.stdout_tail,
        "stderr_tail": result.stderr_tail,
        "stdout_path": str(result.stdout_path) if result.stdout_path else None,
        "stderr_path": str(result.stderr_path) if result.stderr_path else None,
        "usage": result.usage,
    }
    if result.exit_code == 0 and not killed and exceeded is None:
        done = InstanceDoneIn(**common)
        return _deliver(functools.partial(reporter.done, task_instance_id, done), "done", log)
    status: ErrorStatus
    if exceeded is not None and not killed:  # the reason is known even if the status was lost
        status, message = TaskInstanceStatus.RESOURCE_ERROR, exceeded.message
    elif result.exit_code is None:
        status, message = TaskInstanceStatus.UNKNOWN_ERROR, "the command's exit status was lost"
    elif killed:
        # The instance is K on the server, where this report is recorded but changes nothing.
        status, message = TaskInstanceStatus.ERROR, "killed on the server's request"
    else:
        status, message = exit_code_status(result.exit_code)
    body = InstanceErrorIn(status=status, exit_code=result.exit_code, message=message, **common)
    return _deliver(functools.partial(reporter.error, task_instance_id, body), "error", log)


def _deliver(
    send: Callable[[], None], kind: str, log: structlog.typing.FilteringBoundLogger
) -> bool:
    try:
        send()
    except HerdsmanError as error:
        log.error("worker_report_failed", report=kind, error=error.message)
        return False
    log.info("worker_reported", report=kind)
    return True


class _Heartbeat:
    """Reports every ``interval`` seconds until stopped; kills the command when told K.

    Only this thread sends heartbeats, and a failed beat is only logged: the next one may get
    through, and the server's deadline (``next_report`` seconds) already allows for misses.
    """

    def __init__(
        self,
        reporter: InstanceReporter,
        task_instance_id: int,
        command: RunningCommand,
        interval: float,
        next_report: float,
        kill_grace: float,
    ) -> None:
        self._reporter = reporter
        self._task_instance_id = task_instance_id
        self._command = command
        self._interval = interval
        self._next_report = next_report
        self._kill_grace = kill_grace
        self._stopped = threading.Event()
        self._killed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="herdsman-heartbeat", daemon=True)

    @property
    def killed(self) -> bool:
        """True once a heartbeat was answered with K and the command was told to stop."""
        return self._killed.is_set()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; waits for a beat in flight (bounded by the requester's timeout)."""
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        log = logger.bind(task_instance_id=self._task_instance_id)
        while not self._stopped.wait(self._interval):
            stdout_tail, stderr_tail = self._command.tails()
            body = InstanceHeartbeatIn(
                next_report_seconds=self._next_report,
                stdout_tail=stdout_tail,
                stderr_tail=stderr_tail,
            )
            try:
                reply = self._reporter.heartbeat(self._task_instance_id, body)
            except HerdsmanError as error:
                log.warning("worker_heartbeat_failed", error=error.message)
                continue
            log.debug("worker_heartbeat", status=reply.status)
            if reply.status == TaskInstanceStatus.KILL_SELF and not self._killed.is_set():
                log.info("worker_kill_requested", pgid=self._command.pid)
                self._killed.set()
                self._command.terminate(self._kill_grace)
