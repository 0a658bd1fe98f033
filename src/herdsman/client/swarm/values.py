"""The values going in and out of :class:`~herdsman.client.swarm.state.SwarmState`.

Frozen, so a reply turned into an update can be merged, logged and applied without anyone
changing it underneath. Letters from the wire become :class:`TaskStatus` members here, at the
edge, so no letter reaches the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from herdsman.core.changes import ChangeKind
from herdsman.core.lifecycle import WAITING_TASK_STATUSES
from herdsman.core.schemas.swarm import ChangesOut, SwarmTasksOut, TaskStatusesOut
from herdsman.core.statuses import TaskStatus

__all__ = ["QueueBatch", "ResourceNeed", "RunProgress", "StateUpdate", "TaskRow"]

_TASK_CHANGE = ChangeKind.TASK.value


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """New task statuses, task id -> status; a later report about a task replaces an earlier.

    Letters from the wire are converted to :class:`TaskStatus` by the ``from_*`` constructors,
    so no letter reaches the state. The mapping is read-only.
    """

    statuses: Mapping[int, TaskStatus] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def of(cls, statuses: Mapping[int, TaskStatus | str]) -> StateUpdate:
        """An update from a mapping whose values are statuses or their letters."""
        return cls(MappingProxyType({tid: TaskStatus(s) for tid, s in statuses.items()}))

    @classmethod
    def from_changes(cls, reply: ChangesOut) -> StateUpdate:
        """The task changes of a change-feed page; later changes win."""
        return cls(
            MappingProxyType(
                {c.id: TaskStatus(c.status) for c in reply.changes if c.kind == _TASK_CHANGE}
            )
        )

    @classmethod
    def from_task_statuses(cls, reply: TaskStatusesOut) -> StateUpdate:
        """The statuses a queue request answered with."""
        pairs = zip(reply.task_ids, reply.statuses, strict=True)
        return cls(MappingProxyType({tid: TaskStatus(s) for tid, s in pairs}))

    @classmethod
    def from_swarm_tasks(cls, reply: SwarmTasksOut) -> StateUpdate:
        """The statuses of one page of a full sync."""
        return cls(MappingProxyType({t.task_id: TaskStatus(t.status) for t in reply.tasks}))

    def merge(self, later: StateUpdate) -> StateUpdate:
        """One update holding both; where both name a task, ``later`` wins."""
        if not later.statuses:
            return self
        if not self.statuses:
            return later
        return StateUpdate(MappingProxyType({**self.statuses, **later.statuses}))

    def __len__(self) -> int:
        return len(self.statuses)

    def __bool__(self) -> bool:
        return bool(self.statuses)


@dataclass(frozen=True, slots=True)
class QueueBatch:
    """Ready tasks of one array with identical resources: one queue request, one job array."""

    array_id: int
    task_resources_id: int
    task_ids: tuple[int, ...]


class TaskRow(NamedTuple):
    """One task to load. ``task_resources_id`` 0 means "not known to the client"."""

    task_id: int
    array_id: int
    status: TaskStatus
    task_resources_id: int = 0


class ResourceNeed(NamedTuple):
    """A ready task that waits for new resources before it can be queued.

    ``initial``: its ``compute_resources_callable`` has not run yet; else it was killed for
    resources and ``task_resources_id`` (0 if unknown to the client) is what it last ran with.
    """

    task_id: int
    task_resources_id: int
    initial: bool


@dataclass(frozen=True, slots=True)
class RunProgress:
    """Where a run's tasks are, at one moment; what a progress display shows.

    ``queued``: handed to the cluster but not running yet (queued, instantiating, launched).
    ``waiting``: the rest of the unfinished tasks -- behind their upstreams, or between a
    failed attempt and the next. ``newly_done``: tasks this run finished (not those done
    before a resume), the figure a rate is computed from.
    """

    total: int
    done: int
    running: int
    queued: int
    failed: int
    newly_done: int

    @property
    def waiting(self) -> int:
        return self.total - self.done - self.running - self.queued - self.failed

    @classmethod
    def of(cls, counts: Mapping[TaskStatus, int], newly_done: int) -> RunProgress:
        return cls(
            total=sum(counts.values()),
            done=counts.get(TaskStatus.DONE, 0),
            running=counts.get(TaskStatus.RUNNING, 0),
            queued=sum(counts.get(status, 0) for status in WAITING_TASK_STATUSES),
            failed=counts.get(TaskStatus.ERROR_FATAL, 0),
            newly_done=newly_done,
        )
