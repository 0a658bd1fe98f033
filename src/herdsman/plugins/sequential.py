"""The ``sequential`` cluster: runs one task at a time, inside the distributor process.

Commands run one after the other in a background thread of the distributor, each through
:func:`~herdsman.worker.wrapper.run_task_instance` in-process: no Python interpreter is started
per task, so a task's command begins within milliseconds of its submission. Useful for
debugging (one command at a time, in order) and for machines where parallel runs would fight.

Cluster parameters (all optional): ``heartbeat_interval`` (seconds, default 90),
``kill_grace_seconds`` (default 10) and ``enforce_limits`` (default true).

``enforce_limits``: with no scheduler to hold a task to its ``memory`` and ``runtime``
requests, the worker wrapper does it (:mod:`herdsman.worker.limits`). A command whose process
tree's summed RSS goes above its memory request, or that runs longer than its runtime request,
is killed and reported as a resource error (Z), and the task is retried with more, as on
Slurm; a workflow debugged here then fails here, not hours later on the cluster, when its
requests are too small. Set it to false to let commands run unlimited; tasks without those
requests are never limited.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from typing import Any

import structlog

from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.schemas.worker import Usage
from herdsman.core.statuses import TaskInstanceStatus
from herdsman.core.timing import DEFAULT_INSTANCE_HEARTBEAT_INTERVAL, DEFAULT_KILL_GRACE_SECONDS
from herdsman.distributor.parameters import bool_parameter, float_parameter
from herdsman.distributor.plugin import PluginRequester, SubmitBatch
from herdsman.plugins._local import (
    LocalJob,
    LocalJobs,
    kill_groups,
    kill_groups_in_background,
)
from herdsman.worker.exit_status import default_exit_code_status
from herdsman.worker.wrapper import WRAPPER_ERROR_EXIT_CODE, run_task_instance

__all__ = ["SequentialPlugin"]

logger = structlog.get_logger(__name__)

JOB_ID_PREFIX = "seq-"


class SequentialPlugin:
    """A :class:`~herdsman.distributor.plugin.ClusterPlugin` with one in-process runner."""

    def __init__(self, *, requester: PluginRequester, parameters: dict[str, Any]) -> None:
        self._requester = requester
        self._heartbeat_interval = float_parameter(
            parameters, "heartbeat_interval", DEFAULT_INSTANCE_HEARTBEAT_INTERVAL
        )
        self._kill_grace = float_parameter(
            parameters, "kill_grace_seconds", DEFAULT_KILL_GRACE_SECONDS
        )
        self._enforce_limits = bool_parameter(parameters, "enforce_limits", True)
        self._jobs = LocalJobs()
        self._thread = threading.Thread(target=self._run, name="herdsman-sequential", daemon=True)

    def start(self) -> None:
        self._thread.start()
        logger.info("sequential_plugin_started")

    def stop(self) -> None:
        """Drop waiting jobs, kill the running command, and wait for its report."""
        groups = self._jobs.close()
        kill_groups(groups, self._kill_grace)
        if self._thread.is_alive():
            self._thread.join()
        logger.info("sequential_plugin_stopped", killed=len(groups))

    def submit(self, batch: SubmitBatch) -> list[str]:
        jobs = [
            LocalJob(f"{JOB_ID_PREFIX}{instance.task_instance_id}", instance.task_instance_id)
            for instance in batch.instances
        ]
        self._jobs.add(jobs)
        return [job.job_id for job in jobs]

    def submitted_or_running(self, distributor_ids: Iterable[str]) -> set[str]:
        return self._jobs.active(distributor_ids)

    def terminate(self, distributor_ids: Iterable[str]) -> None:
        kill_groups_in_background(self._jobs.cancel(distributor_ids), self._kill_grace)

    def remote_exit_info(self, distributor_id: str) -> tuple[ErrorStatus, str]:
        info = self._jobs.exit_info(distributor_id)
        return (
            info
            if info is not None
            else (TaskInstanceStatus.UNKNOWN_ERROR, f"no record of job {distributor_id}")
        )

    def remote_usage(self, distributor_id: str) -> Usage | None:
        """None: a local job's usage is what its worker reported, there is no other record."""
        return None

    def exit_code_status(self, exit_code: int) -> tuple[ErrorStatus, str]:
        return default_exit_code_status(exit_code)

    def _run(self) -> None:
        while (job := self._jobs.wait_and_take()) is not None:
            exit_code: int | None = WRAPPER_ERROR_EXIT_CODE
            try:
                exit_code = run_task_instance(
                    self._requester,
                    job.task_instance_id,
                    distributor_id=job.job_id,
                    heartbeat_interval=self._heartbeat_interval,
                    kill_grace_seconds=self._kill_grace,
                    exit_code_status=self.exit_code_status,
                    on_command_start=functools.partial(self._started, job),
                    enforce_limits=self._enforce_limits,
                )
            except Exception:  # a bug must not end the runner: later jobs would never run
                logger.exception("sequential_job_failed", task_instance_id=job.task_instance_id)
            finally:
                self._jobs.finished(job.job_id, exit_code)

    def _started(self, job: LocalJob, pgid: int) -> None:
        if not self._jobs.started(job.job_id, pgid):
            # Cancelled after it was taken: kill it without blocking this thread, which must
            # go on to reap the command.
            kill_groups_in_background([pgid], self._kill_grace)
