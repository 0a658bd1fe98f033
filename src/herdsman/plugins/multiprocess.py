"""The ``multiprocess`` cluster: a pool of long-lived worker processes on this machine.

:meth:`MultiprocessPlugin.start` starts the pool once; each pool process imports herdsman once
and then runs job after job through :func:`~herdsman.worker.wrapper.run_task_instance`, so a
task's command never waits for a fresh Python interpreter. The processes are started with
``spawn``: the distributor runs threads, and forking a threaded process can copy a lock in its
locked state into the child. Like every ``spawn`` user, the plugin must run in a process whose
main module is safe to import again (spawned children import it): the distributor's
(``python -m herdsman.distributor``) is; a user's unguarded script would not be.

The parent (the distributor) keeps the queue of waiting jobs and hands one job at a time to an
idle pool process through that process's own job queue; pool processes answer on one shared
result queue (``ready``, ``started`` with the command's process group, ``heartbeat``,
``finished`` with the wrapper's exit code and its done or error report). Keeping the waiting
jobs in the parent is what makes cancelling a job that has not started a matter of dropping
it. A pool process that dies is replaced; its command is killed and the job forgotten (triage
finds it through its missing heartbeats).

The parent also carries the pool's reports to the server, in batches
(:mod:`herdsman.plugins._reports`), so a short task costs the server a share of one request
instead of two requests of its own. A job goes to its pool process as soon as one is idle,
with what it runs taken from the claim, and its running report goes in the pool's next batch,
together with the report of the job that just finished there: waiting for the server's
answer before starting would put a round trip between any two tasks of a process. When the
server refuses the running report (the run was stopped in that instant), the parent kills
the command at once and its report changes nothing on the server.

A pool process stops its command when the distributor dies (it watches its parent) or when it
receives SIGTERM, so commands, which run in sessions of their own, are not left behind.

Cluster parameters: :class:`MultiprocessParameters` (all optional). Enforcing the tasks'
requests (``enforce_limits``) also keeps one runaway task from taking the memory of the others.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.queues import Queue
from typing import Annotated, Any

import structlog
from pydantic import BeforeValidator

from herdsman.core.errors import ConfigurationError, HerdsmanError
from herdsman.core.schemas.distributor import ClaimedInstance
from herdsman.core.schemas.worker import (
    InstanceReportIn,
    InstanceReportOut,
    InstanceRunningOut,
    running_answer,
)
from herdsman.core.statuses import TaskInstanceStatus
from herdsman.core.timing import report_by_seconds
from herdsman.distributor.plugin import PluginRequester, SubmitBatch
from herdsman.plugins._local import (
    LocalJob,
    LocalJobsPlugin,
    LocalParameters,
    kill_groups_in_background,
)
from herdsman.plugins._pool import HeartbeatReply, PoolConfig, PoolSlot, pool_process_main
from herdsman.plugins._reports import ReplyHandler, ReportBatcher, refusal_error
from herdsman.worker.wrapper import running_report

__all__ = [
    "MultiprocessParameters",
    "MultiprocessPlugin",
    "PoolStartError",
    "default_worker_count",
]

logger = structlog.get_logger(__name__)

JOB_ID_PREFIX = "mp-"
WORKERS_ENV = "HERDSMAN_MULTIPROCESS_WORKERS"
START_TIMEOUT_SECONDS = 60.0
# How long stop() waits for a pool process to report its last job and exit.
EXIT_TIMEOUT_SECONDS = 30.0
_COLLECT_SECONDS = 0.5


class PoolStartError(HerdsmanError):
    """The pool's processes did not all become ready; the message says why."""


def default_worker_count() -> int:
    """Env ``HERDSMAN_MULTIPROCESS_WORKERS``, else the CPUs this process may run on.

    CPU affinity counts, not the machine's CPUs: inside a cluster allocation or a container
    only the allotted CPUs are usable.
    """
    raw = os.environ.get(WORKERS_ENV)
    if raw:
        return _positive_int(raw, WORKERS_ENV)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _positive_int(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return number


def _workers(value: object) -> int | None:
    return None if value is None else _positive_int(value, "workers")


class MultiprocessParameters(LocalParameters):
    """The ``multiprocess`` cluster's parameters: the pool's size, the local plugins' and the
    distributor's.

    ``workers``: pool processes (default: env ``HERDSMAN_MULTIPROCESS_WORKERS``, else the CPUs
    this process may use). ``heartbeat_interval`` sets how often the pool's wrappers heartbeat
    their jobs.
    """

    workers: Annotated[int | None, BeforeValidator(_workers)] = None


@dataclass(frozen=True)
class PooledJob(LocalJob):
    """A job of the pool, with the server's answer to its running report planned from its
    claim (:func:`_planned_run`), so a pool process can start it before that answer arrives."""

    run: InstanceRunningOut


@dataclass
class _Slot:
    """The parent's view of one pool process."""

    index: int
    process: PoolSlot
    ready: bool = False
    job: PooledJob | None = None  # from its running report on, until the job finished


class MultiprocessPlugin(LocalJobsPlugin[PooledJob]):
    """A :class:`~herdsman.distributor.plugin.ClusterPlugin` running a local process pool."""

    def __init__(self, *, requester: PluginRequester, parameters: Mapping[str, Any]) -> None:
        checked = MultiprocessParameters.parse(parameters, plugin="multiprocess")
        super().__init__(checked.kill_grace_seconds)
        self._size = checked.workers or default_worker_count()
        self._config = PoolConfig(
            server_url=requester.base_url,
            heartbeat_interval=checked.heartbeat_interval,
            next_report_seconds=report_by_seconds(checked.heartbeat_interval),
            kill_grace_seconds=checked.kill_grace_seconds,
            enforce_limits=checked.enforce_limits,
        )
        self._reports = ReportBatcher(
            requester.base_url, recover=getattr(requester, "recover", None)
        )
        self._context = multiprocessing.get_context("spawn")
        self._results: Queue[tuple[Any, ...]] = self._context.Queue()
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()  # guards _slots' ready/job fields and dispatching
        self._all_ready = threading.Event()
        self._stopping = threading.Event()
        self._stopped = False
        self._start_failure: str | None = None
        self._collector = threading.Thread(
            target=self._collect, name="herdsman-pool-results", daemon=True
        )

    @property
    def size(self) -> int:
        """Number of pool processes."""
        return self._size

    def start(self) -> None:
        """Start the pool and wait until every process is ready to run a command.

        Raises :class:`PoolStartError` (after stopping what started) when that takes more than
        a minute or a process dies first.
        """
        self._slots = [_Slot(index, self._spawn(index)) for index in range(self._size)]
        self._reports.start()
        self._collector.start()
        ready = self._all_ready.wait(START_TIMEOUT_SECONDS)
        if not ready or self._start_failure is not None:
            self.stop()
            reason = self._start_failure or (
                f"its {self._size} processes were not ready within {START_TIMEOUT_SECONDS:.0f} s"
            )
            raise PoolStartError(f"the multiprocess pool did not start: {reason}; see the log")
        logger.info("multiprocess_pool_started", workers=self._size)

    def stop(self) -> None:
        """Drop waiting jobs, kill running commands, and end the pool processes. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self._stopping.set()
        for slot in self._slots:
            slot.process.send(None)  # each ends after its job, which is killed now
        killed = self._close_jobs()
        with self._lock:
            starting = {slot.index for slot in self._slots if not slot.ready}
        for slot in self._slots:
            # One still starting holds no job; waiting for its imports to finish only delays
            # the distributor's exit (seconds on a loaded machine).
            slot.process.finish(0.0 if slot.index in starting else EXIT_TIMEOUT_SECONDS)
        self._results.put(("stop",))
        if self._collector.is_alive():
            self._collector.join()
        self._reports.stop()  # after the collector: the last jobs' reports must still go
        self._results.close()
        self._results.join_thread()
        logger.info("multiprocess_pool_stopped", killed=killed)

    def submit(self, batch: SubmitBatch) -> list[str]:
        jobs = [
            PooledJob(
                f"{JOB_ID_PREFIX}{instance.task_instance_id}",
                instance.task_instance_id,
                _planned_run(batch, instance),
            )
            for instance in batch.instances
        ]
        self._jobs.add(jobs)
        self._dispatch([])
        return [job.job_id for job in jobs]

    # --- the parent's side of the pool ------------------------------------------------------

    def _spawn(self, index: int) -> PoolSlot:
        return PoolSlot.spawn(self._context, pool_process_main, self._config, index, self._results)

    def _dispatch(self, reports: list[tuple[InstanceReportIn, ReplyHandler | None]]) -> None:
        """Give waiting jobs to idle, ready pool processes; send their running reports along
        with ``reports`` in one batch."""
        with self._lock:
            for slot in self._slots if not self._stopping.is_set() else ():
                if not slot.ready or slot.job is not None:
                    continue
                job = self._jobs.take()
                if job is None:
                    break
                slot.job = job
                slot.process.send((job.job_id, job.run))
                report = running_report(
                    pid=slot.process.pid or 0,
                    distributor_id=job.job_id,
                    next_report_seconds=self._config.next_report_seconds,
                )
                running = InstanceReportIn(task_instance_id=job.task_instance_id, running=report)
                reports.append((running, functools.partial(self._on_running, job)))
        self._reports.send(reports)

    def _on_running(self, job: PooledJob, answer: InstanceReportOut | HerdsmanError) -> None:
        """Kill ``job``'s command unless the server accepted its running report."""
        if isinstance(answer, InstanceReportOut) and answer.status == TaskInstanceStatus.RUNNING:
            return
        error = answer if isinstance(answer, HerdsmanError) else refusal_error(answer)
        logger.info(
            "multiprocess_job_refused",
            task_instance_id=job.task_instance_id,
            status=None if isinstance(answer, HerdsmanError) else answer.status,
            reason=error.message if error else None,
        )
        kill_groups_in_background(self._jobs.cancel([job.job_id]), self._kill_grace)

    def _on_final_report(
        self, job_id: str, exit_code: int, _answer: InstanceReportOut | HerdsmanError
    ) -> None:
        # Delivered or not: a lost report leaves the instance to triage, which asks
        # remote_exit_info and learns the exit code from here.
        self._jobs.finished(job_id, exit_code)

    def _on_heartbeat(
        self, process: PoolSlot, task_instance_id: int, answer: InstanceReportOut | HerdsmanError
    ) -> None:
        error = answer if isinstance(answer, HerdsmanError) else refusal_error(answer)
        if error is not None or not isinstance(answer, InstanceReportOut):
            process.reply(HeartbeatReply(task_instance_id, None, error.message if error else None))
            return
        process.reply(HeartbeatReply(task_instance_id, answer.status))

    def _collect(self) -> None:
        """Apply the pool's messages; replace dead pool processes. Ends on ``("stop",)``."""
        next_check = time.monotonic() + _COLLECT_SECONDS
        while True:
            # Checked on a clock, not only when the pool is quiet: a busy pool's messages would
            # otherwise hide a dead process, and its command would run on unsupervised.
            if time.monotonic() >= next_check:
                self._check_alive()
                next_check = time.monotonic() + _COLLECT_SECONDS
            try:
                message = self._results.get(timeout=_COLLECT_SECONDS)
            except queue.Empty:
                continue
            kind = message[0]
            reports: list[tuple[InstanceReportIn, ReplyHandler | None]] = []
            if kind == "stop":
                return
            if kind == "ready":
                self._on_ready(message[1])
            elif kind == "started":
                _, _index, job_id, pgid = message
                self._command_started(job_id, pgid)
            elif kind == "heartbeat":
                _, index, task_instance_id, body = message
                handler = functools.partial(
                    self._on_heartbeat, self._slots[index].process, task_instance_id
                )
                report = InstanceReportIn(task_instance_id=task_instance_id, heartbeat=body)
                reports.append((report, handler))
            elif kind == "finished":
                _, index, job_id, exit_code, final = message
                with self._lock:
                    self._slots[index].job = None
                if final is None:
                    self._jobs.finished(job_id, exit_code)
                else:
                    # Active until the server has its report: else triage, seeing the job
                    # gone while the server still has it launched, would take it for lost.
                    self._jobs.command_ended(job_id)
                    handler = functools.partial(self._on_final_report, job_id, exit_code)
                    reports.append((final, handler))
            self._dispatch(reports)

    def _on_ready(self, index: int) -> None:
        with self._lock:
            self._slots[index].ready = True
            if all(slot.ready for slot in self._slots):
                self._all_ready.set()

    def _check_alive(self) -> None:
        if self._stopping.is_set():
            return
        for slot in self._slots:
            if slot.process.is_alive():
                continue
            with self._lock:
                lost, slot.job, slot.ready = slot.job, None, False
            if lost is not None:
                logger.warning(
                    "multiprocess_worker_died",
                    index=slot.index,
                    exit_code=slot.process.exitcode,
                    task_instance_id=lost.task_instance_id,
                    task_id=lost.run.task_id if lost.run is not None else None,
                    hint="the attempt is reported lost and the task retried",
                )
            else:
                logger.warning(
                    "multiprocess_worker_died", index=slot.index, exit_code=slot.process.exitcode
                )
            if lost is not None:
                pgid = self._jobs.finished(lost.job_id, None)
                if pgid is not None:  # its command runs on without anyone to report it
                    kill_groups_in_background([pgid], self._kill_grace)
            if not self._all_ready.is_set():  # it would die again: give up
                self._start_failure = (
                    f"pool process {slot.index} exited with code {slot.process.exitcode} "
                    "while starting"
                )
                self._stopping.set()
                self._all_ready.set()
                return
            slot.process.finish(0)
            slot.process = self._spawn(slot.index)


def _planned_run(batch: SubmitBatch, instance: ClaimedInstance) -> InstanceRunningOut:
    """What the server's answer to the instance's running report will say, from its claim."""
    return running_answer(
        status=TaskInstanceStatus.RUNNING,
        task_instance_id=instance.task_instance_id,
        task_id=instance.task_id,
        workflow_id=batch.workflow_id,
        workflow_run_id=batch.workflow_run_id,
        name=instance.name,
        command=instance.command,
        resources=instance.resources,
    )
