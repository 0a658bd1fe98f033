"""The change-feed follower: how the swarm hears about task and run status changes at once.

The server gives every status change of a workflow the next number of one sequence and serves
the changes after a given number with a long-poll that answers as soon as one exists. Reading
from the last number seen, in order, means no change is skipped and the newest report about a
task is applied last, so the state converges on the server's even when a reply and a feed page
overlap. That is what lets a finished task's downstream tasks be queued within milliseconds.

The follower asks only for what :data:`~herdsman.core.lifecycle.SWARM_FOLLOWS` names: tasks
that finished or must be queued (again), and run changes. A task it queued itself moving on
to launched or running changes nothing it counts, and waking for each such change would cost
a read per status change.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from herdsman.client.swarm.gateway import SwarmGateway
from herdsman.client.swarm.state import StateUpdate
from herdsman.core.changes import ChangeKind
from herdsman.core.lifecycle import SWARM_FOLLOWS
from herdsman.core.statuses import WorkflowRunStatus

__all__ = ["FeedNews", "FollowerService"]

logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class FeedNews:
    """One feed read: task statuses, this run's newest status if it changed, and whether a
    concurrency limit changed (the limits themselves come with the next heartbeat)."""

    update: StateUpdate
    run_status: WorkflowRunStatus | None
    num_changes: int
    limits_changed: bool = False


class FollowerService:
    """Reads the feed of one workflow from ``after`` on; keeps its position between ticks."""

    def __init__(self, gateway: SwarmGateway, *, workflow_id: int, run_id: int, after: int) -> None:
        self._gateway = gateway
        self._workflow_id = workflow_id
        self._run_id = run_id
        self._last_seq = after

    @property
    def last_seq(self) -> int:
        """The feed position: every change up to it has been returned by a tick."""
        return self._last_seq

    def tick(self, timeout: float) -> FeedNews:
        """One read; waits up to ``timeout`` seconds if there is nothing new (0: no wait).

        A page holds at most the server's page size; the next tick continues after it and
        returns at once, since the remaining changes already exist.
        """
        reply = self._gateway.changes(
            self._workflow_id, self._last_seq, timeout, kinds=SWARM_FOLLOWS
        )
        run_status: WorkflowRunStatus | None = None
        limits_changed = False
        for change in reply.changes:
            if change.kind == ChangeKind.RUN.value and change.id == self._run_id:
                run_status = WorkflowRunStatus(change.status)
            elif change.kind == ChangeKind.LIMIT.value:
                limits_changed = True
        self._last_seq = max(self._last_seq, reply.last_seq)
        if reply.changes:
            logger.debug(
                "swarm_feed_read",
                workflow_id=self._workflow_id,
                changes=len(reply.changes),
                last_seq=self._last_seq,
            )
        return FeedNews(
            StateUpdate.from_changes(reply), run_status, len(reply.changes), limits_changed
        )
