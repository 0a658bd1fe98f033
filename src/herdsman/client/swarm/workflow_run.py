"""``WorkflowRun``: the documented face of the swarm (names follow Jobmon's).

Typical use is one line, ``WorkflowRun.from_workflow(workflow).run(distributor.alive)``. The
step-by-step methods (:meth:`~WorkflowRun.set_initial_fringe`,
:meth:`~WorkflowRun.get_swarm_commands`, :meth:`~WorkflowRun.process_commands`,
:meth:`~WorkflowRun.synchronize_state`) drive the same state and services by hand, for
debugging and tests.

The facade owns the objects of one run -- the state, the gateway, the services -- and builds
them lazily: a run created elsewhere (a detached swarm given only its id) loads its tasks from
the server the first time they are needed.

Where resources of tasks killed for resources are computed from depends on how the run was
built: from the workflow's objects, every setting applies (scales that are functions or
iterators, ``compute_resources_callable``); from the database, the stored numbers only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, TypedDict, cast

import structlog
from typing_extensions import Unpack

from herdsman.client.swarm.gateway import HttpSwarmGateway, SwarmGateway
from herdsman.client.swarm.handover import DEFAULT_RESUME_TIMEOUT, take_over
from herdsman.client.swarm.loader import (
    DEFAULT_EDGE_CHUNK_SIZE,
    load_from_server,
    load_from_workflow,
)
from herdsman.client.swarm.orchestrator import (
    SwarmConfig,
    SwarmOrchestrator,
    SwarmResult,
    SwarmServices,
    build_services,
)
from herdsman.client.swarm.policies import (
    ResourcePolicy,
    StoredResourcePolicy,
    WorkflowResourcePolicy,
)
from herdsman.client.swarm.state import QueueBatch, SwarmState
from herdsman.client.swarm.values import RunProgress
from herdsman.core.errors import ConflictError, InvalidInputError
from herdsman.core.lifecycle import run_startup_path
from herdsman.core.requester import Requester
from herdsman.core.schemas.swarm import WorkflowRunOut
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus
from herdsman.core.timing import DEFAULT_REPORT_BY_BUFFER, DEFAULT_RUN_HEARTBEAT_INTERVAL

if TYPE_CHECKING:
    from herdsman.client.workflow import Workflow

__all__ = ["RunOptions", "WorkflowRun"]

logger = structlog.get_logger(__name__)

_R = WorkflowRunStatus


class _Settings(TypedDict, total=False):
    workflow_run_heartbeat_interval: float | None
    heartbeat_report_by_buffer: float | None
    fail_fast: bool
    wedged_workflow_sync_interval: float
    fail_after_n_executions: int


class RunOptions(_Settings, total=False):
    """The constructor's options that :meth:`WorkflowRun.from_workflow` and co. pass on."""

    requester: Requester | None
    gateway: SwarmGateway | None


class WorkflowRun:
    """One run of a bound workflow: loads its DAG, then schedules it to the end.

    ``workflow_run_heartbeat_interval`` (default 30 s) and ``heartbeat_report_by_buffer``
    (default 3.1) set the heartbeat: the server reaps the run if no beat arrives within
    interval x buffer seconds. ``wedged_workflow_sync_interval`` is the period of the full
    sync that catches changes the feed missed. ``fail_after_n_executions`` ends the run with
    E after that many tasks finished in it (a testing hook). ``status`` is the run's status
    if the caller knows it. Without ``gateway``, requests go through ``requester``, or the
    configured server's (:func:`herdsman.client.embedded.default_requester`).
    """

    def __init__(
        self,
        workflow_run_id: int,
        workflow_run_heartbeat_interval: float | None = None,
        heartbeat_report_by_buffer: float | None = None,
        fail_fast: bool = False,
        wedged_workflow_sync_interval: float = 600,
        fail_after_n_executions: int = 1_000_000_000,
        status: str | None = None,
        requester: Requester | None = None,
        *,
        gateway: SwarmGateway | None = None,
    ) -> None:
        self.workflow_run_id = workflow_run_id
        self.workflow_id: int | None = None
        self._config = SwarmConfig(
            heartbeat_interval=(
                DEFAULT_RUN_HEARTBEAT_INTERVAL
                if workflow_run_heartbeat_interval is None
                else workflow_run_heartbeat_interval
            ),
            heartbeat_report_by_buffer=(
                DEFAULT_REPORT_BY_BUFFER
                if heartbeat_report_by_buffer is None
                else heartbeat_report_by_buffer
            ),
            fail_fast=fail_fast,
            wedged_workflow_sync_interval=wedged_workflow_sync_interval,
            fail_after_n_executions=fail_after_n_executions,
        )
        self._status = None if status is None else WorkflowRunStatus(status)
        if gateway is None:
            if requester is None:
                from herdsman.client.embedded import default_requester  # starts a server

                requester = default_requester()
            gateway = HttpSwarmGateway(requester)
        self._gateway = gateway
        self._state = SwarmState()
        self._loaded = False
        self._fringe_set = False
        self._last_seq = 0  # unknown for a run built from its id: the feed is read from its start
        self._edge_chunk_size = DEFAULT_EDGE_CHUNK_SIZE
        self._services: SwarmServices | None = None
        self._pending: list[QueueBatch] = []
        self._result: SwarmResult | None = None
        # Filled with the tasks' stored settings when they are loaded from the server;
        # from_workflow replaces it with the workflow's own objects.
        self._stored_policy = StoredResourcePolicy()
        self._policy: ResourcePolicy = self._stored_policy

    # --- construction -----------------------------------------------------------------------------

    @classmethod
    def from_workflow(
        cls,
        workflow: Workflow,
        *,
        resume: bool = False,
        reset_running_jobs: bool = True,
        resume_timeout: float = DEFAULT_RESUME_TIMEOUT,
        **options: Unpack[RunOptions],
    ) -> WorkflowRun:
        """Create a run of a bound workflow; the DAG is loaded from its objects, no reads.

        Requests go through ``options['gateway']``, else ``options['requester']``, else the
        workflow's own requester.
        """
        if workflow.workflow_id is None:
            raise InvalidInputError("the workflow is not bound: call workflow.bind() first")
        gateway = _gateway(options, default=lambda: workflow.requester)
        run = gateway.create_run(
            workflow.workflow_id, resume=resume, reset_running_jobs=reset_running_jobs
        )
        run = take_over(gateway, run, timeout=resume_timeout)
        swarm = cls(run.workflow_run_id, status=run.status, gateway=gateway, **_settings(options))
        swarm._attach(run)
        # A resume changed statuses on the server (unfinished tasks restart); the objects
        # still hold those of the bind.
        load_from_workflow(swarm._state, workflow, gateway, statuses_from_server=resume)
        policy = WorkflowResourcePolicy(workflow)
        swarm._policy = policy
        swarm._state.hold_for_resources(policy.held_task_ids())
        swarm._loaded = True
        return swarm

    @classmethod
    def from_workflow_id(
        cls,
        workflow_id: int,
        edge_chunk_size: int = DEFAULT_EDGE_CHUNK_SIZE,
        *,
        resume: bool = False,
        reset_running_jobs: bool = True,
        resume_timeout: float = DEFAULT_RESUME_TIMEOUT,
        **options: Unpack[RunOptions],
    ) -> WorkflowRun:
        """Create a run of a workflow in the database and load its DAG from the server.

        Tasks come in pages, edges ``edge_chunk_size`` at a time. DONE tasks are loaded as
        DONE, so their downstream tasks' counters are right, and keep no edges.
        """
        gateway = _gateway(options, default=None)
        run = gateway.create_run(workflow_id, resume=resume, reset_running_jobs=reset_running_jobs)
        run = take_over(gateway, run, timeout=resume_timeout)
        swarm = cls(run.workflow_run_id, status=run.status, gateway=gateway, **_settings(options))
        swarm._attach(run)
        swarm._edge_chunk_size = edge_chunk_size
        swarm._ensure_loaded()
        return swarm

    def _attach(self, run: WorkflowRunOut) -> None:
        self.workflow_id = run.workflow_id
        self._last_seq = run.last_seq
        logger.info(
            "swarm_run_created",
            workflow_run_id=run.workflow_run_id,
            workflow_id=run.workflow_id,
            status=run.status,
        )

    # --- queries ----------------------------------------------------------------------------------

    @property
    def feed_position(self) -> int:
        """The change-feed position when the run was created: later changes are its own.

        A distributor for this run follows the feed from here instead of reading the workflow's
        whole history (which a resumed workflow may have a lot of).
        """
        return self._last_seq

    @property
    def status(self) -> WorkflowRunStatus | None:
        """The run's status as last learnt (a ``str`` enum: compares equal to its letter)."""
        return self._status

    @property
    def done_tasks(self) -> list[int]:
        return sorted(self._state.done_ids())

    @property
    def failed_tasks(self) -> list[int]:
        return sorted(self._state.failed_ids())

    def status_of(self, task_id: int) -> TaskStatus | None:
        """The task's status as last learnt; None for a task this run did not load."""
        return self._state.status_of(task_id)

    @property
    def active_tasks(self) -> list[int]:
        """Tasks QUEUED, INSTANTIATING, LAUNCHED or RUNNING."""
        return sorted(self._state.active_ids())

    @property
    def result(self) -> SwarmResult:
        """How :meth:`run` ended; RuntimeError before it has."""
        if self._result is None:
            raise RuntimeError(f"workflow run {self.workflow_run_id} has not been run")
        return self._result

    def adjust_resources(self, task_ids: Iterable[int]) -> int:
        """Scale the requests of these tasks (and place them on a queue) before they are
        queued, as for a task just killed for resources; how many tasks will be adjusted.

        A resume uses it for tasks whose last attempt was killed for resources.
        """
        self._ensure_loaded()
        return self._state.adjust_resources_of(task_ids)

    # --- step by step -----------------------------------------------------------------------------

    def set_initial_fringe(self) -> None:
        """Seal the loaded DAG and queue its ready tasks (idempotent)."""
        self._ensure_loaded()
        if self._fringe_set:
            return
        ready = self._state.set_initial_fringe()
        self._fringe_set = True
        logger.info("swarm_fringe_set", workflow_run_id=self.workflow_run_id, ready=ready)

    def get_swarm_commands(self) -> list[QueueBatch]:
        """Take the ready batches the limits allow; :meth:`process_commands` sends them.

        Without known limits (a run loaded from the server), one heartbeat fetches them.
        Tasks waiting for new resources get them first (ResourceAdjustmentError if a
        task's request cannot be computed).
        """
        self.set_initial_fringe()
        if not self._state.limits_known:
            beat = self._services_().heartbeat.tick(time.monotonic())
            self._state.set_limits(beat.max_concurrently_running, beat.array_limits)
        self._services_().adjuster.tick()
        batches = self._state.next_batches()
        self._pending.extend(batches)
        return batches

    def process_commands(self, timeout: float = -1) -> None:
        """Send pending batches (taking new ones if none) for up to ``timeout`` s; -1: all."""
        if not self._pending:
            self.get_swarm_commands()
        deadline = None if timeout < 0 else time.monotonic() + timeout
        scheduler = self._services_().scheduler
        while self._pending:
            if deadline is not None and time.monotonic() >= deadline:
                break
            result = scheduler.send([self._pending.pop(0)])
            self._state.apply(result.update)
            if result.interrupted:
                break

    def synchronize_state(self, full_sync: bool = False) -> None:
        """Apply what the feed holds now (no waiting), or with ``full_sync`` every status."""
        self.set_initial_fringe()
        services = self._services_()
        if full_sync:
            self._state.apply(services.synchronizer.tick(time.monotonic()))
            return
        news = services.follower.tick(0.0)
        self._state.apply(news.update)
        if news.run_status is not None:
            self._status = news.run_status

    # --- the whole run ----------------------------------------------------------------------------

    def run(
        self,
        distributor_alive_callable: Callable[[], bool],
        seconds_until_timeout: float = 36000,
        initialize: bool = True,
        *,
        on_progress: Callable[[RunProgress], None] | None = None,
        confirm_stop: Callable[[], bool] | None = None,
    ) -> str:
        """Schedule the run to its end; returns the final run status letter.

        ``initialize`` first moves the run to I, O and R on the server. Batches taken by
        :meth:`get_swarm_commands` and not sent are handed back and scheduled afresh.
        ``on_progress`` is called with where the tasks are after every pass of the loop; it
        must return at once. ``confirm_stop`` asks, after a Ctrl-C, whether to stop (default:
        a question at an interactive terminal). :attr:`result` then says how and why the run
        ended.
        """
        self.set_initial_fringe()
        if initialize:
            self._initialize()
        self._state.release(tid for batch in self._pending for tid in batch.task_ids)
        self._pending.clear()
        orchestrator = SwarmOrchestrator(
            state=self._state,
            gateway=self._gateway,
            run_id=self.workflow_run_id,
            services=self._services_(),
            config=replace(self._config, seconds_until_timeout=seconds_until_timeout),
            distributor_alive=distributor_alive_callable,
            on_progress=on_progress,
            confirm_stop=confirm_stop,
        )
        try:
            self._result = orchestrator.run()
        except KeyboardInterrupt:
            self._status = _R.STOPPED
            raise
        except BaseException:
            self._status = _R.ERROR
            raise
        self._status = self._result.status
        return self._result.status.value

    # --- internals --------------------------------------------------------------------------------

    def _initialize(self) -> None:
        current = self._status
        if current is None:
            current = WorkflowRunStatus(self._gateway.get_run(self.workflow_run_id).status)
        steps = run_startup_path(current)
        if steps is None:
            raise ConflictError(
                f"workflow run {self.workflow_run_id} is {current.name} and cannot start; "
                "create a new run to resume the workflow",
                details={"status": current.value},
            )
        for target in steps:
            reply = self._gateway.set_run_status(self.workflow_run_id, target.value)
            current = WorkflowRunStatus(reply.status)
        self._status = current
        logger.info("swarm_run_started", workflow_run_id=self.workflow_run_id, status=current.value)

    def _ensure_loaded(self) -> int:
        """Load the run's DAG once; the workflow's id, learnt on the way if need be."""
        workflow_id = self.workflow_id
        if workflow_id is None:
            run = self._gateway.get_run(self.workflow_run_id)
            workflow_id = self.workflow_id = run.workflow_id
            if self._status is None:
                self._status = WorkflowRunStatus(run.status)
        if self._loaded:
            return workflow_id
        load_from_server(
            self._state,
            self._gateway,
            workflow_id,
            edge_chunk_size=self._edge_chunk_size,
            policy=self._stored_policy,
        )
        self._loaded = True
        return workflow_id

    def _services_(self) -> SwarmServices:
        if self._services is None:
            workflow_id = self._ensure_loaded()
            self._services = build_services(
                self._gateway,
                self._state,
                workflow_id=workflow_id,
                run_id=self.workflow_run_id,
                last_seq=self._last_seq,
                config=self._config,
                policy=self._policy,
            )
        return self._services


def _settings(options: RunOptions) -> _Settings:
    """The options without the gateway and requester, which the classmethods resolve."""
    return cast(_Settings, {k: v for k, v in options.items() if k in _Settings.__annotations__})


def _gateway(options: RunOptions, default: Callable[[], Requester] | None) -> SwarmGateway:
    """The gateway the options name, else one over their requester, else over ``default``'s."""
    gateway = options.get("gateway")
    requester = options.get("requester")
    if gateway is not None:
        return gateway
    if requester is None:
        if default is not None:
            requester = default()
        else:
            from herdsman.client.embedded import default_requester  # starts a server

            requester = default_requester()
    return HttpSwarmGateway(requester)
