"""Full sync: read every task's status from the server and correct what the swarm missed.

The change feed is the normal path; this is the safety net for a change that never reached
the feed or a bug on either side. It runs every ``wedged_workflow_sync_interval`` seconds
(a swarm that believes it is waiting on tasks that in fact moved on is "wedged") and on demand.
Only tasks whose status differs from the state's go into the update, so a sync of a million
tasks that finds nothing wrong costs pages of reads, not a million-entry update.
"""

from __future__ import annotations

import structlog

from herdsman.client.swarm.gateway import SwarmGateway
from herdsman.client.swarm.state import StateUpdate, SwarmState
from herdsman.core.statuses import TaskStatus

__all__ = ["DEFAULT_SYNC_PAGE_SIZE", "SynchronizerService"]

logger = structlog.get_logger(__name__)

DEFAULT_SYNC_PAGE_SIZE = 10_000


class SynchronizerService:
    """Pages through a workflow's tasks; due every ``interval`` seconds after :meth:`start`."""

    def __init__(
        self,
        gateway: SwarmGateway,
        state: SwarmState,
        *,
        workflow_id: int,
        interval: float,
        page_size: int = DEFAULT_SYNC_PAGE_SIZE,
    ) -> None:
        if interval <= 0 or page_size < 1:
            raise ValueError("sync interval must be > 0 and page size >= 1")
        self._gateway = gateway
        self._state = state
        self._workflow_id = workflow_id
        self.interval = interval
        self._page_size = page_size
        self._last: float | None = None

    def start(self, now: float) -> None:
        """Start the interval: the state was just loaded, so the first sync is not due yet."""
        self._last = now

    def due(self, now: float) -> bool:
        return self._last is not None and now - self._last >= self.interval

    def seconds_until_due(self, now: float) -> float:
        if self._last is None:
            return self.interval
        return max(0.0, self._last + self.interval - now)

    def tick(self, now: float) -> StateUpdate:
        """Read all tasks; returns the statuses that differ from the state's."""
        self._last = now
        differing: dict[int, TaskStatus] = {}
        after = 0
        pages = 0
        while True:
            page = self._gateway.tasks_page(self._workflow_id, after, self._page_size)
            pages += 1
            for task in page.tasks:
                status = TaskStatus(task.status)
                known = self._state.status_of(task.task_id)
                if known is not None and known is not status:
                    differing[task.task_id] = status
            if page.next_task_id is None:
                break
            after = page.next_task_id
        if differing:
            logger.info(
                "swarm_sync_corrected",
                workflow_id=self._workflow_id,
                tasks=len(differing),
                pages=pages,
            )
        else:
            logger.debug("swarm_sync_clean", workflow_id=self._workflow_id, pages=pages)
        return StateUpdate.of(differing)
