"""The adjuster: new resources for tasks before they are queued again.

A task killed for resources (ADJUSTING_RESOURCES) would be killed again with the same request,
and a task with a ``compute_resources_callable`` has no request until the callable has run.
The state holds such tasks back (:meth:`SwarmState.tasks_needing_resources`); each
:meth:`ResourceAdjuster.tick`, run right before scheduling, gives them their new requests:

1. read the requests they last ran with (by resources id, cached; by task id when the client
   never knew the id);
2. compute the new ones: scale and place on a queue (:mod:`herdsman.client.scaling`), or
   evaluate the callable, with the task's settings from a :class:`ResourcePolicy`;
3. store them in one request, one row per distinct request, so tasks given the same request
   share a row and are queued as one batch;
4. record the new ids in the state, which makes the tasks ready.

A request that cannot be computed (the user's callable failed or returned no dict, a fallback
queue does not exist, ...) raises :class:`ResourceAdjustmentError`, which ends the run: every
later attempt would fail the same way. An unreachable server only postpones the work; requests
already computed are kept, so callables and iterators are not run twice for one attempt.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from herdsman.client.scaling import adjust_request
from herdsman.client.swarm.gateway import SwarmGateway
from herdsman.client.swarm.policies import ResourcePolicy, StoredResourcePolicy
from herdsman.client.swarm.state import DEFAULT_MAX_BATCH_SIZE, ResourceNeed, SwarmState
from herdsman.core.errors import (
    HerdsmanError,
    InvalidResourceError,
    ServerError,
    ServerUnavailableError,
)
from herdsman.core.schemas.client import ClusterOut
from herdsman.core.schemas.swarm import AdjustedResourcesItemIn, TaskResourcesRowOut

__all__ = ["MAX_CACHED_ROWS", "ResourceAdjuster", "ResourceAdjustmentError"]

logger = structlog.get_logger(__name__)

MAX_CACHED_ROWS = 10_000
"""Resource rows remembered between ticks; beyond this the oldest are read again if needed."""


class ResourceAdjustmentError(HerdsmanError):
    """A task's new resources cannot be computed or stored; retrying would fail the same way."""


@dataclass(frozen=True, slots=True)
class _NewRequest:
    cluster: str
    requested: dict[str, Any]


class ResourceAdjuster:
    """Gives waiting tasks of one workflow their new resources, ``max_per_tick`` at a time."""

    def __init__(
        self,
        gateway: SwarmGateway,
        state: SwarmState,
        *,
        workflow_id: int,
        policy: ResourcePolicy | None = None,
        max_per_tick: int = DEFAULT_MAX_BATCH_SIZE,
    ) -> None:
        if max_per_tick < 1:
            raise ValueError("max_per_tick must be >= 1")
        self._gateway = gateway
        self._state = state
        self._workflow_id = workflow_id
        self._policy: ResourcePolicy = policy if policy is not None else StoredResourcePolicy()
        self._max_per_tick = max_per_tick
        self._rows: dict[int, TaskResourcesRowOut] = {}
        self._clusters: dict[str, ClusterOut] = {}
        self._computed: dict[int, _NewRequest] = {}  # task id -> computed, not yet stored

    def tick(self) -> int:
        """Adjust what the limits leave room for; returns how many tasks got new resources.

        Nothing happens before the limits are known: the state could not tell how many tasks
        can be queued, and might run callables for tasks that wait a long time.
        """
        if not self._state.limits_known:
            return 0
        needs = self._state.tasks_needing_resources(self._max_per_tick)
        if not needs:
            return 0
        try:
            self._compute(needs)
            return self._store([need.task_id for need in needs])
        except ServerUnavailableError as error:
            logger.warning(
                "swarm_adjustment_postponed",
                workflow_id=self._workflow_id,
                tasks=len(needs),
                error=str(error),
            )
            return 0

    # --- computing ------------------------------------------------------------------------------

    def _compute(self, needs: Sequence[ResourceNeed]) -> None:
        pending = [need for need in needs if need.task_id not in self._computed]
        previous = self._previous_rows([need for need in pending if not need.initial])
        for need in pending:
            self._computed[need.task_id] = self._new_request(need, previous)

    def _previous_rows(self, needs: Sequence[ResourceNeed]) -> dict[int, TaskResourcesRowOut]:
        """The rows the tasks last ran with, reading only the rows not cached."""
        unknown_ids = sorted(
            {n.task_resources_id for n in needs if n.task_resources_id} - self._rows.keys()
        )
        unknown_tasks = [need.task_id for need in needs if not need.task_resources_id]
        rows = {
            row_id: row
            for need in needs
            if (row_id := need.task_resources_id) and (row := self._rows.get(row_id)) is not None
        }
        current: dict[int, int] = {}
        if unknown_ids or unknown_tasks:
            reply = self._gateway.read_resources(unknown_ids, unknown_tasks)
            for row in reply.resources:
                rows[row.id] = row
                self._remember(row)
            current = dict(zip(unknown_tasks, reply.task_resources_ids, strict=True))
        found: dict[int, TaskResourcesRowOut] = {}
        for need in needs:
            row_id = need.task_resources_id or current[need.task_id]
            last = rows.get(row_id)
            if last is None:  # the server answers every id it was asked, or 404s
                raise ServerError(
                    f"the server did not answer resources row {row_id} of task {need.task_id}",
                    details={"task_id": need.task_id, "task_resources_id": row_id},
                )
            found[need.task_id] = last
        return found

    def _new_request(
        self, need: ResourceNeed, previous: Mapping[int, TaskResourcesRowOut]
    ) -> _NewRequest:
        """The request ``need`` calls for; ``previous`` holds the last row of every task that
        was killed for resources (:meth:`_previous_rows`)."""
        policy = self._policy
        row = previous.get(need.task_id)
        try:
            if need.initial:
                cluster, requested = policy.initial_request(need.task_id)
            else:
                row = previous[need.task_id]
                cluster = self._cluster_of(row)
                requested = adjust_request(
                    _previous_request(row),
                    policy.scales(need.task_id),
                    cluster,
                    policy.fallback_queues(need.task_id),
                )
        except ServerUnavailableError:
            raise
        except Exception as error:
            raise self._error(need.task_id, error) from error
        self._log_new_request(need, row, requested)
        return _NewRequest(cluster.name, requested)

    def _cluster_of(self, row: TaskResourcesRowOut) -> ClusterOut:
        if row.cluster is None:
            raise InvalidResourceError(
                f"its resources (row {row.id}) name no queue, so its cluster is unknown"
            )
        found = self._clusters.get(row.cluster)
        if found is None:
            found = self._gateway.get_cluster(row.cluster)
            self._clusters[row.cluster] = found
        return found

    def _error(self, task_id: int, error: Exception) -> ResourceAdjustmentError:
        name = self._policy.task_name(task_id)
        label = f"task {name!r} (id {task_id})" if name else f"task {task_id}"
        detail = error.message if isinstance(error, HerdsmanError) else repr(error)
        return ResourceAdjustmentError(
            f"cannot give {label} new resources: {detail}",
            details={"task_id": task_id},
        )

    def _log_new_request(
        self, need: ResourceNeed, row: TaskResourcesRowOut | None, requested: Mapping[str, Any]
    ) -> None:
        logger.debug(
            "swarm_resources_computed",
            workflow_id=self._workflow_id,
            task_id=need.task_id,
            reason="compute_resources_callable" if need.initial else "killed for resources",
            previous=None if row is None else row.requested,
            requested=dict(requested),
        )

    # --- storing --------------------------------------------------------------------------------

    def _store(self, task_ids: Sequence[int]) -> int:
        """Store the computed requests of ``task_ids``, one row per distinct request."""
        groups: dict[str, list[int]] = {}
        for task_id in task_ids:
            groups.setdefault(_group_key(self._computed[task_id]), []).append(task_id)
        members = list(groups.values())
        items = [
            AdjustedResourcesItemIn(task_id=ids[0], requested=self._computed[ids[0]].requested)
            for ids in members
        ]
        try:
            reply = self._gateway.create_adjusted_resources(self._workflow_id, items)
        except ServerUnavailableError:
            raise
        except HerdsmanError as error:
            raise ResourceAdjustmentError(
                f"the server refused new resources for tasks {list(task_ids)[:10]}: "
                f"{error.message}",
                details=error.details,
            ) from error
        for ids, resources_id in zip(members, reply.task_resources_ids, strict=True):
            self._record(ids, resources_id)
        return len(task_ids)

    def _record(self, task_ids: list[int], resources_id: int) -> None:
        new = self._computed[task_ids[0]]
        self._remember(
            TaskResourcesRowOut(
                id=resources_id,
                kind="adjusted",
                cluster=new.cluster,
                queue=str(new.requested.get("queue")),
                requested=new.requested,
            )
        )
        for task_id in task_ids:
            self._state.set_resources(task_id, resources_id)
            del self._computed[task_id]
        logger.info(
            "swarm_resources_adjusted",
            workflow_id=self._workflow_id,
            task_resources_id=resources_id,
            tasks=len(task_ids),
            requested=new.requested,
        )

    def _remember(self, row: TaskResourcesRowOut) -> None:
        if len(self._rows) >= MAX_CACHED_ROWS:
            del self._rows[next(iter(self._rows))]  # the oldest: dicts keep insertion order
        self._rows[row.id] = row


def _previous_request(row: TaskResourcesRowOut) -> dict[str, Any]:
    """The stored request, with its queue named as the row's queue when it names none."""
    previous: dict[str, Any] = dict(row.requested)
    if row.queue is not None:
        previous.setdefault("queue", row.queue)
    return previous


def _group_key(new: _NewRequest) -> str:
    return new.cluster + "\0" + json.dumps(new.requested, sort_keys=True, default=str)
