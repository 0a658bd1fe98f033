"""What the plugins that run on this machine share: their base classes, parameters and jobs.

:class:`LocalPlugin` answers what every local plugin answers alike (the machine keeps no
records of its own; exit codes mean what they mean to a shell). :class:`LocalJobsPlugin` adds
the jobs of a plugin that runs commands (``sequential``, ``multiprocess``): which are still
waiting or running, how to kill them, what became of one whose report never arrived.

A local job is *waiting* (submitted, not yet handed to a runner), *assigned* (a runner has
it; its process group is known once the command started) or *finished* (its wrapper's exit
code is remembered for triage). Cancelling a waiting job simply drops it. Cancelling an
assigned job whose command has not started yet marks it, and the command is killed as soon as
its start is reported: the wrapper may already have told the server it runs.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.schemas.worker import Usage
from herdsman.core.statuses import TaskInstanceStatus
from herdsman.core.timing import DEFAULT_KILL_GRACE_SECONDS
from herdsman.distributor.parameters import ClusterParameters, Flag, PositiveSeconds
from herdsman.worker.command import terminate_process_group
from herdsman.worker.exit_status import default_exit_code_status, describe_exit_code

__all__ = [
    "LocalJob",
    "LocalJobs",
    "LocalJobsPlugin",
    "LocalParameters",
    "LocalPlugin",
    "kill_groups",
    "kill_groups_in_background",
]

logger = structlog.get_logger(__name__)

# Exit codes kept for triage; older ones are forgotten so a long run's memory stays bounded.
REMEMBERED_EXIT_CODES = 100_000


@dataclass(frozen=True)
class LocalJob:
    """A submitted instance, by the job id the plugin gave it."""

    job_id: str
    task_instance_id: int


J = TypeVar("J", bound=LocalJob)


class LocalJobs(Generic[J]):
    """Waiting, assigned and finished jobs of one local plugin. Thread-safe.

    ``J`` is the plugin's kind of job: a plugin that knows more of a job up front (what it
    runs) keeps that in a subclass of :class:`LocalJob` and gets it back from :meth:`take`.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._waiting: deque[J] = deque()
        self._assigned: dict[str, int | None] = {}  # job id -> process group, once started
        self._cancelled: set[str] = set()
        self._exit_codes: OrderedDict[str, int | None] = OrderedDict()
        self._closed = False

    def add(self, jobs: Sequence[J]) -> None:
        with self._lock:
            self._waiting.extend(jobs)
            self._lock.notify_all()

    def take(self) -> J | None:
        """The oldest waiting job, now assigned; None when none waits."""
        with self._lock:
            return self._take()

    def wait_and_take(self) -> J | None:
        """Block until a job waits (then assign it) or :meth:`close` was called (None)."""
        with self._lock:
            while not self._waiting and not self._closed:
                self._lock.wait()
            return None if self._closed else self._take()

    def _take(self) -> J | None:
        if not self._waiting:
            return None
        job = self._waiting.popleft()
        self._assigned[job.job_id] = None
        return job

    def started(self, job_id: str, pgid: int) -> bool:
        """Record the command's process group; False if the job was cancelled meanwhile."""
        with self._lock:
            if job_id not in self._assigned:
                return False
            self._assigned[job_id] = pgid
            return job_id not in self._cancelled

    def command_ended(self, job_id: str) -> None:
        """The job's command exited but its report may still be on its way to the server.

        The job stays active until :meth:`finished`, so triage does not take it for lost in
        between; its process group is forgotten, so a cancel cannot hit a reused one.
        """
        with self._lock:
            if job_id in self._assigned:
                self._assigned[job_id] = None

    def finished(self, job_id: str, exit_code: int | None) -> int | None:
        """The job's wrapper returned ``exit_code`` (None: the runner died with it).

        Returns the job's process group if its command had started: when the runner died, the
        command may still be running, unsupervised, and the caller must kill it.
        """
        with self._lock:
            pgid = self._assigned.pop(job_id, None)
            self._cancelled.discard(job_id)
            self._exit_codes[job_id] = exit_code
            while len(self._exit_codes) > REMEMBERED_EXIT_CODES:
                self._exit_codes.popitem(last=False)
        return pgid

    def active(self, job_ids: Iterable[str]) -> set[str]:
        """Those of ``job_ids`` waiting or assigned."""
        with self._lock:
            live = {job.job_id for job in self._waiting} | set(self._assigned)
        return live & set(job_ids)

    def cancel(self, job_ids: Iterable[str]) -> list[int]:
        """Drop waiting jobs; mark assigned ones. The process groups to kill now."""
        wanted = set(job_ids)
        with self._lock:
            self._waiting = deque(job for job in self._waiting if job.job_id not in wanted)
            groups = []
            for job_id in wanted & set(self._assigned):
                self._cancelled.add(job_id)
                pgid = self._assigned[job_id]
                if pgid is not None:
                    groups.append(pgid)
        return groups

    def close(self) -> list[int]:
        """Drop every waiting job, cancel the assigned ones; the process groups to kill."""
        with self._lock:
            self._closed = True
            self._waiting.clear()
            self._cancelled.update(self._assigned)
            groups = [pgid for pgid in self._assigned.values() if pgid is not None]
            self._lock.notify_all()
        return groups

    def exit_info(self, job_id: str) -> tuple[ErrorStatus, str] | None:
        """What the job's wrapper returned, as triage wants it; None when unknown."""
        with self._lock:
            if job_id not in self._exit_codes:
                return None
            code = self._exit_codes[job_id]
        if code is None:
            return TaskInstanceStatus.UNKNOWN_ERROR, f"the local process running job {job_id} died"
        if code == 0:
            return (
                TaskInstanceStatus.UNKNOWN_ERROR,
                f"job {job_id} ended with exit code 0 but its report never arrived",
            )
        return TaskInstanceStatus.ERROR, f"job {job_id} ended with {describe_exit_code(code)}"


def kill_groups(groups: Iterable[int], grace: float) -> None:
    """Terminate several process groups in parallel (SIGTERM, ``grace`` s, SIGKILL); blocks."""
    threads = [
        threading.Thread(target=terminate_process_group, args=(pgid, grace), daemon=True)
        for pgid in groups
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def kill_groups_in_background(groups: Sequence[int], grace: float) -> None:
    """:func:`kill_groups` without waiting: the caller's loop must not stall for ``grace``."""
    if groups:
        threading.Thread(
            target=kill_groups, args=(list(groups), grace), name="herdsman-kill", daemon=True
        ).start()


class LocalParameters(ClusterParameters):
    """Parameters of the plugins that run commands on this machine, beside the distributor's.

    ``kill_grace_seconds``: between SIGTERM and SIGKILL when a command is stopped.
    ``enforce_limits``: with no scheduler to hold a task to its ``memory`` and ``runtime``
    requests, the worker wrapper does it (:mod:`herdsman.worker.limits`): a command whose
    process tree's summed RSS goes above its memory request, or that runs longer than its
    runtime request, is killed and reported as a resource error (Z), and the task is retried
    with more, as on Slurm. A workflow tested here then fails here, not hours later on the
    cluster, when its requests are too small. False lets commands use whatever the machine
    has; tasks without those requests are never limited.
    """

    kill_grace_seconds: PositiveSeconds = DEFAULT_KILL_GRACE_SECONDS
    enforce_limits: Flag = True


class LocalPlugin:
    """Base of the plugins that run on this machine (see the module docstring)."""

    def remote_usage(self, distributor_id: str) -> Usage | None:
        """None: a local job's usage is what its worker reported, there is no other record."""
        return None

    def exit_code_status(self, exit_code: int) -> tuple[ErrorStatus, str]:
        """Every failure is the command's error (E): nothing on this machine kills a job for
        its resources except the wrapper itself, which reports those kills as such."""
        return default_exit_code_status(exit_code)


class LocalJobsPlugin(LocalPlugin, Generic[J]):
    """Base of the local plugins that run commands, kept as :class:`LocalJobs` of ``J``.

    ``kill_grace``: seconds between SIGTERM and SIGKILL when a job's command is killed.
    """

    def __init__(self, kill_grace: float) -> None:
        self._jobs: LocalJobs[J] = LocalJobs()
        self._kill_grace = kill_grace

    def submitted_or_running(self, distributor_ids: Iterable[str]) -> set[str]:
        return self._jobs.active(distributor_ids)

    def terminate(self, distributor_ids: Iterable[str]) -> None:
        kill_groups_in_background(self._jobs.cancel(distributor_ids), self._kill_grace)

    def remote_exit_info(self, distributor_id: str) -> tuple[ErrorStatus, str]:
        info = self._jobs.exit_info(distributor_id)
        if info is None:
            return TaskInstanceStatus.UNKNOWN_ERROR, f"no record of job {distributor_id}"
        return info

    def _command_started(self, job_id: str, pgid: int) -> None:
        """Record that a job's command runs as process group ``pgid``; a job cancelled while
        its command was starting has it killed now, without blocking the caller (the thread
        that must go on to reap it, or to read the pool's messages)."""
        if not self._jobs.started(job_id, pgid):
            kill_groups_in_background([pgid], self._kill_grace)

    def _close_jobs(self) -> int:
        """Drop the waiting jobs and kill the running commands, waiting for them; how many."""
        groups = self._jobs.close()
        kill_groups(groups, self._kill_grace)
        return len(groups)
