"""The ``sequential`` cluster: runs one task at a time, inside the distributor process.

Commands run one after the other in a background thread of the distributor, each through
:func:`~herdsman.worker.wrapper.run_task_instance` in-process: no Python interpreter is started
per task, so a task's command begins within milliseconds of its submission. Useful for
debugging (one command at a time, in order) and for machines where parallel runs would fight.

Cluster parameters: :class:`SequentialParameters` (all optional).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from typing import Any

import structlog

from herdsman.distributor.plugin import PluginRequester, SubmitBatch
from herdsman.plugins._local import LocalJob, LocalJobsPlugin, LocalParameters
from herdsman.worker.wrapper import WRAPPER_ERROR_EXIT_CODE, run_task_instance

__all__ = ["SequentialParameters", "SequentialPlugin"]

logger = structlog.get_logger(__name__)

JOB_ID_PREFIX = "seq-"


class SequentialParameters(LocalParameters):
    """The ``sequential`` cluster's parameters: the local plugins' and the distributor's.

    ``heartbeat_interval`` sets how often the in-process wrapper heartbeats its job.
    """


class SequentialPlugin(LocalJobsPlugin[LocalJob]):
    """A :class:`~herdsman.distributor.plugin.ClusterPlugin` with one in-process runner."""

    def __init__(self, *, requester: PluginRequester, parameters: Mapping[str, Any]) -> None:
        self._parameters = SequentialParameters.parse(parameters, plugin="sequential")
        super().__init__(self._parameters.kill_grace_seconds)
        self._requester = requester
        self._thread = threading.Thread(target=self._run, name="herdsman-sequential", daemon=True)

    def start(self) -> None:
        self._thread.start()
        logger.info("sequential_plugin_started")

    def stop(self) -> None:
        """Drop waiting jobs, kill the running command, and wait for its report."""
        killed = self._close_jobs()
        if self._thread.is_alive():
            self._thread.join()
        logger.info("sequential_plugin_stopped", killed=killed)

    def submit(self, batch: SubmitBatch) -> list[str]:
        jobs = [
            LocalJob(f"{JOB_ID_PREFIX}{instance.task_instance_id}", instance.task_instance_id)
            for instance in batch.instances
        ]
        self._jobs.add(jobs)
        return [job.job_id for job in jobs]

    def _run(self) -> None:
        while (job := self._jobs.wait_and_take()) is not None:
            exit_code: int | None = WRAPPER_ERROR_EXIT_CODE
            try:
                exit_code = run_task_instance(
                    self._requester,
                    job.task_instance_id,
                    distributor_id=job.job_id,
                    heartbeat_interval=self._parameters.heartbeat_interval,
                    kill_grace_seconds=self._kill_grace,
                    exit_code_status=self.exit_code_status,
                    on_command_start=functools.partial(self._command_started, job.job_id),
                    enforce_limits=self._parameters.enforce_limits,
                )
            except Exception:  # a bug must not end the runner: later jobs would never run
                logger.exception("sequential_job_failed", task_instance_id=job.task_instance_id)
            finally:
                self._jobs.finished(job.job_id, exit_code)
