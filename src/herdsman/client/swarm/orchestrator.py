"""The swarm's loop: it only sequences the state and the services, and decides when to stop.

One pass of :meth:`SwarmOrchestrator.run`'s loop, top to bottom:

1. stop if the work is over: every task done, fail_fast after a failure, every remaining task
   blocked behind a fatal one, the ``fail_after_n_executions`` testing hook, or the timeout;
2. heartbeat if due, and stop if the server says the run is no longer running;
3. stop if the distributor died (nothing would launch the queued tasks);
4. give tasks killed for resources, or with a resources callable, their new resources (a
   request that cannot be computed ends the run), then queue every ready task the limits
   allow (none before the limits are known);
5. read the change feed, waiting at most until the next heartbeat or sync is due -- the
   long-poll answers the moment a change exists, so a finished task's downstream tasks are
   queued on the very next pass, not at a polling tick;
6. run the full sync if due.

Every way out logs one line with the reason, and the final run status is recorded on the
server in ``finally``, on errors too.
"""

from __future__ import annotations

import enum
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from herdsman.client.swarm.gateway import MAX_POLL_SECONDS, SwarmGateway
from herdsman.client.swarm.policies import ResourcePolicy
from herdsman.client.swarm.services.adjuster import ResourceAdjuster, ResourceAdjustmentError
from herdsman.client.swarm.services.follower import FollowerService
from herdsman.client.swarm.services.heartbeat import (
    MAX_CONSECUTIVE_FAILURES,
    Beat,
    ConsecutiveFailures,
    HeartbeatService,
)
from herdsman.client.swarm.services.scheduler import SchedulerService
from herdsman.client.swarm.services.synchronizer import SynchronizerService
from herdsman.client.swarm.state import StateUpdate, SwarmState
from herdsman.client.swarm.values import RunProgress
from herdsman.core.errors import ConfigurationError, HerdsmanError, ServerUnavailableError
from herdsman.core.lifecycle import ENDED_RUN_STATUSES, RESUMING_RUN_STATUSES
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus
from herdsman.core.timing import DEFAULT_REPORT_BY_BUFFER, DEFAULT_RUN_HEARTBEAT_INTERVAL

__all__ = [
    "RunEnding",
    "SwarmConfig",
    "SwarmOrchestrator",
    "SwarmResult",
    "SwarmServices",
    "build_services",
    "confirm_stop_on_terminal",
]

logger = structlog.get_logger(__name__)

_R = WorkflowRunStatus


@dataclass(frozen=True)
class SwarmConfig:
    """How one run is driven. Seconds throughout.

    ``max_poll_seconds`` bounds how long the loop waits on a quiet feed, and so how late it
    notices a dead distributor or a timeout; it does not delay task changes, which end the
    wait at once. It must stay below the requester's HTTP timeout (see ``MAX_POLL_SECONDS``).
    ``fail_after_n_executions`` ends the run with E after that many tasks finished in it: a
    testing hook for resumes.
    """

    heartbeat_interval: float = DEFAULT_RUN_HEARTBEAT_INTERVAL
    heartbeat_report_by_buffer: float = DEFAULT_REPORT_BY_BUFFER
    fail_fast: bool = False
    wedged_workflow_sync_interval: float = 600.0
    fail_after_n_executions: int = 1_000_000_000
    seconds_until_timeout: float = 36_000.0
    max_poll_seconds: float = 5.0
    server_retry_pause: float = 1.0
    max_heartbeat_failures: int = MAX_CONSECUTIVE_FAILURES

    def __post_init__(self) -> None:
        positive = {
            "heartbeat_interval": self.heartbeat_interval,
            "wedged_workflow_sync_interval": self.wedged_workflow_sync_interval,
            "seconds_until_timeout": self.seconds_until_timeout,
            "max_poll_seconds": self.max_poll_seconds,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ConfigurationError(f"{name} must be > 0, not {value!r}")
        if self.heartbeat_report_by_buffer < 1:
            raise ConfigurationError(
                f"heartbeat_report_by_buffer must be >= 1 (the deadline cannot precede the next "
                f"beat), not {self.heartbeat_report_by_buffer!r}"
            )
        if self.max_poll_seconds > MAX_POLL_SECONDS:
            raise ConfigurationError(f"max_poll_seconds must be <= {MAX_POLL_SECONDS}")
        if self.fail_after_n_executions < 1 or self.max_heartbeat_failures < 1:
            raise ConfigurationError("fail_after_n_executions and max_heartbeat_failures >= 1")
        if self.server_retry_pause < 0:
            raise ConfigurationError("server_retry_pause must be >= 0")


class RunEnding(enum.Enum):
    """Why a run's loop ended: what a summary of the run explains, one member per way out."""

    DONE = "done"  # every task done
    TASKS_FAILED = "tasks_failed"  # tasks spent their attempts; the rest wait behind them
    FAIL_FAST = "fail_fast"  # a task failed and fail_fast was set
    TIMEOUT = "timeout"  # seconds_until_timeout passed
    DISTRIBUTOR_DIED = "distributor_died"  # nothing could launch the queued tasks
    SERVER_LOST = "server_lost"  # heartbeats failed until the server counts the run dead
    RESOURCES = "resources"  # a task's next resource request could not be computed
    STOPPED = "stopped"  # the server set the run stopped (``herdsman workflow stop``)
    TAKEN_OVER = "taken_over"  # a resume took the workflow over
    ENDED_ELSEWHERE = "ended_elsewhere"  # the server ended the run (its reaper, say)
    FAIL_AFTER_N = "fail_after_n"  # the fail_after_n_executions testing hook
    INTERRUPTED = "interrupted"  # Ctrl-C, confirmed
    CRASHED = "crashed"  # the loop raised


@dataclass(frozen=True)
class SwarmResult:
    """How a run ended; read this, not the state, after the run.

    ``first_failed_task_id``: the task whose failure was seen first (the one fail_fast stopped
    on), if any. ``progress``: where the tasks were at the end.
    """

    status: WorkflowRunStatus
    done_task_ids: frozenset[int]
    failed_task_ids: frozenset[int]
    num_tasks: int
    elapsed_seconds: float
    reason: str
    ending: RunEnding = RunEnding.CRASHED
    first_failed_task_id: int | None = None
    progress: RunProgress | None = None


@dataclass(frozen=True)
class SwarmServices:
    """The services of one run, shared by the loop and the facade's manual calls."""

    heartbeat: HeartbeatService
    follower: FollowerService
    scheduler: SchedulerService
    synchronizer: SynchronizerService
    adjuster: ResourceAdjuster


def build_services(
    gateway: SwarmGateway,
    state: SwarmState,
    *,
    workflow_id: int,
    run_id: int,
    last_seq: int,
    config: SwarmConfig,
    policy: ResourcePolicy | None = None,
) -> SwarmServices:
    """The services for a run whose feed position, when its state was loaded, is ``last_seq``.

    ``policy`` supplies resource scales, fallback queues and resources callables; without
    one, tasks killed for resources get the default scales.
    """
    return SwarmServices(
        heartbeat=HeartbeatService(
            gateway,
            run_id=run_id,
            interval=config.heartbeat_interval,
            report_by_buffer=config.heartbeat_report_by_buffer,
        ),
        follower=FollowerService(gateway, workflow_id=workflow_id, run_id=run_id, after=last_seq),
        scheduler=SchedulerService(gateway, state, run_id=run_id),
        synchronizer=SynchronizerService(
            gateway, state, workflow_id=workflow_id, interval=config.wedged_workflow_sync_interval
        ),
        adjuster=ResourceAdjuster(gateway, state, workflow_id=workflow_id, policy=policy),
    )


@dataclass(frozen=True)
class _Outcome:
    status: WorkflowRunStatus
    reason: str
    record: bool  # set ``status`` on the server: False when the server reported it to us
    ending: RunEnding = RunEnding.CRASHED


class SwarmOrchestrator:
    """Runs one workflow run to its end. ``clock`` and ``sleep`` are injectable for tests.

    ``on_progress`` is called after every pass of the loop with where the tasks are; it must
    return at once (a display keeps the value and draws it in its own time).
    """

    def __init__(
        self,
        *,
        state: SwarmState,
        gateway: SwarmGateway,
        run_id: int,
        services: SwarmServices,
        config: SwarmConfig,
        distributor_alive: Callable[[], bool],
        confirm_stop: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        on_progress: Callable[[RunProgress], None] | None = None,
    ) -> None:
        self._state = state
        self._gateway = gateway
        self._run_id = run_id
        self._services = services
        self._config = config
        self._distributor_alive = distributor_alive
        self._clock = clock
        self._sleep = sleep
        self._beat_failures = ConsecutiveFailures(config.max_heartbeat_failures)
        self._confirm_stop = confirm_stop or confirm_stop_on_terminal
        self._on_progress = on_progress
        self._first_failed: int | None = None

    def run(self) -> SwarmResult:
        """Loop until the run ends; returns how. Exceptions propagate after the run is ended."""
        started = self._clock()
        outcome = _Outcome(_R.ERROR, "the swarm loop failed", record=True)
        try:
            outcome = self._loop_until_stopped(started)
        except KeyboardInterrupt:
            outcome = _Outcome(
                _R.STOPPED,
                "interrupted: the run stops and its jobs are killed",
                True,
                RunEnding.INTERRUPTED,
            )
            raise
        except Exception as error:
            outcome = _Outcome(_R.ERROR, f"the swarm loop failed: {error!r}", True)
            raise
        finally:
            self._conclude(outcome, started)
        return SwarmResult(
            status=outcome.status,
            done_task_ids=self._state.done_ids(),
            failed_task_ids=self._state.failed_ids(),
            num_tasks=self._state.num_tasks,
            elapsed_seconds=self._clock() - started,
            reason=outcome.reason,
            ending=outcome.ending,
            first_failed_task_id=self._first_failed_task(),
            progress=self._progress(),
        )

    def _progress(self) -> RunProgress:
        return RunProgress.of(self._state.counts(), self._state.num_newly_done)

    def _first_failed_task(self) -> int | None:
        if self._first_failed is not None:
            return self._first_failed
        failed = self._state.failed_ids()
        return min(failed) if failed else None

    def _loop_until_stopped(self, started: float) -> _Outcome:
        """The loop; a Ctrl-C the user does not confirm resumes it where it was.

        Every step of the loop can be repeated after an interruption: a queue request whose
        answer was lost is sent again (the server answers with the tasks' current statuses),
        and the feed is re-read from the last position applied.
        """
        while True:
            try:
                return self._loop(started)
            except KeyboardInterrupt:
                if self._confirm_stop():
                    raise
                logger.info("swarm_interrupt_declined", workflow_run_id=self._run_id)

    def _loop(self, started: float) -> _Outcome:
        deadline = started + self._config.seconds_until_timeout
        self._services.synchronizer.start(started)
        while True:
            now = self._clock()
            if self._on_progress is not None:
                self._on_progress(self._progress())
            if (outcome := self._check_end(now, deadline)) is not None:
                return outcome
            if (outcome := self._heartbeat_if_due(now)) is not None:
                return outcome
            if not self._distributor_alive():
                reason = "the distributor is not running, so queued tasks would never launch"
                return _Outcome(_R.ERROR, reason, True, RunEnding.DISTRIBUTOR_DIED)
            try:
                self._services.adjuster.tick()
            except ResourceAdjustmentError as error:
                return _Outcome(_R.ERROR, error.message, True, RunEnding.RESOURCES)
            self._schedule()
            if (outcome := self._follow(self._poll_timeout(deadline))) is not None:
                return outcome
            self._sync_if_due()

    # --- the steps, in loop order ---------------------------------------------------------------

    def _check_end(self, now: float, deadline: float) -> _Outcome | None:
        state = self._state
        counts = state.counts()
        failed = counts[TaskStatus.ERROR_FATAL]
        if state.is_finished() and not failed:
            return _Outcome(_R.DONE, f"all {state.num_tasks} tasks are done", True, RunEnding.DONE)
        if failed and self._config.fail_fast:
            reason = f"fail_fast: {failed} task(s) failed"
            return _Outcome(_R.ERROR, reason, True, RunEnding.FAIL_FAST)
        if state.is_settled():
            blocked = state.num_tasks - counts[TaskStatus.DONE] - failed
            reason = f"{failed} task(s) failed and {blocked} task(s) wait on failed upstreams"
            return _Outcome(_R.ERROR, reason, True, RunEnding.TASKS_FAILED)
        limit = self._config.fail_after_n_executions
        if state.num_newly_done >= limit:
            reason = f"fail_after_n_executions: {limit} task(s) finished in this run"
            return _Outcome(_R.ERROR, reason, True, RunEnding.FAIL_AFTER_N)
        if now >= deadline:
            reason = (
                f"not finished after seconds_until_timeout={self._config.seconds_until_timeout}"
                "; jobs already submitted keep running, and a resume picks up their results"
            )
            return _Outcome(_R.ERROR, reason, True, RunEnding.TIMEOUT)
        return None

    def _heartbeat_if_due(self, now: float) -> _Outcome | None:
        heartbeat = self._services.heartbeat
        if not heartbeat.due(now):
            return None
        try:
            beat = heartbeat.tick(now)
        except HerdsmanError as error:
            if self._beat_failures.record_failure():
                reason = (
                    f"{self._beat_failures.count} heartbeats in a row failed (last: {error}); "
                    "the server no longer considers this run alive"
                )
                return _Outcome(_R.ERROR, reason, True, RunEnding.SERVER_LOST)
            logger.warning(
                "swarm_heartbeat_failed",
                workflow_run_id=self._run_id,
                failures=self._beat_failures.count,
                error=str(error),
            )
            return None
        self._beat_failures.record_success()
        self._set_limits(beat)
        return self._server_says(beat.run_status)

    def _schedule(self) -> None:
        if not self._state.limits_known:
            # A state loaded from the server learns its limits from the first heartbeat that
            # answers; scheduling before then could exceed them.
            return
        result = self._services.scheduler.tick()
        self._apply(result.update)
        if result.interrupted:
            self._sleep(self._config.server_retry_pause)

    def _poll_timeout(self, deadline: float) -> float:
        now = self._clock()
        return max(
            0.0,
            min(
                self._config.max_poll_seconds,
                self._services.heartbeat.seconds_until_due(now),
                self._services.synchronizer.seconds_until_due(now),
                deadline - now,
            ),
        )

    def _follow(self, timeout: float) -> _Outcome | None:
        try:
            news = self._services.follower.tick(timeout)
        except ServerUnavailableError as error:
            logger.warning("swarm_feed_unavailable", workflow_run_id=self._run_id, error=str(error))
            self._sleep(self._config.server_retry_pause)
            return None
        self._apply(news.update)
        if news.limits_changed:
            self._services.heartbeat.beat_soon()
        return None if news.run_status is None else self._server_says(news.run_status)

    def _sync_if_due(self) -> None:
        now = self._clock()
        synchronizer = self._services.synchronizer
        if not synchronizer.due(now):
            return
        try:
            update = synchronizer.tick(now)
        except ServerUnavailableError as error:
            logger.warning("swarm_sync_unavailable", workflow_run_id=self._run_id, error=str(error))
            return
        self._apply(update)

    # --- helpers --------------------------------------------------------------------------------

    def _apply(self, update: StateUpdate) -> None:
        if not update:
            return
        changed = self._state.apply(update)
        for task_id in changed:
            if update.statuses[task_id] is TaskStatus.ERROR_FATAL:
                if self._first_failed is None:
                    self._first_failed = task_id
                logger.info("swarm_task_failed", workflow_run_id=self._run_id, task_id=task_id)
        logger.debug(
            "swarm_update_applied",
            workflow_run_id=self._run_id,
            reported=len(update),
            changed=len(changed),
        )

    def _set_limits(self, beat: Beat) -> None:
        state = self._state
        if (
            state.workflow_limit == beat.max_concurrently_running
            and state.array_limits == beat.array_limits
        ):
            return
        state.set_limits(beat.max_concurrently_running, beat.array_limits)
        logger.info(
            "swarm_limits_changed",
            workflow_run_id=self._run_id,
            max_concurrently_running=beat.max_concurrently_running,
            array_limits=dict(beat.array_limits),
        )

    def _server_says(self, status: WorkflowRunStatus) -> _Outcome | None:
        if status in RESUMING_RUN_STATUSES:
            # A new run is taking the workflow over. This one stops scheduling; the server
            # ends it (T) once its distributor has carried out the kills the resume asked for.
            reason = f"the server set the run to {status.name}: a new run resumes the workflow"
            return _Outcome(status, reason, False, RunEnding.TAKEN_OVER)
        if status in ENDED_RUN_STATUSES:  # done, failed, stopped, ended or aborted elsewhere
            ending = RunEnding.STOPPED if status is _R.STOPPED else RunEnding.ENDED_ELSEWHERE
            return _Outcome(status, f"the server set the run to {status.name}", False, ending)
        return None

    def _conclude(self, outcome: _Outcome, started: float) -> None:
        counts = self._state.counts()
        logger.info(
            "swarm_run_ended",
            workflow_run_id=self._run_id,
            status=outcome.status.value,
            reason=outcome.reason,
            done=counts[TaskStatus.DONE],
            failed=counts[TaskStatus.ERROR_FATAL],
            tasks=self._state.num_tasks,
            elapsed_seconds=round(self._clock() - started, 3),
        )
        if not outcome.record:
            return
        try:
            self._gateway.set_run_status(self._run_id, outcome.status.value, outcome.reason)
        except HerdsmanError as error:
            # Do not mask the loop's own exit or exception; the server's reaper ends the run.
            logger.warning(
                "swarm_final_status_not_recorded",
                workflow_run_id=self._run_id,
                status=outcome.status.value,
                error=str(error),
            )


def confirm_stop_on_terminal() -> bool:
    """After a Ctrl-C: ask at an interactive terminal whether to stop; elsewhere stop at once.

    A second Ctrl-C or the end of input at the prompt counts as yes: a user pressing it again
    wants out.
    """
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return True
    try:
        answer = input(
            "\nStop this workflow run? Its running jobs will be killed; resume it later with "
            "run(resume=True). [y/N] "
        )
    except (EOFError, KeyboardInterrupt):
        return True
    return answer.strip().lower() in ("y", "yes")
