"""The distributor's loop: claim the run's queued instances and hand them to the cluster.

One distributor serves one workflow run. Each pass of :meth:`DistributorService.run` reads:

1. a stop was requested (SIGTERM/SIGINT)? -> exit
2. the run has ended and none of its instances lives any more? -> exit
3. the safety-net poll is due? -> :meth:`~DistributorService.check_run` (the run's status)
4. queued instances were seen, or the poll is due, and the run has not ended? ->
   :meth:`~DistributorService.launch_queued`: claim them in bulk (Q -> I), group them into
   batches of one array, queue and resources, submit each batch through the plugin, record
   the job ids (I -> O) or the refusal (I -> W)
5. kill requests were seen, the run has ended, or triage is due? ->
   :meth:`~DistributorService.triage`: the server moves overdue running instances to T; the
   plugin says which launched jobs vanished (O -> X -> E), what became of the silent ones
   (T -> Z, E or U), and kills the instances told to die (K -> F)
6. wait on the change feed (:meth:`~DistributorService.follow_changes`) for the next instance
   or run status change, at most until the next poll or triage is due

A run that ended (error, stop, resume) schedules nothing more, but its distributor stays while
the run still has live instances: a hot resume lets running jobs finish and count, and only
the distributor can tell the cluster to kill jobs or notice that they vanished. When it leaves
(the run's instances are all final, or it was told to stop), it triages once more after its
plugin stopped, so nothing it launched is left launched without a job.

The change feed makes a queued instance reach the cluster within milliseconds; the poll every
``poll_interval`` seconds only catches what the feed could have missed. Every step is a method
that does one unit of work, so tests drive them one at a time. Every call to the server goes
through a :class:`~herdsman.distributor.gateway.DistributorGateway`, the one module that knows
the distributor's routes.

Server outages: every call goes through the gateway's requester, which retries. If the server
is still unreachable the pass is abandoned and retried after a pause; launch and failure
reports that could not be delivered are kept and sent first next time, because the jobs they
describe are already on the cluster. After ``max_unreachable_seconds`` without the server, the
distributor gives up.
"""

from __future__ import annotations

import enum
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from herdsman.core.changes import ChangeKind
from herdsman.core.errors import HerdsmanError, ServerUnavailableError
from herdsman.core.lifecycle import DISTRIBUTOR_FOLLOWS, ENDED_RUN_STATUSES
from herdsman.core.schemas.distributor import (
    ClaimedInstance,
    ClaimedOut,
    ClaimIn,
    InstanceRef,
    LaunchedItem,
    SubmitFailedIn,
    TriagedItem,
)
from herdsman.core.schemas.swarm import RunStatusOut
from herdsman.core.statuses import TaskInstanceStatus, WorkflowRunStatus
from herdsman.core.timing import SILENCE_GRACE_HEARTBEATS
from herdsman.distributor.gateway import DistributorGateway
from herdsman.distributor.parameters import ClusterParameters, distributor_parameters
from herdsman.distributor.plugin import (
    ClusterPlugin,
    PendingReasonReader,
    SubmitBatch,
    SubmitError,
)

__all__ = [
    "DistributorConfig",
    "DistributorResult",
    "DistributorService",
    "ExitReason",
    "FeedUpdate",
    "LaunchReport",
    "TriageReport",
    "group_batches",
]

logger = structlog.get_logger(__name__)


class ExitReason(enum.StrEnum):
    RUN_FINISHED = "run_finished"
    STOP_REQUESTED = "stop_requested"
    SERVER_UNREACHABLE = "server_unreachable"


@dataclass(frozen=True)
class DistributorConfig:
    """Timing of the loop, in seconds, and the claim size.

    ``triage_interval``: how often the run's launched and silent instances are checked with
    the cluster. A lost job is noticed this late at most (a silent worker, after its
    report-by time); each check costs one server request and one plugin query for all jobs.

    ``silence_grace``: after the server could not be reached, how long triage does not take
    silent workers for lost. Their reports failed during the outage, and each reports again
    within a heartbeat interval once the server is back; without the grace, the first triage
    after a long outage would kill every running job. It is one and a half of the cluster's
    ``heartbeat_interval``.
    """

    poll_interval: float = ClusterParameters().poll_interval
    feed_timeout: float = 10.0
    triage_interval: float = ClusterParameters().triage_interval
    claim_limit: int = 10_000
    unreachable_pause: float = 2.0
    max_unreachable_seconds: float = 600.0
    silence_grace: float = SILENCE_GRACE_HEARTBEATS * ClusterParameters().heartbeat_interval

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> DistributorConfig:
        """The defaults, with ``poll_interval``, ``triage_interval`` and ``silence_grace``
        from the cluster's parameters (:class:`ClusterParameters`); the plugin's own
        parameters are the plugin's to check."""
        own = distributor_parameters(parameters)
        return cls(
            poll_interval=own.poll_interval,
            triage_interval=own.triage_interval,
            silence_grace=SILENCE_GRACE_HEARTBEATS * own.heartbeat_interval,
        )


@dataclass(frozen=True)
class FeedUpdate:
    """What one read of the change feed showed."""

    queued: bool
    run_status: WorkflowRunStatus | None
    kill: bool = False


@dataclass(frozen=True)
class TriageReport:
    """What one :meth:`DistributorService.triage` did.

    ``live``: the run's instances that were not final when the pass began; the distributor of
    an ended run leaves when a pass begins with none.
    """

    live: int = 0
    lost: int = 0
    killed: int = 0


@dataclass(frozen=True)
class LaunchReport:
    """What one :meth:`DistributorService.launch_queued` did: instance counts."""

    claimed: int = 0
    launched: int = 0
    failed: int = 0


@dataclass(frozen=True)
class DistributorResult:
    """Why the distributor ended, the run's last known status and the totals."""

    reason: ExitReason
    run_status: WorkflowRunStatus | None
    claimed: int
    launched: int
    failed: int


class _StopRequested(BaseException):
    """Abandons a long poll of the change feed when a stop signal arrives.

    A BaseException so that no ``except Exception`` in httpx or tenacity takes it for a
    network error and retries. It is only raised while the loop waits on the feed, where
    abandoning the request loses nothing: the feed is read from the same position next time.
    """


def group_batches(claimed: ClaimedOut) -> list[SubmitBatch]:
    """Group instances by (array, queue, resources), keeping their order within each group."""
    groups: dict[tuple[int, str, str], list[ClaimedInstance]] = {}
    for instance in claimed.instances:
        key = (
            instance.array_id,
            instance.queue,
            json.dumps(instance.resources, sort_keys=True, default=str),
        )
        groups.setdefault(key, []).append(instance)
    return [
        SubmitBatch(
            workflow_id=claimed.workflow_id,
            workflow_run_id=claimed.workflow_run_id,
            array_id=members[0].array_id,
            queue=members[0].queue,
            resources=members[0].resources,
            instances=tuple(members),
            array_name=members[0].array_name,
            array_limit=members[0].array_limit,
        )
        for members in groups.values()
    ]


@dataclass
class _Totals:
    claimed: int = 0
    launched: int = 0
    failed: int = 0
    batch_numbers: Counter[int] = field(default_factory=Counter)


class DistributorService:
    """Claims and submits the queued instances of workflow run ``workflow_run_id``.

    ``cluster_name``: claim only instances of tasks on that cluster (None: all of the run's).

    Owns neither the gateway nor the plugin's construction; :meth:`run` starts and stops the
    plugin. Not thread-safe, except :meth:`request_stop` and :meth:`handle_signal`.
    """

    def __init__(
        self,
        gateway: DistributorGateway,
        workflow_run_id: int,
        plugin: ClusterPlugin,
        *,
        config: DistributorConfig | None = None,
        after_seq: int = 0,
        cluster_name: str | None = None,
    ) -> None:
        self._gateway = gateway
        self.workflow_run_id = workflow_run_id
        self._plugin = plugin
        self._config = config or DistributorConfig()
        self.workflow_id: int | None = None
        self.after_seq = after_seq
        self.cluster_name = cluster_name
        self._totals = _Totals()
        self._unsent_launched: list[LaunchedItem] = []
        self._unsent_failed: list[SubmitFailedIn] = []
        self._claim_id: str | None = None  # the claim whose answer has not arrived yet
        self._stop = threading.Event()
        self._waiting_on_feed = False
        self._plugin_stopped = False
        self._pending_sent = False  # whether the server holds reasons of this run from us
        self._run_status: WorkflowRunStatus | None = None
        self._log = logger.bind(workflow_run_id=workflow_run_id)

    # --- the loop ---------------------------------------------------------------------------

    def run(self, on_ready: Callable[[], None] | None = None) -> DistributorResult:
        """Start the plugin, call ``on_ready``, distribute until the run ends; stop the plugin."""
        self._plugin.start()
        try:
            if on_ready is not None:
                on_ready()
            return self._loop()
        finally:
            self._plugin.stop()
            self._settle_after_stop()

    def _settle_after_stop(self) -> None:
        """Triage once more: what the stopped plugin no longer runs must not stay launched.

        A job the stopped plugin dropped before it started did not fail or get lost: the run
        ended first (a timeout, a stop, an error elsewhere). Its attempt says so, instead of
        the lost-job message that asks whether a node failed.
        """
        self._plugin_stopped = True
        try:
            self.triage()
        except HerdsmanError as error:
            self._log.warning("distributor_final_triage_failed", error=error.message)

    def _loop(self) -> DistributorResult:
        config = self._config
        status: WorkflowRunStatus | None = None
        # The run's live instances at the last triage that began after the run had ended: a
        # count from before may predate the run's last launches.
        live: int | None = None
        next_poll = next_triage = 0.0  # the start is a safety-net poll and a triage
        claim_now = True
        unreachable_since: float | None = None
        judge_silence_from = 0.0  # silence during an outage is the outage's (silence_grace)
        while True:
            ended = status in ENDED_RUN_STATUSES
            if self._stop.is_set():
                return self._exit(ExitReason.STOP_REQUESTED, status)
            if ended and live == 0:
                return self._exit(ExitReason.RUN_FINISHED, status)
            try:
                now = time.monotonic()
                if now >= next_poll:
                    status, claim_now = self.check_run(), True
                    next_poll = now + config.poll_interval
                    if status in ENDED_RUN_STATUSES and not ended:
                        next_triage = now  # the run just ended: see what still lives
                    ended = status in ENDED_RUN_STATUSES
                if claim_now and not ended:
                    self.launch_queued()
                if now >= next_triage:
                    judge = unreachable_since is None and now >= judge_silence_from
                    report = self.triage(judge_silence=judge)
                    live = report.live if ended else None
                    # Look again at once after acting: a pass that finds nothing live ends it.
                    acted = report.lost or report.killed
                    next_triage = now if acted else now + config.triage_interval
                    if ended and live == 0:
                        continue
                wait = min(config.feed_timeout, next_poll - now, next_triage - now)
                update = self.follow_changes(max(0.0, wait))
                claim_now = update.queued
                if update.kill or (update.run_status in ENDED_RUN_STATUSES and not ended):
                    next_triage = 0.0
                status = update.run_status or status
                if unreachable_since is not None:
                    judge_silence_from = time.monotonic() + config.silence_grace
                    self._log.info("distributor_server_back", silence_grace=config.silence_grace)
                unreachable_since = None
            except _StopRequested:
                continue
            except ServerUnavailableError as error:
                now = time.monotonic()
                unreachable_since = unreachable_since if unreachable_since is not None else now
                if now - unreachable_since >= config.max_unreachable_seconds:
                    return self._exit(ExitReason.SERVER_UNREACHABLE, status)
                self._log.warning("distributor_server_unreachable", error=error.message)
                self._stop.wait(config.unreachable_pause)

    def _exit(self, reason: ExitReason, status: WorkflowRunStatus | None) -> DistributorResult:
        self._run_status = status
        self._log.info(
            "distributor_exiting",
            reason=reason.value,
            run_status=status,
            claimed=self._totals.claimed,
            launched=self._totals.launched,
            failed=self._totals.failed,
        )
        return DistributorResult(
            reason, status, self._totals.claimed, self._totals.launched, self._totals.failed
        )

    def request_stop(self) -> None:
        """Ask the loop to exit after the current step. Thread-safe."""
        self._stop.set()

    def handle_signal(self, signum: int) -> None:
        """For a signal handler: stop, abandoning a long poll in progress at once."""
        self._log.info("distributor_stop_requested", signal=signum)
        self._stop.set()
        if self._waiting_on_feed:
            raise _StopRequested()

    # --- one step each ----------------------------------------------------------------------

    def check_run(self) -> WorkflowRunStatus:
        """The run's status on the server; learns the workflow id on first use."""
        return WorkflowRunStatus(self._read_run().status)

    def _read_run(self) -> RunStatusOut:
        run = self._gateway.get_run(self.workflow_run_id)
        self.workflow_id = run.workflow_id
        self._log.debug("distributor_run_checked", status=run.status)
        return run

    def follow_changes(self, timeout: float) -> FeedUpdate:
        """Wait up to ``timeout`` s for instance or run changes; what they show."""
        workflow_id = self.workflow_id
        if workflow_id is None:
            workflow_id = self._read_run().workflow_id
        self._waiting_on_feed = True
        try:
            # New work and kill requests, and every run change; not the instances' progress
            # through launch, run and finish, which the distributor does not act on.
            feed = self._gateway.changes(workflow_id, self.after_seq, timeout, DISTRIBUTOR_FOLLOWS)
        finally:
            self._waiting_on_feed = False
        self.after_seq = max(self.after_seq, feed.last_seq)
        queued = kill = False
        run_status: WorkflowRunStatus | None = None
        for change in feed.changes:
            kind = ChangeKind(change.kind)
            if kind is ChangeKind.INSTANCE and change.status == TaskInstanceStatus.QUEUED:
                queued = True
            elif kind is ChangeKind.INSTANCE and change.status == TaskInstanceStatus.KILL_SELF:
                kill = True
            elif kind is ChangeKind.RUN and change.id == self.workflow_run_id:
                run_status = WorkflowRunStatus(change.status)
        return FeedUpdate(queued=queued, run_status=run_status, kill=kill)

    def launch_queued(self) -> LaunchReport:
        """Claim every queued instance of the run, submit them, and record the outcome."""
        self.flush_reports()
        claimed = launched = failed = 0
        while True:
            # A claim keeps its name until its answer arrives: the next try, by the requester
            # or after an outage longer than its retries, gets what the lost answer held.
            self._claim_id = self._claim_id or uuid.uuid4().hex
            reply = self._gateway.claim(
                self.workflow_run_id,
                ClaimIn(
                    limit=self._config.claim_limit,
                    cluster_name=self.cluster_name,
                    claim_id=self._claim_id,
                ),
            )
            self._claim_id = None
            claimed += len(reply.instances)
            for batch in group_batches(reply):
                batch_launched, batch_failed = self._submit(batch)
                launched += batch_launched
                failed += batch_failed
            if len(reply.instances) < self._config.claim_limit:
                break
        self.flush_reports()
        self._totals.claimed += claimed
        self._totals.launched += launched
        self._totals.failed += failed
        if claimed:
            self._log.info(
                "distributor_launched", claimed=claimed, launched=launched, failed=failed
            )
        return LaunchReport(claimed=claimed, launched=launched, failed=failed)

    def triage(self, *, judge_silence: bool = True) -> TriageReport:
        """Check the run's launched, silent and doomed instances with the cluster; report.

        ``judge_silence``: let the server move overdue running instances to T first (off
        during the grace after an outage, see :class:`DistributorConfig`).
        """
        reply = self._gateway.triage(self.workflow_run_id, judge_silence=judge_silence)
        # One question to the cluster for all the jobs (one squeue call on Slurm, say).
        refs = (*reply.launched, *reply.triaging)
        jobs = [ref.distributor_id for ref in refs if ref.distributor_id is not None]
        known = self._plugin.submitted_or_running(jobs) if jobs else set()
        self._report_pending(reply.launched, known)
        items = self._vanished(reply.launched, known) + self._silent(reply.triaging, known)
        if items:
            self._gateway.triaged(items)
            self._log.info("distributor_triaged", instances=len(items))
        if reply.kill:
            jobs = [ref.distributor_id for ref in reply.kill if ref.distributor_id]
            if jobs:
                self._plugin.terminate(jobs)
            ids = [ref.task_instance_id for ref in reply.kill]
            self._gateway.killed(ids)
            self._log.info("distributor_killed", instances=len(ids), jobs=len(jobs))
        return TriageReport(live=reply.live, lost=len(items), killed=len(reply.kill))

    def _report_pending(self, launched: Sequence[InstanceRef], known: set[str]) -> None:
        """Tell the server why the cluster has yet to start the launched instances' jobs, as
        the plugin last saw it (no extra query). A hint for the GUI only: a failure to send is
        logged, never fatal, and an unchanged empty report is not sent again."""
        plugin = self._plugin
        if not isinstance(plugin, PendingReasonReader):
            return
        waiting = {
            job: ref.task_instance_id
            for ref in launched
            if (job := ref.distributor_id) is not None and job in known
        }
        said = plugin.pending_reasons(waiting) if waiting else {}
        reasons = {waiting[job]: reason for job, reason in said.items() if job in waiting}
        if not reasons and not self._pending_sent:
            return
        try:
            self._gateway.pending_reasons(self.workflow_run_id, plugin.scheduler_name, reasons)
        except HerdsmanError as error:
            self._log.warning("distributor_pending_reasons_unsent", error=error.message)
            return
        self._pending_sent = bool(reasons)
        self._log.debug("distributor_pending_reasons", instances=len(reasons))

    def _vanished(self, launched: Sequence[InstanceRef], known: set[str]) -> list[TriagedItem]:
        """Launched instances whose jobs the cluster (``known``) no longer has: never started."""
        items = []
        for ref in launched:
            job = ref.distributor_id
            if job is None or job in known:
                continue
            _, info = self._plugin.remote_exit_info(job)
            usage = self._plugin.remote_usage(job)
            if self._plugin_stopped:
                message = self._dropped_at_stop(job)
            else:
                message = (
                    f"job {job} was submitted but never reported running, and the cluster no "
                    f"longer has it ({info}); check the cluster's records of the job: was it "
                    "cancelled, did its node fail, or could the node not reach the herdsman "
                    "server?"
                )
            items.append(
                TriagedItem(
                    task_instance_id=ref.task_instance_id,
                    status=TaskInstanceStatus.ERROR,
                    message=message,
                    usage=usage,
                )
            )
        return items

    def _dropped_at_stop(self, job: str) -> str:
        status = self._run_status
        ended = f" ({status.name.lower()})" if status in ENDED_RUN_STATUSES else ""
        where = f" on cluster {self.cluster_name}" if self.cluster_name else ""
        return (
            f"job {job} had not started when the run ended{ended}: its distributor stopped "
            f"and the job never ran{where}; the task runs when the workflow is resumed"
        )

    def _silent(self, triaging: Sequence[InstanceRef], known: set[str]) -> list[TriagedItem]:
        """Instances that stopped heart-beating: what the cluster says became of their jobs."""
        running = {job for ref in triaging if (job := ref.distributor_id) in known and job}
        if running:
            # Alive on the cluster but silent: it cannot report its outcome, so it is killed
            # and its task retried rather than left to hold a slot.
            self._plugin.terminate(sorted(running))
        items = []
        for ref in triaging:
            job = ref.distributor_id
            usage = None
            if job is None:
                status, message = (
                    TaskInstanceStatus.UNKNOWN_ERROR,
                    "it stopped reporting and has no cluster job id",
                )
            elif job in running:
                status, message = (
                    TaskInstanceStatus.UNKNOWN_ERROR,
                    (
                        f"it stopped reporting while job {job} still ran; the job was killed so "
                        "the task can be retried (can the node reach the herdsman server?)"
                    ),
                )
            else:
                status, info = self._plugin.remote_exit_info(job)
                usage = self._plugin.remote_usage(job)
                message = f"it stopped reporting; the cluster says: {info}"
            items.append(
                TriagedItem(
                    task_instance_id=ref.task_instance_id,
                    status=status,
                    message=message,
                    usage=usage,
                )
            )
        return items

    def flush_reports(self) -> None:
        """Send launch and failure reports that are still unsent; keep them if that fails."""
        while self._unsent_failed:
            self._gateway.submit_failed(self._unsent_failed[0])
            self._unsent_failed.pop(0)
        if self._unsent_launched:
            self._gateway.launched(self._unsent_launched)
            self._unsent_launched = []

    def _submit(self, batch: SubmitBatch) -> tuple[int, int]:
        """Submit one batch; queue its launch or failure report. (launched, failed) counts."""
        ids = [instance.task_instance_id for instance in batch.instances]
        try:
            job_ids = self._plugin.submit(batch)
            if len(job_ids) != len(ids):
                raise SubmitError(
                    f"the plugin returned {len(job_ids)} job ids for {len(ids)} instances"
                )
        except SubmitError as error:
            message = error.message
        except Exception as error:  # a plugin bug must not strand the batch in I
            self._log.exception("distributor_plugin_failed", array_id=batch.array_id)
            message = f"the cluster plugin failed: {error!r}"
        else:
            self._queue_launched(batch, ids, job_ids)
            return len(ids), 0
        self._log.warning(
            "distributor_submit_failed", array_id=batch.array_id, count=len(ids), error=message
        )
        self._unsent_failed.append(SubmitFailedIn(task_instance_ids=ids, message=message))
        return 0, len(ids)

    def _queue_launched(self, batch: SubmitBatch, ids: Sequence[int], job_ids: list[str]) -> None:
        self._totals.batch_numbers[batch.array_id] += 1
        batch_number = self._totals.batch_numbers[batch.array_id]
        self._unsent_launched.extend(
            LaunchedItem(
                task_instance_id=task_instance_id,
                distributor_id=job_id,
                array_batch_num=batch_number,
                array_step_id=step,
            )
            for step, (task_instance_id, job_id) in enumerate(zip(ids, job_ids, strict=True))
        )
