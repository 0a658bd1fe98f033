"""The ``slurm`` cluster: each batch of instances becomes one Slurm job array.

What it asks of slurmctld, whatever the size of the run:

* **submit**: one ``sbatch`` per batch (a template's instances with identical resources), the
  script on stdin (:mod:`herdsman.plugins.slurm.script`). A batch larger than the cluster's
  ``MaxArraySize`` is split into as few arrays as that allows. The array's concurrency limit
  becomes the ``%N`` throttle; when a later batch of the same array arrives with another
  limit, the throttle of its arrays still in the queue is changed to match
  (``scontrol update ArrayTaskThrottle``).
* **status**: one ``squeue`` for all of the user's jobs, at most once per ``squeue_interval``;
  the distributor's questions in between are answered from that answer. A job submitted after
  it was taken counts as queued, so a fresh submission is never mistaken for a lost one.
* **exit information**: jobs that left the queue are looked up in ``sacct`` together, in one
  call per triage pass (chunks of :data:`SACCT_CHUNK`), and the answers kept for the
  distributor's per-job questions (:func:`~herdsman.plugins.slurm.parsing.classify_job`).
* **kill**: ``scancel`` of the array elements, many per call.

When slurmctld is slow or answers with errors, queries back off
(:mod:`herdsman.plugins.slurm.commands`) and jobs are assumed to be where they were last
seen: a struggling controller must not make herdsman declare every job lost.

Cluster parameters: :class:`SlurmParameters` (all optional).
"""

from __future__ import annotations

import getpass
import shlex
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog

from herdsman.core.errors import HerdsmanError, InvalidResourceError
from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.schemas.client import DEFAULT_QUEUE, QueueIn
from herdsman.core.schemas.worker import Usage
from herdsman.distributor.parameters import (
    ClusterParameters,
    OptionalText,
    PositiveSeconds,
    TextList,
)
from herdsman.distributor.plugin import PluginRequester, SubmitBatch, SubmitError
from herdsman.plugins.slurm.commands import SlurmCommandError, SlurmCommands, SlurmCommandsConfig
from herdsman.plugins.slurm.parsing import (
    SACCT_FIELDS,
    AccountingRecord,
    PartitionLimits,
    classify_job,
    is_live,
    parse_config_value,
    parse_partitions,
    parse_sacct,
    parse_sbatch,
    parse_squeue,
    parse_squeue_reasons,
)
from herdsman.plugins.slurm.queues import slurm_queues
from herdsman.plugins.slurm.script import HANDLED_KEYS, ArrayJob, build_script, sbatch_options
from herdsman.plugins.slurm.worker import slurm_exit_code_status

__all__ = ["SlurmParameters", "SlurmPlugin"]

logger = structlog.get_logger(__name__)

SACCT_CHUNK = 500
SCANCEL_CHUNK = 1000
# Job ids remembered as cancelled by herdsman, and accounting records kept for triage.
REMEMBERED_JOBS = 100_000
# Keys of a request that are the distributor's or the worker's, not options for sbatch.
_NOT_OPTIONS = frozenset({"queue"})


class SlurmParameters(ClusterParameters):
    """The ``slurm`` cluster's parameters, beside the distributor's.

    ``bin_dir``: directory of the Slurm commands (default: ``PATH``). ``partition``: the
    partition of the queue named ``default`` (default: Slurm's default partition).
    ``sbatch_args``: extra options for every job. ``log_dir``: where Slurm's own job logs go
    when a task names no ``stderr`` directory (default: none). ``worker_command``: what each
    job runs (default: this Python's ``-m herdsman.plugins.slurm.worker``), split as a shell
    would. ``squeue_interval``: seconds an ``squeue`` answer is reused. ``command_timeout``:
    seconds a Slurm command may take. ``heartbeat_interval`` is handed to every job's worker.
    """

    bin_dir: OptionalText = None
    partition: OptionalText = None
    sbatch_args: TextList = []
    log_dir: OptionalText = None
    worker_command: OptionalText = None
    squeue_interval: PositiveSeconds = 10.0
    command_timeout: PositiveSeconds = 30.0


class SlurmPlugin:
    """A :class:`~herdsman.distributor.plugin.ClusterPlugin` submitting Slurm job arrays."""

    def __init__(
        self,
        *,
        requester: PluginRequester,
        parameters: Mapping[str, Any],
        commands: SlurmCommands | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        checked = SlurmParameters.parse(parameters, plugin="slurm")
        self._server_url = requester.base_url
        self._commands = commands or SlurmCommands(
            SlurmCommandsConfig(bin_dir=checked.bin_dir, timeout=checked.command_timeout),
            clock=clock,
        )
        self._clock = clock
        self._partition = checked.partition
        self._log_dir = checked.log_dir
        self._sbatch_args = list(checked.sbatch_args)
        self._heartbeat_interval = checked.heartbeat_interval
        self._squeue_interval = checked.squeue_interval
        self._worker = (
            shlex.split(checked.worker_command)
            if checked.worker_command
            else [sys.executable, "-m", "herdsman.plugins.slurm.worker"]
        )
        self._user = getpass.getuser()
        self._max_array_size = 1001  # Slurm's default, until start() reads the cluster's
        self._partitions: dict[str, PartitionLimits] = {}
        self._queued: dict[str, str] = {}  # job id -> state, from the last squeue
        self._reasons: dict[str, str] = {}  # job id -> why it waits, from the last squeue
        self._queued_at: float | None = None
        self._submitted_at: dict[str, float] = {}  # array job id -> when sbatch returned
        self._throttles: dict[int, tuple[int | None, list[str]]] = {}  # array -> limit, jobs
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._records: OrderedDict[str, AccountingRecord] = OrderedDict()
        self._unaccounted: set[str] = set()  # left the queue, not yet looked up in sacct

    @property
    def counts(self) -> Mapping[str, int]:
        """Slurm commands run so far, by name."""
        return self._commands.counts

    @property
    def max_array_size(self) -> int:
        return self._max_array_size

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        """Read MaxArraySize and the partitions' limits; fails if slurmctld cannot be reached."""
        try:
            config = self._commands.run("scontrol", ["show", "config"])
            partitions = self._commands.run("scontrol", ["show", "partition", "-o"])
        except SlurmCommandError as error:
            raise HerdsmanError(f"cannot reach Slurm: {error.message}") from error
        size = parse_config_value(config, "MaxArraySize")
        if size is not None and size.isdigit():
            self._max_array_size = int(size)
        self._partitions = parse_partitions(partitions)
        logger.info(
            "slurm_plugin_started",
            max_array_size=self._max_array_size,
            partitions=sorted(self._partitions),
        )

    def stop(self) -> None:
        """Nothing to release: jobs belong to Slurm and outlive the distributor by design."""
        logger.info("slurm_plugin_stopped", calls=dict(self._commands.counts))

    def read_queues(self) -> list[QueueIn]:
        """The cluster's queues from Slurm's partitions (see :mod:`.queues`); needs no start."""
        try:
            output = self._commands.run("scontrol", ["show", "partition", "-o"])
        except SlurmCommandError as error:
            raise HerdsmanError(f"cannot read Slurm's partitions: {error.message}") from error
        return slurm_queues(parse_partitions(output), self._partition)

    # --- submit -----------------------------------------------------------------------------

    def submit(self, batch: SubmitBatch) -> list[str]:
        partition = self._partition if batch.queue in ("", DEFAULT_QUEUE) else batch.queue
        resources = self._coerced(batch.resources, partition)
        try:
            options = sbatch_options(resources, partition, self._log_dir) + self._extra(resources)
        except InvalidResourceError as error:
            raise SubmitError(error.message) from error
        throttle = batch.array_limit if batch.array_limit else None
        self._apply_throttle(batch.array_id, throttle)
        ids = [instance.task_instance_id for instance in batch.instances]
        name = f"herdsman-{batch.array_name or batch.array_id}"
        job_ids: list[str] = []
        for start in range(0, len(ids), self._max_array_size):
            chunk = ids[start : start + self._max_array_size]
            script = build_script(
                ArrayJob(
                    name=name,
                    task_instance_ids=chunk,
                    options=[*options, *self._sbatch_args],
                    worker=[
                        *self._worker,
                        "--server-url",
                        self._server_url,
                        "--heartbeat-interval",
                        f"{self._heartbeat_interval:g}",
                    ],
                    throttle=throttle,
                )
            )
            try:
                array_job = parse_sbatch(self._commands.run("sbatch", ["--parsable"], script))
            except (SlurmCommandError, ValueError) as error:
                if job_ids:  # the earlier chunks were submitted: cancel them, fail the batch
                    self.terminate(job_ids)
                raise SubmitError(f"Slurm refused the job array: {error}") from error
            self._submitted_at[array_job] = self._clock()
            self._throttles.setdefault(batch.array_id, (throttle, []))[1].append(array_job)
            job_ids += [f"{array_job}_{index}" for index in range(len(chunk))]
            logger.info(
                "slurm_array_submitted",
                array_id=batch.array_id,
                slurm_job_id=array_job,
                elements=len(chunk),
                throttle=throttle,
            )
        return job_ids

    def _coerced(self, resources: Mapping[str, Any], partition: str | None) -> dict[str, Any]:
        """``resources`` clamped to the partition's limits, so Slurm does not refuse the job."""
        limits = self._partitions.get(partition) if partition else self._default_partition()
        coerced = dict(resources)
        if limits is None:
            return coerced
        bounds = {
            "runtime": limits.max_time,
            "memory": limits.max_memory_mb / 1024 if limits.max_memory_mb else None,
            "cores": limits.max_cpus,
        }
        for key, bound in bounds.items():
            value = coerced.get(key)
            if bound is not None and isinstance(value, int | float) and value > bound:
                coerced[key] = bound
                logger.warning(
                    "slurm_request_coerced",
                    partition=limits.name,
                    resource=key,
                    requested=value,
                    limit=bound,
                )
        return coerced

    def _default_partition(self) -> PartitionLimits | None:
        return next((p for p in self._partitions.values() if p.is_default), None)

    def _extra(self, resources: Mapping[str, Any]) -> list[str]:
        """Other keys of the request, passed to sbatch as ``--key=value`` (``--key`` for true)."""
        options = []
        for key, value in sorted(resources.items()):
            if key in HANDLED_KEYS or key in _NOT_OPTIONS or value is None or value is False:
                continue
            flag = "--" + key.replace("_", "-")
            options.append(flag if value is True else f"{flag}={value}")
        return options

    def _apply_throttle(self, array_id: int, throttle: int | None) -> None:
        """Give the array's job arrays still queued the new throttle, if it changed."""
        known = self._throttles.get(array_id)
        if known is None or known[0] == throttle:
            return
        jobs = [job for job in known[1] if self._may_be_queued(job)]
        self._throttles[array_id] = (throttle, jobs)
        for job in jobs:
            try:
                self._commands.run(
                    "scontrol", ["update", f"JobId={job}", f"ArrayTaskThrottle={throttle or 0}"]
                )
                logger.info("slurm_throttle_changed", slurm_job_id=job, throttle=throttle)
            except SlurmCommandError as error:
                logger.warning(
                    "slurm_throttle_change_failed", slurm_job_id=job, error=error.message
                )

    def _may_be_queued(self, array_job: str) -> bool:
        if self._queued_at is None or self._submitted_at.get(array_job, 0.0) > self._queued_at:
            return True
        prefix = f"{array_job}_"
        return any(job.startswith(prefix) for job in self._queued)

    # --- status -----------------------------------------------------------------------------

    def submitted_or_running(self, distributor_ids: Iterable[str]) -> set[str]:
        wanted = set(distributor_ids)
        self._refresh_queue()
        alive = {
            job
            for job in wanted
            if is_live(self._queued.get(job, "")) or self._recently_submitted(job)
        }
        # Only jobs still asked about are looked up: one whose instance settled otherwise
        # (its worker reported after all) is not worth another sacct.
        gone = wanted - alive
        self._unaccounted = {job for job in gone if job not in self._records}
        self._fetch_accounting()
        return alive

    scheduler_name = "Slurm"

    def pending_reasons(self, distributor_ids: Iterable[str]) -> dict[str, str]:
        """Slurm's reasons (``squeue %r``) the jobs still wait, from the last squeue."""
        return {job: reason for job in distributor_ids if (reason := self._reasons.get(job))}

    def _recently_submitted(self, job: str) -> bool:
        """Submitted after the last squeue answer, or no answer yet: assume it is queued."""
        submitted = self._submitted_at.get(job.split("_", 1)[0])
        return self._queued_at is None or (submitted is not None and submitted > self._queued_at)

    def _refresh_queue(self) -> None:
        """One squeue for all of the user's jobs, unless the last is recent or Slurm is ailing."""
        now = self._clock()
        fresh = self._queued_at is not None and now - self._queued_at < self._squeue_interval
        if fresh or self._commands.backing_off():
            return
        try:
            output = self._commands.run("squeue", ["-h", "-r", "-u", self._user, "-o", "%i|%T|%r"])
        except SlurmCommandError as error:
            logger.warning("slurm_status_unknown", error=error.message)
            return
        self._queued = parse_squeue(output)
        self._reasons = parse_squeue_reasons(output)
        self._queued_at = now

    def _fetch_accounting(self) -> None:
        """Look the jobs that left the queue up in sacct, many per call."""
        if not self._unaccounted or self._commands.backing_off():
            return
        pending = sorted(self._unaccounted)
        for start in range(0, len(pending), SACCT_CHUNK):
            chunk = pending[start : start + SACCT_CHUNK]
            try:
                output = self._commands.run(
                    "sacct", ["-n", "-P", "-o", SACCT_FIELDS, "-j", ",".join(chunk)]
                )
            except SlurmCommandError as error:
                logger.warning("slurm_accounting_unavailable", error=error.message)
                return
            records = parse_sacct(output)
            for job in chunk:
                record = records.get(job)
                if record is not None and not is_live(record.state):
                    self._remember(self._records, job, record)
                    self._unaccounted.discard(job)

    # --- kill and triage --------------------------------------------------------------------

    def terminate(self, distributor_ids: Iterable[str]) -> None:
        jobs = sorted(set(distributor_ids))
        for job in jobs:
            self._remember(self._cancelled, job, None)
        for start in range(0, len(jobs), SCANCEL_CHUNK):
            chunk = jobs[start : start + SCANCEL_CHUNK]
            try:
                self._commands.run("scancel", chunk)
            except SlurmCommandError as error:
                # Typically some jobs had ended already; the others were still cancelled.
                logger.warning("slurm_cancel_failed", jobs=len(chunk), error=error.message)
        if jobs:
            logger.info("slurm_jobs_cancelled", jobs=len(jobs))

    def remote_exit_info(self, distributor_id: str) -> tuple[ErrorStatus, str]:
        record = self._records.get(distributor_id)
        if record is None:
            self._unaccounted.add(distributor_id)
            self._fetch_accounting()
            record = self._records.get(distributor_id)
        return classify_job(
            record, distributor_id, cancelled_by_herdsman=distributor_id in self._cancelled
        )

    def remote_usage(self, distributor_id: str) -> Usage | None:
        """Elapsed, CPU time and MaxRSS from the job's sacct record (read for its exit info)."""
        record = self._records.get(distributor_id)
        if record is None:
            return None
        return Usage(wall_time=record.elapsed, cpu_time=record.cpu_time, max_rss=record.max_rss)

    def exit_code_status(self, exit_code: int) -> tuple[ErrorStatus, str]:
        return slurm_exit_code_status(exit_code)

    @staticmethod
    def _remember(store: OrderedDict[str, Any], key: str, value: Any) -> None:
        store[key] = value
        while len(store) > REMEMBERED_JOBS:
            store.popitem(last=False)
