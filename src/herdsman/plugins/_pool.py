"""One process of the ``multiprocess`` pool: both its parent-side handle and its main loop.

The main loop runs in the pool process. It imports herdsman once, tells the parent it is
ready, then runs every job it is given through
:func:`~herdsman.worker.wrapper.run_reported_instance`. A job arrives with the server's answer
to its running report, which the parent made in a batch with the other reports of the pool.
The pool process reports to its parent, never to the server: the command's process group as
soon as it starts, its heartbeats (answered through the process's reply queue, so a kill
request reaches it), and at the end the wrapper's exit code together with the done or error
report, which the parent sends on in its next batch. ``None`` on its job queue ends it.

Signals: SIGINT is ignored (a Ctrl-C in the distributor's terminal is the distributor's to
handle). SIGTERM is passed on to the running command's process group; the loop then reports
that job and exits. A watcher thread does the same when the parent dies, so a command is never
left running without a distributor; the report of the killed command then goes straight to
the server, since no parent is left to carry it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.queues import Queue, SimpleQueue
from types import FrameType
from typing import Any

import structlog

from herdsman.core.errors import ServerUnavailableError
from herdsman.core.schemas.worker import (
    InstanceDoneIn,
    InstanceErrorIn,
    InstanceHeartbeatIn,
    InstanceReportIn,
    InstanceStatusOut,
)
from herdsman.worker.command import terminate_process_group
from herdsman.worker.reporter import HttpReporter

__all__ = ["HeartbeatReply", "PoolConfig", "PoolSlot", "pool_process_main"]

logger = structlog.get_logger(__name__)

# After the parent died: how long the main thread may take to report the killed command.
REPORT_SECONDS = 30.0
# How long a heartbeat waits for its answer through the parent before it counts as failed.
HEARTBEAT_REPLY_SECONDS = 120.0


@dataclass(frozen=True)
class PoolConfig:
    """What a pool process needs; plain values, because it crosses to a spawned process."""

    server_url: str  # only for reports when the parent is gone
    heartbeat_interval: float
    next_report_seconds: float
    kill_grace_seconds: float
    enforce_limits: bool  # see the multiprocess module docstring


@dataclass(frozen=True)
class HeartbeatReply:
    """The parent's answer to a pool process's heartbeat: a status, or why there is none."""

    task_instance_id: int
    status: str | None
    error: str | None = None


class PoolSlot:
    """The parent's handle on one pool process: its process, its job and reply queues."""

    def __init__(self, process: SpawnProcess, jobs: SimpleQueue[Any], replies: Queue[Any]) -> None:
        self._process = process
        self._jobs = jobs
        self._replies = replies

    @classmethod
    def spawn(
        cls,
        context: SpawnContext,
        target: Callable[..., None],
        config: PoolConfig,
        index: int,
        results: Queue[tuple[Any, ...]],
    ) -> PoolSlot:
        jobs: SimpleQueue[Any] = context.SimpleQueue()
        replies: Queue[Any] = context.Queue()
        process = context.Process(
            target=target,
            args=(config, index, jobs, replies, results),
            name=f"herdsman-pool-{index}",
            daemon=False,  # it must outlive a parent crash long enough to kill its command
        )
        process.start()
        return cls(process, jobs, replies)

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def send(self, job: Any) -> None:
        """Queue a job (``None`` to end the process) unless the process is gone."""
        if self._process.is_alive():
            self._jobs.put(job)

    def reply(self, answer: HeartbeatReply) -> None:
        """Answer the process's heartbeat; an ended process's answer is dropped."""
        with contextlib.suppress(ValueError, OSError):  # its queue was closed by finish()
            self._replies.put(answer)

    def finish(self, timeout: float) -> None:
        """Wait ``timeout`` s for the process to exit, then SIGTERM, then SIGKILL it."""
        self._process.join(timeout)
        if self._process.is_alive():
            logger.warning("pool_process_terminated", pid=self._process.pid)
            self._process.terminate()
            self._process.join(5.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)
        self._jobs.close()
        self._replies.close()


class _Current:
    """The command this pool process runs, for its signal handler and parent watcher."""

    def __init__(self, kill_grace: float) -> None:
        self.pgid: int | None = None
        self.stop_after_job = False
        self.kill_grace = kill_grace
        self.reported = threading.Event()  # set once the current job's outcome was reported
        self.parent_gone = threading.Event()

    def forward(self, signum: int, _frame: FrameType | None) -> None:
        self.stop_after_job = True
        if self.pgid is None:
            raise SystemExit(0)  # idle: nothing to stop but ourselves
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pgid, signum)


def _watch_parent(current: _Current) -> None:
    """Kill the command and exit when the parent (the distributor) dies.

    The main thread gets ``REPORT_SECONDS`` to report the killed command to the server, so the
    task is retried at once instead of waiting for triage to notice the silence.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    parent.join()  # waits on the parent's sentinel
    current.parent_gone.set()
    current.stop_after_job = True
    pgid = current.pgid
    if pgid is not None:
        logger.info("pool_parent_died", pgid=pgid)
        terminate_process_group(pgid, current.kill_grace)
        current.reported.wait(REPORT_SECONDS)
    os._exit(1)


class _ParentReporter:
    """The wrapper's reports of one job, handed to the parent (see the module docstring).

    ``final`` keeps the done or error report for the ``finished`` message, so the parent
    learns the job's end and its report together and can send the report in the same batch
    as the next job's running report.
    """

    def __init__(
        self,
        index: int,
        results: Queue[tuple[Any, ...]],
        replies: Queue[Any],
        current: _Current,
        server_url: str,
    ) -> None:
        self._index = index
        self._results = results
        self._replies = replies
        self._current = current
        self._server_url = server_url
        self.final: InstanceReportIn | None = None

    def heartbeat(self, task_instance_id: int, report: InstanceHeartbeatIn) -> InstanceStatusOut:
        self._results.put(("heartbeat", self._index, task_instance_id, report))
        while True:
            try:
                answer: HeartbeatReply = self._replies.get(timeout=HEARTBEAT_REPLY_SECONDS)
            except queue.Empty:
                raise ServerUnavailableError("the pool's parent did not answer") from None
            if answer.task_instance_id != task_instance_id:
                continue  # the late answer of an earlier job's heartbeat
            if answer.status is None:
                raise ServerUnavailableError(answer.error or "the heartbeat was not delivered")
            return InstanceStatusOut(task_instance_id=task_instance_id, status=answer.status)

    def done(self, task_instance_id: int, report: InstanceDoneIn) -> None:
        self._finish(InstanceReportIn(task_instance_id=task_instance_id, done=report))

    def error(self, task_instance_id: int, report: InstanceErrorIn) -> None:
        self._finish(InstanceReportIn(task_instance_id=task_instance_id, error=report))

    def _finish(self, report: InstanceReportIn) -> None:
        if not self._current.parent_gone.is_set():
            self.final = report
            return
        from herdsman.core.requester import Requester  # only needed in this rare case

        with Requester(self._server_url) as requester:
            direct = HttpReporter(requester)
            if report.done is not None:
                direct.done(report.task_instance_id, report.done)
            elif report.error is not None:
                direct.error(report.task_instance_id, report.error)


def pool_process_main(
    config: PoolConfig,
    index: int,
    jobs: SimpleQueue[Any],
    replies: Queue[Any],
    results: Queue[tuple[Any, ...]],
) -> None:
    """The pool process's main loop; see the module docstring."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    current = _Current(config.kill_grace_seconds)
    signal.signal(signal.SIGTERM, current.forward)
    threading.Thread(target=_watch_parent, args=(current,), daemon=True).start()

    # Importing herdsman also sets up its logging from the inherited HERDSMAN_LOG_LEVEL.
    from herdsman.worker.wrapper import WRAPPER_ERROR_EXIT_CODE, run_reported_instance

    log = logger.bind(pool_index=index, pid=os.getpid())
    results.put(("ready", index, os.getpid()))
    while not current.stop_after_job and (message := jobs.get()) is not None:
        job_id, running = message
        reporter = _ParentReporter(index, results, replies, current, config.server_url)

        def started(pgid: int, job_id: str = job_id) -> None:
            current.reported.clear()
            current.pgid = pgid
            results.put(("started", index, job_id, pgid))

        exit_code = WRAPPER_ERROR_EXIT_CODE
        try:
            exit_code = run_reported_instance(
                reporter,
                running,
                distributor_id=job_id,
                heartbeat_interval=config.heartbeat_interval,
                next_report_seconds=config.next_report_seconds,
                kill_grace_seconds=config.kill_grace_seconds,
                on_command_start=started,
                enforce_limits=config.enforce_limits,
            )
        except Exception:  # a bug must not take the pool process down with the job
            log.exception("pool_job_failed", task_instance_id=running.task_instance_id)
        finally:
            current.pgid = None
            current.reported.set()
            results.put(("finished", index, job_id, exit_code, reporter.final))
    log.debug("pool_process_exiting")
