"""An in-memory server for the swarm's routes, so swarm tests need no server process.

:class:`InMemorySwarmGateway` implements :class:`~herdsman.client.swarm.gateway.SwarmGateway`
by the rules of :mod:`herdsman.core.lifecycle`, as the server applies them: queueing moves
queueable tasks to QUEUED and answers every task's status, every status change gets the next
sequence number of the change feed, run status changes follow the run state machine and move
the workflow with the latest run, and a failed attempt sends its task to a retry, to resource
adjustment or to the end. A stopped run's attempts are killed: queued ones at once, the others
when the distributor confirms (:meth:`confirm_kills`); a killed task goes back to wait for the
next run without failing. A workflow that has run before needs ``resume``, which tells live
runs to let go and restarts every unfinished task (no attempts spent).
``tests/integration/test_swarm_gateway_contract.py`` runs the same scenarios against this
fake and a real server and checks that they agree.

Test helpers play the parts of everyone else: the distributor and workers (:meth:`run_tasks`,
:meth:`finish`, :meth:`fail`, :meth:`confirm_kills`), someone else moving the run
(:meth:`set_server_run_status`) or changing limits (:meth:`set_limits`), a flaky network
(:meth:`fail_heartbeats`) and a lost notification (``set_task_status(..., record=False)``).
A ``cluster`` callable, run at the start of every change-feed request, lets a test drive a
whole run: it is the moment the rest of the world acts while the swarm waits for news.
``wait`` is called with the poll timeout when a long-poll finds nothing, so a test's fake
clock advances the way real time would.

Resources are modelled as the server keeps them: clusters with queues and their limits
(:meth:`add_queue`; cluster ``dummy`` with queue ``default`` exists from the start), resource
rows (:meth:`add_resources`; a task's row is created with :data:`DEFAULT_REQUEST` when the test
names none), adjusted rows created one per request with their queue checked against the
task's cluster, and queue requests that give tasks a new row. :meth:`requests_of` shows what a
task was queued with, attempt by attempt.

Not modelled: task instances. So a resume's own kills are not made (the runs told to let go
stay in their resume status, and the new run is linked at once), and a hot resume does not
keep the tasks it lets run.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from herdsman.client.swarm.gateway import TASK_AND_RUN_CHANGES
from herdsman.core.changes import ChangeFilter, ChangeKind
from herdsman.core.errors import (
    HerdsmanError,
    InvalidResourceError,
    NotFoundError,
    ServerUnavailableError,
    TransitionRefused,
    WorkflowAlreadyComplete,
    WorkflowAlreadyExists,
)
from herdsman.core.lifecycle import (
    ACTIVE_TASK_STATUSES,
    LIVE_WORKFLOW_RUN_STATUSES,
    QUEUEABLE_TASK_STATUSES,
    RESETTABLE_TASK_STATUSES,
    RESUMING_RUN_STATUSES,
    TASK_STATUS_AFTER_KILL,
    UNBOUND_RUN_STATUSES,
    resume_status,
    task_path_after_failed_attempt,
    workflow_status_for_run,
)
from herdsman.core.schemas.client import ClusterOut, QueueOut
from herdsman.core.schemas.swarm import (
    AdjustedResourcesItemIn,
    AdjustedResourcesOut,
    ChangeOut,
    ChangesOut,
    ConcurrencyOut,
    RunHeartbeatOut,
    RunStatusOut,
    SwarmEdgesOut,
    SwarmTaskOut,
    SwarmTasksOut,
    TaskResourcesOut,
    TaskResourcesRowOut,
    TaskStatusesOut,
    WorkflowRunOut,
)
from herdsman.core.statuses import (
    WORKFLOW_RUN,
    TaskInstanceStatus,
    TaskStatus,
    Transition,
    WorkflowRunStatus,
)

__all__ = ["DEFAULT_CLUSTER", "DEFAULT_REQUEST", "FEED_PAGE_SIZE", "InMemorySwarmGateway"]

FEED_PAGE_SIZE = 10_000
"""Most changes one feed answer carries, as on the server."""

DEFAULT_CLUSTER = "dummy"
DEFAULT_REQUEST: Mapping[str, Any] = {"queue": "default", "memory": 1.0, "runtime": 600}
"""What a task runs with when a test gives its resources id no row of its own."""

# The limits of the built-in local clusters' one queue (see the initial migration).
_LOCAL_LIMITS = {"cores": [1.0, 1024.0], "memory": [0.0, 4096.0], "runtime": [1.0, 31536000.0]}


@dataclass(slots=True)
class _Task:
    task_id: int
    array_id: int
    status: TaskStatus
    task_resources_id: int
    max_attempts: int
    cluster: str = DEFAULT_CLUSTER
    resource_scales: str = ""
    fallback_queues: str = ""
    num_attempts: int = 0
    num_upstreams: int = 0
    queued_with: list[int] = field(default_factory=list)  # resources id of each queueing


@dataclass(slots=True)
class _Run:
    run_id: int
    status: WorkflowRunStatus
    history: list[WorkflowRunStatus] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    report_by: float | None = None


@dataclass(slots=True)
class _Resources:
    kind: str
    cluster: str
    queue: str
    requested: dict[str, Any]


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
        self._kills_waiting: set[int] = set()  # tasks whose attempt was told to die
        self._heartbeat_errors: list[HerdsmanError] = []
        self._clusters: dict[str, list[QueueOut]] = {}
        self._resources: dict[int, _Resources] = {}
        self._resource_write_errors: list[HerdsmanError] = []
        self.num_resource_reads = 0
        self.num_resource_writes = 0
        self.add_queue("default", _LOCAL_LIMITS, is_default=True)

    # --- the server's data ---------------------------------------------------------------------

    def add_task(
        self,
        task_id: int,
        *,
        array_id: int = 1,
        status: TaskStatus = TaskStatus.REGISTERING,
        task_resources_id: int = 1,
        max_attempts: int = 3,
        resource_scales: str = "",
        fallback_queues: str = "",
    ) -> None:
        """Add a task; ``resource_scales`` and ``fallback_queues`` are the stored JSON columns.

        Its cluster is that of its resources row, created from :data:`DEFAULT_REQUEST` if the
        test has not added one.
        """
        if task_resources_id not in self._resources:
            self.add_resources(task_resources_id, DEFAULT_REQUEST)
        self._tasks[task_id] = _Task(
            task_id,
            array_id,
            status,
            task_resources_id,
            max_attempts,
            cluster=self._resources[task_resources_id].cluster,
            resource_scales=resource_scales,
            fallback_queues=fallback_queues,
        )
        self._sorted_ids = None
        if status in ACTIVE_TASK_STATUSES:
            self._active_ids.add(task_id)
            self._count_active(array_id, 1)

    def add_edge(self, upstream: int, downstream: int) -> None:
        self._edges.append((upstream, downstream))
        self._tasks[downstream].num_upstreams += 1

    def add_queue(
        self,
        name: str,
        limits: Mapping[str, Sequence[float]],
        *,
        cluster: str = DEFAULT_CLUSTER,
        is_default: bool = False,
    ) -> None:
        """Add a queue, and its cluster if new; ``limits`` maps a resource to (low, high)."""
        queues = self._clusters.setdefault(cluster, [])
        queue_id = sum(len(q) for q in self._clusters.values()) + 1
        queues.append(
            QueueOut(
                id=queue_id,
                name=name,
                is_default=is_default,
                limits={key: list(bounds) for key, bounds in limits.items()},
            )
        )

    def add_resources(
        self,
        task_resources_id: int,
        requested: Mapping[str, Any],
        *,
        cluster: str = DEFAULT_CLUSTER,
        kind: str = "validated",
    ) -> None:
        """A stored request as bind writes it: canonical units, its queue named."""
        queue = str(requested.get("queue", "default"))
        self._resources[task_resources_id] = _Resources(kind, cluster, queue, dict(requested))

    # --- what a test observes ------------------------------------------------------------------

    def task_status(self, task_id: int) -> TaskStatus:
        return self._tasks[task_id].status

    def tasks_in(self, *statuses: TaskStatus) -> list[int]:
        """Ids of the tasks in any of ``statuses``, in id order."""
        return [tid for tid in self._ids() if self._tasks[tid].status in statuses]

    def requests_of(self, task_id: int) -> list[dict[str, Any]]:
        """The request the task was queued with, each time it was queued."""
        return [dict(self._resources[rid].requested) for rid in self._tasks[task_id].queued_with]

    def resources_row(self, task_resources_id: int) -> tuple[str, dict[str, Any]]:
        """A row's kind and request."""
        row = self._resources[task_resources_id]
        return row.kind, dict(row.requested)

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
        """Workers report running (active tasks not yet running, and not told to die)."""
        for task_id in task_ids:
            task = self._tasks[task_id]
            if self._reports_count(task) and task.status is not TaskStatus.RUNNING:
                self._set(task, TaskStatus.RUNNING)

    def finish(self, task_ids: Iterable[int] | None = None) -> list[int]:
        """Active tasks (all of them by default) finish; returns the ids finished."""
        chosen = sorted(self._active_ids) if task_ids is None else list(task_ids)
        finished = []
        for task_id in chosen:
            task = self._tasks[task_id]
            if self._reports_count(task):
                self._set(task, TaskStatus.DONE)
                finished.append(task_id)
        return finished

    def fail(self, task_ids: Iterable[int], *, resource_error: bool = False) -> None:
        """An attempt of each active task fails (killed for resources with ``resource_error``);
        the task is retried, adjusted or ends, as :func:`task_path_after_failed_attempt` says."""
        error = TaskInstanceStatus.RESOURCE_ERROR if resource_error else TaskInstanceStatus.ERROR
        for task_id in task_ids:
            task = self._tasks[task_id]
            if not self._reports_count(task):
                continue
            path = task_path_after_failed_attempt(
                error, attempts=task.num_attempts, max_attempts=task.max_attempts
            )
            for status in path:
                self._set(task, status)

    def confirm_kills(self) -> list[int]:
        """The distributor has killed the jobs it was told to: their tasks go back to wait for
        the next run, no attempt failed. Returns the ids of those tasks."""
        killed = sorted(self._kills_waiting)
        self._kills_waiting.clear()
        for task_id in killed:
            self._set(self._tasks[task_id], TASK_STATUS_AFTER_KILL)
        return killed

    def set_task_status(self, task_id: int, status: TaskStatus, *, record: bool = True) -> None:
        """Force a status; ``record=False`` leaves it out of the feed (a lost notification)."""
        self._set(self._tasks[task_id], status, record=record)

    def set_server_run_status(self, run_id: int, status: WorkflowRunStatus) -> None:
        """Someone else moves the run (``herdsman workflow stop``, a resume, the reaper)."""
        run = self._run(run_id)
        run.status = status
        run.history.append(status)
        self._log.append((ChangeKind.RUN.value, run_id, status.value, None))

    def set_limits(self, max_concurrently_running: int, array_limits: Mapping[int, int]) -> None:
        """Change the limits the next heartbeat reports."""
        self.max_concurrently_running = max_concurrently_running
        self.array_limits = dict(array_limits)

    def fail_resource_writes(self, count: int) -> None:
        """The next ``count`` adjusted-resources writes fail as if the server were unreachable."""
        self._resource_write_errors.extend(
            ServerUnavailableError("injected resources write failure") for _ in range(count)
        )

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
        earlier = list(self._runs.values())
        for run in earlier:
            if run.status in UNBOUND_RUN_STATUSES:
                self.set_server_run_status(run.run_id, WorkflowRunStatus.ABORTED)
            elif run.status in LIVE_WORKFLOW_RUN_STATUSES - RESUMING_RUN_STATUSES:
                self.set_server_run_status(run.run_id, resume_status(cold=reset_running_jobs))
        run_id = len(self._runs) + 1
        self._runs[run_id] = _Run(run_id, WorkflowRunStatus.REGISTERED)
        self.set_server_run_status(run_id, WorkflowRunStatus.LINKING)
        if earlier:  # a first run finds every task new
            self._reset_unfinished_tasks()
        self.set_server_run_status(run_id, WorkflowRunStatus.BOUND)
        return WorkflowRunOut(
            workflow_run_id=run_id,
            workflow_id=workflow_id,
            status=WorkflowRunStatus.BOUND.value,
            last_seq=last_seq,
        )

    def link_run(self, run_id: int) -> WorkflowRunOut:
        # Runs here let go at once, so a run is linked when it is created.
        run = self._run(run_id)
        return WorkflowRunOut(
            workflow_run_id=run_id,
            workflow_id=self.workflow_id,
            status=run.status.value,
            last_seq=self.last_seq,
        )

    def force_release(self, run_id: int) -> RunStatusOut:
        if self._run(run_id).status in RESUMING_RUN_STATUSES:
            self.set_server_run_status(run_id, WorkflowRunStatus.TERMINATED)
        return self.get_run(run_id)

    def get_run(self, run_id: int) -> RunStatusOut:
        run = self._run(run_id)
        # The workflow follows its latest run only: an older run no longer speaks for it.
        latest = self._runs[max(self._runs)]
        return RunStatusOut(
            workflow_run_id=run_id,
            workflow_id=self.workflow_id,
            status=run.status.value,
            workflow_status=workflow_status_for_run(latest.status).value,
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
            if target is WorkflowRunStatus.STOPPED:
                # A stopped run's jobs are killed; a run that ends in error leaves them running.
                self._request_kills()
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

    def queue_tasks(
        self, run_id: int, task_ids: tuple[int, ...], task_resources_id: int = 0
    ) -> TaskStatusesOut:
        self._run(run_id)
        if task_resources_id and task_resources_id not in self._resources:
            raise NotFoundError(f"task resources {task_resources_id} do not exist")
        self.queue_requests.append(task_ids)
        statuses = []
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task is None:
                raise NotFoundError(f"task {task_id} is not in workflow {self.workflow_id}")
            if task.status in QUEUEABLE_TASK_STATUSES:
                task.num_attempts += 1
                task.task_resources_id = task_resources_id or task.task_resources_id
                task.queued_with.append(task.task_resources_id)
                self._set(task, TaskStatus.QUEUED)
            statuses.append(task.status.value)
        return TaskStatusesOut(task_ids=list(task_ids), statuses=statuses)

    def changes(
        self,
        workflow_id: int,
        after: int,
        timeout: float,
        kinds: ChangeFilter = TASK_AND_RUN_CHANGES,
    ) -> ChangesOut:
        self._check_workflow(workflow_id)
        if self.cluster is not None:
            self.cluster(self)
        # Like the server: pages with nothing wanted are passed over within the same call.
        while True:
            examined = self._log[after : after + FEED_PAGE_SIZE]
            found = [
                ChangeOut(seq=after + offset + 1, kind=kind, id=id_, status=status, task_id=task_id)
                for offset, (kind, id_, status, task_id) in enumerate(examined)
                if (kind, status) in kinds
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

    def get_cluster(self, name: str) -> ClusterOut:
        queues = self._clusters.get(name)
        if queues is None:
            raise NotFoundError(f"cluster {name!r} does not exist")
        cluster_id = list(self._clusters).index(name) + 1
        # A scheduler's cluster: its queues are exactly the ones added (a local plugin would
        # take unknown queue names as its default queue).
        return ClusterOut(
            id=cluster_id, name=name, plugin="scheduler", parameters={}, queues=list(queues)
        )

    def read_resources(
        self, task_resources_ids: Sequence[int], task_ids: Sequence[int] = ()
    ) -> TaskResourcesOut:
        self.num_resource_reads += 1
        current = []
        for task_id in task_ids:
            task = self._tasks.get(task_id)
            if task is None:
                raise NotFoundError(f"tasks [{task_id}] do not exist")
            current.append(task.task_resources_id)
        rows = []
        for resources_id in dict.fromkeys([*task_resources_ids, *current]):
            row = self._resources.get(resources_id)
            if row is None:
                raise NotFoundError(f"task resources [{resources_id}] do not exist")
            rows.append(
                TaskResourcesRowOut(
                    id=resources_id,
                    kind=row.kind,
                    cluster=row.cluster,
                    queue=row.queue,
                    requested=dict(row.requested),
                )
            )
        return TaskResourcesOut(resources=rows, task_resources_ids=current)

    def create_adjusted_resources(
        self, workflow_id: int, items: Sequence[AdjustedResourcesItemIn]
    ) -> AdjustedResourcesOut:
        self._check_workflow(workflow_id)
        if self._resource_write_errors:
            raise self._resource_write_errors.pop(0)
        new: list[_Resources] = []
        for item in items:
            task = self._tasks.get(item.task_id)
            if task is None:
                raise NotFoundError(f"tasks [{item.task_id}] are not tasks of workflow")
            queue = item.requested.get("queue")
            if queue not in {q.name for q in self._clusters[task.cluster]}:
                raise InvalidResourceError(
                    f"queue {queue!r} does not exist in cluster {task.cluster!r} of task "
                    f"{item.task_id}"
                )
            new.append(_Resources("adjusted", task.cluster, str(queue), dict(item.requested)))
        self.num_resource_writes += 1
        first = max(self._resources, default=0) + 1
        ids = list(range(first, first + len(new)))
        self._resources.update(zip(ids, new, strict=True))
        return AdjustedResourcesOut(task_resources_ids=ids)

    # --- internals -------------------------------------------------------------------------------

    def _reports_count(self, task: _Task) -> bool:
        """Whether a worker's report about the task's attempt is applied: it is active and not
        told to die (the server ignores reports of an attempt being killed)."""
        return task.status in ACTIVE_TASK_STATUSES and task.task_id not in self._kills_waiting

    def _request_kills(self) -> None:
        """Every active task's attempt is told to die. A queued one has no job yet, so its kill
        is settled at once; the others wait for the distributor (:meth:`confirm_kills`)."""
        for task_id in sorted(self._active_ids - self._kills_waiting):
            task = self._tasks[task_id]
            if task.status is TaskStatus.QUEUED:
                self._set(task, TASK_STATUS_AFTER_KILL)
            else:
                self._kills_waiting.add(task_id)

    def _reset_unfinished_tasks(self) -> None:
        """A resume starts every unfinished task afresh (no attempts spent), except those whose
        kill the distributor has still to confirm; only a change of status is news."""
        for task in self._tasks.values():
            if task.status in RESETTABLE_TASK_STATUSES and task.task_id not in self._kills_waiting:
                task.num_attempts = 0
                if task.status is not TaskStatus.REGISTERING:
                    self._set(task, TaskStatus.REGISTERING)

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
            self._log.append((ChangeKind.TASK.value, task.task_id, status.value, task.task_id))

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
            resource_scales=task.resource_scales,
            fallback_queues=task.fallback_queues,
        )
