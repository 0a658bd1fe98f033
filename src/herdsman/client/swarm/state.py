"""The swarm's run state: DAG counters, status buckets, ready queues and capacity, in memory.

This module is the functional core of the swarm. It does no I/O, reads no clock and logs
nothing: changes come in as :class:`StateUpdate` values and decisions go out as
:class:`QueueBatch` values, so every scheduling rule is unit-tested without a server.

Memory is budgeted for a million tasks: a task is a dense index into flat columns (``array``
and ``bytearray``) plus one entry in an id -> index dict, one in its status bucket and, while it
has unfinished downstream tasks, one short list of downstream indexes. No object per task.

Contracts the orchestrator relies on:

* DONE is final here. A late or replayed report about a DONE task is ignored, so a task's
  downstream counters are decremented exactly once, whatever order reports arrive in.
* A task is *ready* when all its upstream tasks are DONE and it is REGISTERING (new or retried
  by the server) or ADJUSTING_RESOURCES. Ready tasks wait in one FIFO queue per array.
* A ready task that *needs resources* is not queued until :meth:`SwarmState.set_resources`
  gives it a new resources id: a task that has just entered ADJUSTING_RESOURCES (killed for
  resources, so the same request would fail again), and a task held by
  :meth:`SwarmState.hold_for_resources` (its ``compute_resources_callable`` has not run yet).
  :meth:`SwarmState.tasks_needing_resources` lists them. A flag bit per task marks the need;
  only the tasks ready and waiting for their resources sit in a separate ordered set.
* A task handed out by :meth:`SwarmState.next_batches` is *requested*: it counts as active
  and is not handed out again until the server's answer (or any report about it) arrives
  through :meth:`SwarmState.apply`, or the request is given up with :meth:`SwarmState.release`.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from herdsman.client.swarm.values import QueueBatch, ResourceNeed, StateUpdate, TaskRow
from herdsman.core.lifecycle import ACTIVE_TASK_STATUSES, QUEUEABLE_TASK_STATUSES
from herdsman.core.statuses import TaskStatus

# The value objects going in and out are re-exported: callers of the state need them too.
__all__ = [
    "DEFAULT_MAX_BATCH_SIZE",
    "QueueBatch",
    "ResourceNeed",
    "StateUpdate",
    "SwarmState",
    "TaskRow",
]

DEFAULT_MAX_BATCH_SIZE = 10_000
"""Most task ids in one queue request: keeps request bodies and server transactions bounded."""

_STATUSES: tuple[TaskStatus, ...] = tuple(TaskStatus)
_CODE: dict[TaskStatus, int] = {status: code for code, status in enumerate(_STATUSES)}
_ACTIVE = frozenset(_CODE[status] for status in ACTIVE_TASK_STATUSES)
_READY = frozenset(_CODE[status] for status in QUEUEABLE_TASK_STATUSES)
_DONE = _CODE[TaskStatus.DONE]
_ADJUSTING = _CODE[TaskStatus.ADJUSTING_RESOURCES]

# Bits of the per-task flags byte.
_IN_READY = 1  # the task's index sits in its array's ready queue
_REQUESTED = 2  # handed out for queueing; the server has not answered yet
_HELD = 4  # waits for its first resources (a compute_resources_callable to evaluate)
_ADJUST = 8  # entered ADJUSTING_RESOURCES and has no new resources yet
_NEEDS_RESOURCES = _HELD | _ADJUST


class SwarmState:
    """Everything the swarm knows about its tasks. Load, seal, then apply and schedule.

    Life cycle: :meth:`add_tasks` and :meth:`add_edges` (tasks first: an edge's upstream
    status decides whether it is kept), then :meth:`set_initial_fringe`, which seals the DAG.
    From then on :meth:`apply` takes the server's reports and :meth:`next_batches` hands out
    ready tasks within the limits set by :meth:`set_limits`.
    """

    __slots__ = (
        "_active_by_array",
        "_active_total",
        "_array_limits",
        "_array_of",
        "_buckets",
        "_downstream",
        "_flags",
        "_ids",
        "_index",
        "_newly_done",
        "_ready",
        "_resource_waiters",
        "_resources_of",
        "_rotation",
        "_sealed",
        "_status",
        "_waiting",
        "_workflow_limit",
    )

    def __init__(self) -> None:
        self._index: dict[int, int] = {}  # task id -> dense index
        self._ids: list[int] = []  # index -> task id (shares the int objects with _index)
        self._array_of: array[int] = array("q")
        self._resources_of: array[int] = array("q")
        self._status = bytearray()  # index -> position of the status in TaskStatus
        self._flags = bytearray()
        self._waiting: array[int] = array("l")  # index -> upstream tasks not yet DONE
        # index -> downstream indexes; kept only for tasks not yet DONE, dropped when they are.
        self._downstream: dict[int, list[int]] = {}
        self._buckets: dict[TaskStatus, set[int]] = {status: set() for status in TaskStatus}
        self._ready: dict[int, deque[int]] = {}  # array id -> FIFO of ready indexes
        # Indexes ready but for their resources, in the order they became so (a dict as an
        # ordered set). Only these few tasks cost more than their flag bit.
        self._resource_waiters: dict[int, None] = {}
        self._active_total = 0  # active or requested tasks
        self._active_by_array: dict[int, int] = {}
        self._workflow_limit: int | None = None  # None: not known yet, so not limited
        self._array_limits: dict[int, int] = {}
        self._rotation = 0
        self._sealed = False
        self._newly_done = 0

    # --- loading ------------------------------------------------------------------------------

    def add_tasks(self, rows: Iterable[TaskRow]) -> None:
        """Add tasks; a task id already present is a ValueError."""
        self._check_open()
        for row in rows:
            if row.task_id in self._index:
                raise ValueError(f"task {row.task_id} is loaded twice")
            index = len(self._ids)
            self._index[row.task_id] = index
            self._ids.append(row.task_id)
            self._array_of.append(row.array_id)
            self._resources_of.append(row.task_resources_id)
            self._status.append(_CODE[row.status])
            self._flags.append(_ADJUST if row.status is TaskStatus.ADJUSTING_RESOURCES else 0)
            self._waiting.append(0)
            self._buckets[row.status].add(row.task_id)
            if _CODE[row.status] in _ACTIVE:
                self._count_active(row.array_id, 1)

    def add_edges(self, edges: Iterable[tuple[int, int]]) -> None:
        """Add (upstream, downstream) dependencies between loaded tasks.

        An edge from a DONE upstream is already satisfied and is not stored, so a resumed
        workflow's finished tasks cost no adjacency memory.
        """
        self._check_open()
        index = self._index
        for upstream, downstream in edges:
            up, down = index.get(upstream), index.get(downstream)
            if up is None or down is None:
                missing = upstream if up is None else downstream
                raise ValueError(f"edge {upstream}->{downstream} names task {missing}, not loaded")
            if self._status[up] == _DONE:
                continue
            self._waiting[down] += 1
            self._downstream.setdefault(up, []).append(down)

    def set_initial_fringe(self) -> int:
        """Seal the DAG and queue every ready task in load order; returns how many are ready."""
        self._sealed = True
        queued = 0
        for index in range(len(self._ids)):
            if self._enqueue(index):
                queued += 1
        return queued

    def _check_open(self) -> None:
        if self._sealed:
            raise RuntimeError("tasks and edges must be loaded before set_initial_fringe()")

    # --- limits -------------------------------------------------------------------------------

    def set_limits(self, workflow_limit: int, array_limits: Mapping[int, int]) -> None:
        """Replace the limits on active tasks: the workflow's, and each named array's.

        Lowering a limit below the number already active stops new hand-outs until enough
        tasks finish; nothing already handed out is taken back. Limit 0 pauses scheduling.
        """
        if workflow_limit < 0 or any(limit < 0 for limit in array_limits.values()):
            raise ValueError("concurrency limits must be >= 0")
        self._workflow_limit = workflow_limit
        self._array_limits = dict(array_limits)

    @property
    def limits_known(self) -> bool:
        return self._workflow_limit is not None

    @property
    def workflow_limit(self) -> int | None:
        return self._workflow_limit

    @property
    def array_limits(self) -> Mapping[int, int]:
        return MappingProxyType(self._array_limits)

    # --- mutations ----------------------------------------------------------------------------

    def apply(self, update: StateUpdate) -> frozenset[int]:
        """Apply reported statuses; returns the ids of tasks whose status changed.

        Unknown task ids are ignored. Any report about a requested task ends its request. A
        task that becomes DONE releases the downstream tasks whose last upstream it was; a
        task that goes back to REGISTERING or ADJUSTING_RESOURCES is queued again.
        """
        changed: list[int] = []
        for task_id, status in update.statuses.items():
            index = self._index.get(task_id)
            if index is not None and self._set_status(index, _CODE[status]):
                changed.append(task_id)
        return frozenset(changed)

    def next_batches(
        self, limit_total: int | None = None, *, max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    ) -> list[QueueBatch]:
        """Take ready tasks that fit the limits, grouped into batches; marks them requested.

        At most ``limit_total`` tasks (if given), the workflow limit minus active tasks, and
        for each array its limit minus its active tasks. Arrays take turns being served first,
        so one large array cannot starve the others when the workflow limit binds.
        """
        room = self._room()
        if limit_total is not None:
            room = min(room, limit_total)
        if room <= 0 or not self._ready:
            return []
        arrays = list(self._ready)
        start = self._rotation % len(arrays)
        self._rotation += 1
        batches: list[QueueBatch] = []
        for array_id in arrays[start:] + arrays[:start]:
            if room <= 0:
                break
            take = min(room, self._array_room(array_id))
            if take <= 0:
                continue
            taken = self._take(array_id, take)
            room -= len(taken)
            batches.extend(self._group(array_id, taken, max_batch_size))
        return batches

    def hold_for_resources(self, task_ids: Iterable[int]) -> None:
        """Hold tasks back until :meth:`set_resources` gives them resources (unknown ids: none).

        For tasks whose resources are computed when they become ready (a
        ``compute_resources_callable``). DONE tasks are never held: they will not run again.
        """
        for task_id in task_ids:
            index = self._index.get(task_id)
            if index is not None and self._status[index] != _DONE:
                self._flags[index] |= _HELD
                self._enqueue(index)

    def adjust_resources_of(self, task_ids: Iterable[int]) -> int:
        """Give tasks new resources before they are queued, as if a resource kill had just
        moved them to ADJUSTING_RESOURCES; how many were marked (unknown and DONE ids: none).

        For a resume: tasks whose last attempt was killed for resources would be killed again
        with the request they last ran with.
        """
        marked = 0
        for task_id in task_ids:
            index = self._index.get(task_id)
            if index is not None and self._status[index] != _DONE:
                self._flags[index] |= _ADJUST
                self._enqueue(index)
                marked += 1
        return marked

    def set_resources(self, task_id: int, task_resources_id: int) -> None:
        """Record the resources the task is queued with next; it may be queued from now on.

        Batches group tasks by resources id, so adjusted tasks form batches of their own.
        """
        index = self._index.get(task_id)
        if index is None:
            raise ValueError(f"task {task_id} is not loaded")
        self._resources_of[index] = task_resources_id
        self._flags[index] &= ~_NEEDS_RESOURCES & 0xFF
        self._resource_waiters.pop(index, None)
        self._enqueue(index)

    def release(self, task_ids: Iterable[int]) -> None:
        """Give up requests that never reached the server: the tasks are ready again, first."""
        for task_id in reversed(list(task_ids)):
            index = self._index.get(task_id)
            if index is None or not self._flags[index] & _REQUESTED:
                continue
            self._flags[index] &= ~_REQUESTED & 0xFF
            self._count_active(self._array_of[index], -1)
            if self._eligible(index) and not self._flags[index] & _IN_READY:
                self._flags[index] |= _IN_READY
                self._ready.setdefault(self._array_of[index], deque()).appendleft(index)

    # --- queries ------------------------------------------------------------------------------

    def tasks_needing_resources(self, limit: int | None = None) -> list[ResourceNeed]:
        """Ready tasks waiting for :meth:`set_resources`, oldest first.

        At most ``limit`` of them, and no more than the workflow limit leaves room for:
        computing resources for tasks that cannot be queued yet would only run users'
        callables and store requests early.
        """
        room = self._room() if limit is None else min(limit, self._room())
        needs: list[ResourceNeed] = []
        for index in list(self._resource_waiters):
            if len(needs) >= room:
                break
            if not self._waits_for_resources(index):
                del self._resource_waiters[index]  # moved on since; a new need re-adds it
                continue
            held = bool(self._flags[index] & _HELD)
            needs.append(ResourceNeed(self._ids[index], self._resources_of[index], held))
        return needs

    def resources_of(self, task_id: int) -> int | None:
        """The resources id the task is queued with next (0: unknown), or None if not loaded."""
        index = self._index.get(task_id)
        return None if index is None else self._resources_of[index]

    @property
    def num_tasks(self) -> int:
        return len(self._ids)

    @property
    def has_failures(self) -> bool:
        """True if any task is ERROR_FATAL."""
        return bool(self._buckets[TaskStatus.ERROR_FATAL])

    @property
    def num_newly_done(self) -> int:
        """Tasks that became DONE through :meth:`apply` (not those loaded as DONE)."""
        return self._newly_done

    @property
    def num_active(self) -> int:
        """Tasks active (QUEUED to RUNNING) or requested: what the limits are checked against."""
        return self._active_total

    def num_active_in(self, array_id: int) -> int:
        return self._active_by_array.get(array_id, 0)

    def status_of(self, task_id: int) -> TaskStatus | None:
        """The task's status, or None if it is not loaded."""
        index = self._index.get(task_id)
        return None if index is None else _STATUSES[self._status[index]]

    def counts(self) -> Mapping[TaskStatus, int]:
        """Number of tasks in each status (every status present, zeros included)."""
        return {status: len(bucket) for status, bucket in self._buckets.items()}

    def is_finished(self) -> bool:
        """True when every task is DONE or ERROR_FATAL."""
        done = len(self._buckets[TaskStatus.DONE])
        return done + len(self._buckets[TaskStatus.ERROR_FATAL]) == len(self._ids)

    def is_settled(self) -> bool:
        """True when nothing more can happen: finished, or the rest wait behind fatal tasks.

        Every unfinished task is then waiting on an upstream that will never be DONE: no task
        is active, requested, in error on its way to a retry, or ready (a ready task held back
        by a zero limit, or waiting for its new resources, counts as something that can still
        happen).
        """
        if self.is_finished():
            return True
        if self._active_total or self._buckets[TaskStatus.ERROR_RECOVERABLE]:
            return False
        return not self._has_ready()

    def done_ids(self) -> frozenset[int]:
        return frozenset(self._buckets[TaskStatus.DONE])

    def failed_ids(self) -> frozenset[int]:
        return frozenset(self._buckets[TaskStatus.ERROR_FATAL])

    def active_ids(self) -> frozenset[int]:
        """Tasks QUEUED, INSTANTIATING, LAUNCHED or RUNNING."""
        return frozenset().union(*(self._buckets[status] for status in ACTIVE_TASK_STATUSES))

    # --- internals ----------------------------------------------------------------------------

    def _set_status(self, index: int, code: int) -> bool:
        old = self._status[index]
        if old == _DONE:
            return False  # final: a late or replayed report must not undo it
        was_counted = old in _ACTIVE or self._flags[index] & _REQUESTED
        self._flags[index] &= ~_REQUESTED & 0xFF
        if code != old:
            task_id = self._ids[index]
            self._buckets[_STATUSES[old]].discard(task_id)
            self._buckets[_STATUSES[code]].add(task_id)
            self._status[index] = code
        is_counted = code in _ACTIVE
        if is_counted != bool(was_counted):
            self._count_active(self._array_of[index], 1 if is_counted else -1)
        if code != _ADJUSTING:
            self._flags[index] &= ~_ADJUST & 0xFF
        elif old != _ADJUSTING:
            self._flags[index] |= _ADJUST  # the request that was killed would fail again
        if code == _DONE:
            self._newly_done += 1
            for downstream in self._downstream.pop(index, ()):
                self._waiting[downstream] -= 1
                if self._waiting[downstream] == 0:
                    self._enqueue(downstream)
        else:
            self._enqueue(index)
        return code != old

    def _ready_but_for_resources(self, index: int) -> bool:
        return (
            self._status[index] in _READY
            and self._waiting[index] == 0
            and not self._flags[index] & _REQUESTED
        )

    def _eligible(self, index: int) -> bool:
        return self._ready_but_for_resources(index) and not self._flags[index] & _NEEDS_RESOURCES

    def _waits_for_resources(self, index: int) -> bool:
        return self._ready_but_for_resources(index) and bool(self._flags[index] & _NEEDS_RESOURCES)

    def _enqueue(self, index: int) -> bool:
        if not self._sealed:
            return False
        if self._waits_for_resources(index):
            self._resource_waiters[index] = None
            return False
        if self._flags[index] & _IN_READY or not self._eligible(index):
            return False
        self._flags[index] |= _IN_READY
        self._ready.setdefault(self._array_of[index], deque()).append(index)
        return True

    def _take(self, array_id: int, count: int) -> list[int]:
        queue = self._ready[array_id]
        taken: list[int] = []
        while queue and len(taken) < count:
            index = queue.popleft()
            self._flags[index] &= ~_IN_READY & 0xFF
            if not self._eligible(index):
                continue  # its status moved on since it was queued: drop the stale entry
            self._flags[index] |= _REQUESTED
            taken.append(index)
        if not queue:
            del self._ready[array_id]
        self._count_active(array_id, len(taken))
        return taken

    def _group(self, array_id: int, taken: list[int], max_size: int) -> Iterable[QueueBatch]:
        by_resources: dict[int, list[int]] = {}
        for index in taken:
            by_resources.setdefault(self._resources_of[index], []).append(self._ids[index])
        for resources_id, task_ids in by_resources.items():
            for start in range(0, len(task_ids), max_size):
                chunk = tuple(task_ids[start : start + max_size])
                yield QueueBatch(array_id, resources_id, chunk)

    def _room(self) -> int:
        if self._workflow_limit is None:
            return len(self._ids)
        return self._workflow_limit - self._active_total

    def _array_room(self, array_id: int) -> int:
        limit = self._array_limits.get(array_id)
        if limit is None:
            return len(self._ids)
        return limit - self._active_by_array.get(array_id, 0)

    def _count_active(self, array_id: int, delta: int) -> None:
        if delta:
            self._active_total += delta
            self._active_by_array[array_id] = self._active_by_array.get(array_id, 0) + delta

    def _has_ready(self) -> bool:
        """True if a task is ready, or ready but for its resources (which will come)."""
        if any(self._waits_for_resources(index) for index in self._resource_waiters):
            return True
        # Drops stale heads on the way, so repeated calls stay cheap.
        for array_id in list(self._ready):
            queue = self._ready[array_id]
            while queue and not self._eligible(queue[0]):
                self._flags[queue.popleft()] &= ~_IN_READY & 0xFF
            if queue:
                return True
            del self._ready[array_id]
        return False
