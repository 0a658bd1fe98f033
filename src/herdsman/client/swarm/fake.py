"""An in-memory server for the swarm's routes, so swarm tests need no server process.

:class:`InMemorySwarmGateway` implements :class:`~herdsman.client.swarm.gateway.SwarmGateway`
with the server's documented behaviour: queueing moves REGISTERING and ADJUSTING_RESOURCES
tasks to QUEUED and leaves others alone, every status change gets the next sequence number of
the change feed, run status changes follow the run state machine, and a failed attempt is
retried (REGISTERING, or ADJUSTING_RESOURCES after a resource kill) until the task's attempts
are spent (ERROR_FATAL). A workflow that has run before needs ``resume``, which moves live
runs to a resume status and restarts every unfinished task (REGISTERING, no attempts spent).

Test helpers play the parts of everyone else: the distributor and workers (:meth:`run_tasks`,
:meth:`finish`, :meth:`fail`), a user stopping the run (:meth:`set_server_run_status`) or
changing limits (:meth:`set_limits`), a flaky network (:meth:`fail_heartbeats`) and a lost
notification (``set_task_status(..., record=False)``). A ``cluster`` callable, run at the start
of every change-feed request, lets a test drive a whole run: it is the moment the rest of the
world acts while the swarm waits for news. ``wait`` is called with the poll timeout when a
long-poll finds nothing, so a test's fake clock advances the way real time would.

Not modelled: task instances and resource adjustment.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from herdsman.core.changes import ChangeFilter
from herdsman.core.errors import (
    HerdsmanError,
    NotFoundError,
    ServerUnavailableError,
    TransitionRefused,
    WorkflowAlreadyComplete,
    WorkflowAlreadyExists,
)
from herdsman.core.schemas.swarm import (
    ChangeOut,
    ChangesOut,
    ConcurrencyOut,
    RunHeartbeatOut,
    RunStatusOut,
    SwarmEdgesOut,
    SwarmTaskOut,
    SwarmTasksOut,
    TaskStatusesOut,
    WorkflowRunOut,
)
from herdsman.core.statuses import (
    ACTIVE_TASK_STATUSES,
    LIVE_WORKFLOW_RUN_STATUSES,
    WORKFLOW_RUN,
    WORKFLOW_STATUS_FOR_RUN,
    TaskStatus,
    Transition,
    WorkflowRunStatus,
)

__all__ = ["FEED_PAGE_SIZE", "InMemorySwarmGateway"]

FEED_PAGE_SIZE = 10_000
"""Most changes one feed answer carries, as on the server."""

_QUEUEABLE = frozenset({TaskStatus.REGISTERING, TaskStatus.ADJUSTING_RESOURCES})


@dataclass(slots=True)
class _Task:
    task_id: int
    array_id: int
    status: TaskStatus
    task_resources_id: int
    max_attempts: int
    num_attempts: int = 0
    num_upstreams: int = 0


@dataclass(slots=True)
class _Run:
    run_id: int
    status: WorkflowRunStatus
    history: list[WorkflowRunStatus] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    report_by: float | None = None


# One feed entry: (kind, id, status letter, task id). Its seq is its position + 1.
_Change = tuple[str, int, str, int | None]


class InMemorySwarmGateway:
    """A one-workflow server in memory. Single-threaded, like the swarm that calls it."""

    def __init__(
        self,
        workflow_id: int = 1,
        *,
        max_concurrently_running: int = 10_000,
        array_limits: Mapping[int, int] | None = None,
        cluster: Callable[[InMemorySwarmGateway], object] | None = None,
        wait: Callable[[float], None] | None = None,
    ) -> None:
        self.workflow_id = workflow_id
        self.max_concurrently_running = max_concurrently_running
        self.array_limits: dict[int, int] = dict(array_limits or {})
        self.cluster = cluster
        self.wait = wait
        self.queue_requests: list[tuple[int, ...]] = []
        self.num_heartbeats = 0
        self.peak_active = 0
        self.peak_active_by_array: dict[int, int] = {}
        self._tasks: dict[int, _Task] = {}
        self._sorted_ids: list[int] | None = None
        self._edges: list[tuple[int, int]] = []
        self._runs: dict[int, _Run] = {}
        self._log: list[_Change] = []
        self._active_by_array: dict[int, int] = {}
        self._active_ids: set[int] = set()
        self._heartbeat_errors: list[HerdsmanError] = []

    # --- the server's data ---------------------------------------------------------------------

    def add_task(
        self,
        task_id: int,
        *,
        array_id: int = 1,
        status: TaskStatus = TaskStatus.REGISTERING,
        task_resources_id: int = 1,
        max_attempts: int = 3,
    ) -> None:
        self._tasks[task_id] = _Task(task_id, array_id, status, task_resources_id, max_attempts)
        self._sorted_ids = None
        if status in ACTIVE_TASK_STATUSES:
            self._active_ids.add(task_id)
            self._count_active(array_id, 1)

    def add_edge(self, upstream: int, downstream: int) -> None:
        self._edges.append((upstream, downstream))
        self._tasks[downstream].num_upstreams += 1

    # --- what a test observes ------------------------------------------------------------------

    def task_status(self, task_id: int) -> TaskStatus:
        return self._tasks[task_id].status

    def tasks_in(self, *statuses: TaskStatus) -> list[int]:
        """Ids of the tasks in any of ``statuses``, in id order."""
        return [tid for tid in self._ids() if self._tasks[tid].status in statuses]

    def run_status(self, run_id: int) -> WorkflowRunStatus:
        return self._run(run_id).status

    def run_history(self, run_id: int) -> list[WorkflowRunStatus]:
        """Every status the run has had, in order."""
        return list(self._run(run_id).history)

    def run_messages(self, run_id: int) -> list[str]:
        return list(self._run(run_id).messages)

    def report_by(self, run_id: int) -> float | None:
        """The ``next_report_seconds`` of the run's last heartbeat."""
        return self._run(run_id).report_by

    @property
    def last_seq(self) -> int:
        return len(self._log)

    # --- everyone else: distributor, workers, users, the network -------------------------------

    def run_tasks(self, task_ids: Iterable[int]) -> None:
        """Workers report running (QUEUED, INSTANTIATING or LAUNCHED tasks only)."""
        for task_id in task_ids:
            task = self._tasks[task_id]
            if task.status in ACTIVE_TASK_STATUSES and task.status is not TaskStatus.RUNNING:
                self._set(task, TaskStatus.RUNNING)

    def finish(self, task_ids: Iterable[int] | None = None) -> list[int]:
        """Active tasks (all of them by default) finish; returns the ids finished."""
        chosen = sorted(self._active_ids) if task_ids is None else list(task_ids)
        finished = []
        for task_id in chosen:
            task = self._tasks[task_id]
            if task.status in ACTIVE_TASK_STATUSES:
                self._set(task, TaskStatus.DONE)
                finished.append(task_id)
        return finished

    def fail(self, task_ids: Iterable[int], *, resource_error: bool = False) -> None:
        """An attempt of each active task fails; the server retries it or gives up (F)."""
        for task_id in task_ids:
            task = self._tasks[task_id]
            if task.status not in ACTIVE_TASK_STATUSES:
                continue
            self._set(task, TaskStatus.ERROR_RECOVERABLE)
            if task.num_attempts >= task.max_attempts:
                self._set(task, TaskStatus.ERROR_FATAL)
            elif resource_error:
                self._set(task, TaskStatus.ADJUSTING_RESOURCES)
            else:
                self._set(task, TaskStatus.REGISTERING)

    def set_task_status(self, task_id: int, status: TaskStatus, *, record: bool = True) -> None:
        """Force a status; ``record=False`` leaves it out of the feed (a lost notification)."""
        self._set(self._tasks[task_id], status, record=record)

    def set_server_run_status(self, run_id: int, status: WorkflowRunStatus) -> None:
        """Someone else moves the run (``herdsman workflow stop``, a resume, the reaper)."""
        run = self._run(run_id)
        run.status = status
        run.history.append(status)
        self._log.append(("R", run_id, status.value, None))

    def set_limits(self, max_concurrently_running: int, array_limits: Mapping[int, int]) -> None:
        """Change the limits the next heartbeat reports."""
        self.max_concurrently_running = max_concurrently_running
        self.array_limits = dict(array_limits)

    def fail_heartbeats(self, count: int) -> None:
        """The next ``count`` heartbeats fail as if the server were unreachable."""
        self._heartbeat_errors.extend(
            ServerUnavailableError("injected heartbeat failure") for _ in range(count)
        )

    # --- SwarmGateway ----------------------------------------------------------------------------

    def create_run(
        self, workflow_id: int, *, resume: bool, reset_running_jobs: bool
    ) -> WorkflowRunOut:
        self._check_workflow(workflow_id)
        if all(t.status is TaskStatus.DONE for t in self._tasks.values()):
            raise WorkflowAlreadyComplete(f"every task of workflow {workflow_id} is done")
        if self._runs and not resume:
            raise WorkflowAlreadyExists(f"workflow {workflow_id} has run before; resume it")
        last_seq = self.last_seq  # as on the server: the position before this request's changes
        for run in self._runs.values():
            if run.status in LIVE_WORKFLOW_RUN_STATUSES:
                successor = (
                    WorkflowRunStatus.COLD_RESUME
                    if reset_running_jobs
                    else WorkflowRunStatus.HOT_RESUME
                )
                self.set_server_run_status(run.run_id, successor)
        if resume:
            for task in self._tasks.values():
                if task.status not in (TaskStatus.DONE, TaskStatus.REGISTERING):
                    task.num_attempts = 0
                    self._set(task, TaskStatus.REGISTERING)
        run_id = len(self._runs) + 1
        self._runs[run_id] = _Run(run_id, WorkflowRunStatus.REGISTERED)
        for status in (WorkflowRunStatus.LINKING, WorkflowRunStatus.BOUND):
            self.set_server_run_status(run_id, status)
        return WorkflowRunOut(
            workflow_run_id=run_id,
            workflow_id=workflow_id,
            status=WorkflowRunStatus.BOUND.value,
            last_seq=last_seq,
        )

    def get_run(self, run_id: int) -> RunStatusOut:
        run = self._run(run_id)
        return RunStatusOut(
            workflow_run_id=run_id,
            workflow_id=self.workflow_id,
            status=run.status.value,
            workflow_status=WORKFLOW_STATUS_FOR_RUN[run.status].value,
        )

    def set_run_status(self, run_id: int, status: str, message: str = "") -> RunStatusOut:
        run = self._run(run_id)
        target = WorkflowRunStatus(status)
        decision = WORKFLOW_RUN.decide(run.status, target)
        if decision is Transition.REFUSED:
            raise TransitionRefused(
                f"run {run_id} cannot move from {run.status.value} to {status}",
                details={"status": run.status.value},
            )
        if decision is Transition.VALID:
            self.set_server_run_status(run_id, target)
            run.messages.append(message)
        return self.get_run(run_id)

    def heartbeat(self, run_id: int, next_report_seconds: float) -> RunHeartbeatOut:
        if self._heartbeat_errors:
            raise self._heartbeat_errors.pop(0)
        run = self._run(run_id)
        self.num_heartbeats += 1
        run.report_by = next_report_seconds
        return RunHeartbeatOut(
            status=run.status.value,
            concurrency=ConcurrencyOut(
                max_concurrently_running=self.max_concurrently_running,
                array_limits=dict(self.array_limits),
            ),
        )

    def queue_tasks(self, run_id: int, task_ids: tuple[int, ...]) -> TaskStatusesOut:
        self._run(run_id)
        self.queue_requests.append(task_ids)
        statuses = []
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task is None:
                raise NotFoundError(f"task {task_id} is not in workflow {self.workflow_id}")
            if task.status in _QUEUEABLE:
                task.num_attempts += 1
                self._set(task, TaskStatus.QUEUED)
            statuses.append(task.status.value)
        return TaskStatusesOut(task_ids=list(task_ids), statuses=statuses)

    def changes(
        self, workflow_id: int, after: int, timeout: float, kinds: str = "TR"
    ) -> ChangesOut:
        self._check_workflow(workflow_id)
        if self.cluster is not None:
            self.cluster(self)
        wanted = ChangeFilter.parse(kinds)
        # Like the server: pages with nothing wanted are passed over within the same call.
        while True:
            examined = self._log[after : after + FEED_PAGE_SIZE]
            found = [
                ChangeOut(seq=after + offset + 1, kind=kind, id=id_, status=status, task_id=task_id)
                for offset, (kind, id_, status, task_id) in enumerate(examined)
                if (kind, status) in wanted
            ]
            if found or len(examined) < FEED_PAGE_SIZE:
                break
            after += len(examined)
        if not found and timeout > 0 and self.wait is not None:
            self.wait(timeout)
        return ChangesOut(last_seq=max(after, after + len(examined)), changes=found)

    def tasks_page(self, workflow_id: int, after_task_id: int, limit: int) -> SwarmTasksOut:
        self._check_workflow(workflow_id)
        ids = self._ids()
        start = bisect.bisect_right(ids, after_task_id)
        page = ids[start : start + limit]
        more = start + limit < len(ids)
        return SwarmTasksOut(
            tasks=[self._out(self._tasks[tid]) for tid in page],
            next_task_id=page[-1] if more and page else None,
        )

    def edges_page(self, workflow_id: int, offset: int, limit: int) -> SwarmEdgesOut:
        self._check_workflow(workflow_id)
        page = self._edges[offset : offset + limit]
        more = offset + limit < len(self._edges)
        return SwarmEdgesOut(edges=page, next_offset=offset + limit if more else None)

    # --- internals -------------------------------------------------------------------------------

    def _set(self, task: _Task, status: TaskStatus, *, record: bool = True) -> None:
        was_active = task.status in ACTIVE_TASK_STATUSES
        task.status = status
        is_active = status in ACTIVE_TASK_STATUSES
        if is_active != was_active:
            if is_active:
                self._active_ids.add(task.task_id)
            else:
                self._active_ids.discard(task.task_id)
            self._count_active(task.array_id, 1 if is_active else -1)
        if record:
            self._log.append(("T", task.task_id, status.value, task.task_id))

    def _count_active(self, array_id: int, delta: int) -> None:
        count = self._active_by_array.get(array_id, 0) + delta
        self._active_by_array[array_id] = count
        total = sum(self._active_by_array.values())
        self.peak_active = max(self.peak_active, total)
        self.peak_active_by_array[array_id] = max(self.peak_active_by_array.get(array_id, 0), count)

    def _ids(self) -> list[int]:
        if self._sorted_ids is None:
            self._sorted_ids = sorted(self._tasks)
        return self._sorted_ids

    def _run(self, run_id: int) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            raise NotFoundError(f"workflow run {run_id} does not exist")
        return run

    def _check_workflow(self, workflow_id: int) -> None:
        if workflow_id != self.workflow_id:
            raise NotFoundError(f"workflow {workflow_id} does not exist")

    @staticmethod
    def _out(task: _Task) -> SwarmTaskOut:
        return SwarmTaskOut(
            task_id=task.task_id,
            array_id=task.array_id,
            status=task.status.value,
            num_upstreams=task.num_upstreams,
            task_resources_id=task.task_resources_id,
            max_attempts=task.max_attempts,
            num_attempts=task.num_attempts,
            resource_scales="",
            fallback_queues="",
        )
