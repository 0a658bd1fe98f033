"""One process of the ``multiprocess`` pool: both its parent-side handle and its main loop.

The main loop runs in the pool process. It imports herdsman once, tells the parent it is
ready, then runs every job it is given through
:func:`~herdsman.worker.wrapper.run_task_instance`, reporting the command's process group as
soon as the command starts and the wrapper's exit code when it ends. ``None`` on its job queue
ends it.

Signals: SIGINT is ignored (a Ctrl-C in the distributor's terminal is the distributor's to
handle). SIGTERM is passed on to the running command's process group; the loop then reports
that job and exits. A watcher thread does the same when the parent dies, so a command is never
left running without a distributor.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnContext, SpawnProcess
from multiprocessing.queues import Queue, SimpleQueue
from types import FrameType
from typing import Any

import structlog

from herdsman.worker.command import terminate_process_group

__all__ = ["PoolConfig", "PoolSlot", "pool_process_main"]

logger = structlog.get_logger(__name__)

# After the parent died: how long the main thread may take to report the killed command.
REPORT_SECONDS = 30.0


@dataclass(frozen=True)
class PoolConfig:
    """What a pool process needs; plain values, because it crosses to a spawned process."""

    server_url: str
    heartbeat_interval: float
    kill_grace_seconds: float
    enforce_limits: bool  # see the multiprocess module docstring


class PoolSlot:
    """The parent's handle on one pool process: its process and its job queue."""

    def __init__(self, process: SpawnProcess, jobs: SimpleQueue[Any]) -> None:
        self._process = process
        self._jobs = jobs

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
        process = context.Process(
            target=target,
            args=(config, index, jobs, results),
            name=f"herdsman-pool-{index}",
            daemon=False,  # it must outlive a parent crash long enough to kill its command
        )
        process.start()
        return cls(process, jobs)

    @property
    def exitcode(self) -> int | None:
        return self._process.exitcode

    def is_alive(self) -> bool:
        return self._process.is_alive()

    def send(self, job: Any) -> None:
        """Queue a job (``None`` to end the process) unless the process is gone."""
        if self._process.is_alive():
            self._jobs.put(job)

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


class _Current:
    """The command this pool process runs, for its signal handler and parent watcher."""

    def __init__(self, kill_grace: float) -> None:
        self.pgid: int | None = None
        self.stop_after_job = False
        self.kill_grace = kill_grace
        self.reported = threading.Event()  # set once the current job's outcome was reported

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
    current.stop_after_job = True
    pgid = current.pgid
    if pgid is not None:
        logger.info("pool_parent_died", pgid=pgid)
        terminate_process_group(pgid, current.kill_grace)
        current.reported.wait(REPORT_SECONDS)
    os._exit(1)


def pool_process_main(
    config: PoolConfig,
    index: int,
    jobs: SimpleQueue[Any],
    results: Queue[tuple[Any, ...]],
) -> None:
    """The pool process's main loop; see the module docstring."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    current = _Current(config.kill_grace_seconds)
    signal.signal(signal.SIGTERM, current.forward)
    threading.Thread(target=_watch_parent, args=(current,), daemon=True).start()

    # Importing herdsman also sets up its logging from the inherited HERDSMAN_LOG_LEVEL.
    from herdsman.core.requester import Requester
    from herdsman.worker.wrapper import WRAPPER_ERROR_EXIT_CODE, run_task_instance

    log = logger.bind(pool_index=index, pid=os.getpid())
    with Requester(config.server_url) as requester:
        results.put(("ready", index, os.getpid()))
        while not current.stop_after_job and (job := jobs.get()) is not None:

            def started(pgid: int, job_id: str = job.job_id) -> None:
                current.reported.clear()
                current.pgid = pgid
                results.put(("started", index, job_id, pgid))

            exit_code = WRAPPER_ERROR_EXIT_CODE
            try:
                exit_code = run_task_instance(
                    requester,
                    job.task_instance_id,
                    distributor_id=job.job_id,
                    heartbeat_interval=config.heartbeat_interval,
                    kill_grace_seconds=config.kill_grace_seconds,
                    on_command_start=started,
                    enforce_limits=config.enforce_limits,
                )
            except Exception:  # a bug must not take the pool process down with the job
                log.exception("pool_job_failed", task_instance_id=job.task_instance_id)
            finally:
                current.pgid = None
                current.reported.set()
                results.put(("finished", index, job.job_id, exit_code))
    log.debug("pool_process_exiting")
