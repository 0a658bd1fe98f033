"""The run's heartbeat: proof of life for the server, and the server's news for the swarm.

The server reaps a run whose heartbeat is overdue, so each beat promises the next one within
``interval * report_by_buffer`` seconds (the default buffer, 3.1, tolerates two missed beats
and a slow third). The reply carries what the swarm cannot learn from the change feed alone:
the run status as the server sees it (a user may have stopped the run, or a new run may be
taking the workflow over) and the concurrency limits in force, which users may change while
the run goes on.

:class:`HeartbeatService` does one beat per :meth:`~HeartbeatService.tick` and raises when it
fails. Only the loop that calls it owns the :class:`ConsecutiveFailures` counter: the service
cannot know whether the loop gave up, paused or retried, so a counter inside it would drift
from what actually happened between beats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import structlog

from herdsman.client.swarm.gateway import SwarmGateway
from herdsman.core.statuses import WorkflowRunStatus
from herdsman.core.timing import (
    DEFAULT_REPORT_BY_BUFFER,
    DEFAULT_RUN_HEARTBEAT_INTERVAL,
    report_by_seconds,
)

__all__ = [
    "MAX_CONSECUTIVE_FAILURES",
    "Beat",
    "ConsecutiveFailures",
    "HeartbeatService",
]

logger = structlog.get_logger(__name__)

MAX_CONSECUTIVE_FAILURES = 5
"""Failed beats in a row after which the run gives up.

Each failed beat has already been retried by the requester, and failed beats are an interval
apart, so five of them mean the server has been out of reach for longer than the report-by
deadline (interval x 3.1): the server has reaped the run or will as soon as it looks. Going on
would schedule work for a run the server no longer considers alive, and without the server the
swarm cannot observe its tasks anyway. Fewer than five would end long runs over a server
restart or a short network outage, which the report-by buffer is meant to ride out.
"""


@dataclass(frozen=True, slots=True)
class Beat:
    """What one heartbeat answered."""

    run_status: WorkflowRunStatus
    max_concurrently_running: int
    array_limits: Mapping[int, int]


class HeartbeatService:
    """Beats for one run: ``tick`` when :meth:`due`. Times are seconds on the caller's clock."""

    def __init__(
        self,
        gateway: SwarmGateway,
        *,
        run_id: int,
        interval: float = DEFAULT_RUN_HEARTBEAT_INTERVAL,
        report_by_buffer: float = DEFAULT_REPORT_BY_BUFFER,
    ) -> None:
        if interval <= 0 or report_by_buffer < 1:
            raise ValueError("heartbeat interval must be > 0 and the report-by buffer >= 1")
        self._gateway = gateway
        self._run_id = run_id
        self.interval = interval
        self.report_by_seconds = report_by_seconds(interval, report_by_buffer)
        self._last_attempt: float | None = None

    def due(self, now: float) -> bool:
        """True before the first beat and once an interval has passed since the last attempt."""
        return self.seconds_until_due(now) <= 0

    def beat_soon(self) -> None:
        """Make the next beat due at once: it answers the limits in force, which just changed."""
        self._last_attempt = None

    def seconds_until_due(self, now: float) -> float:
        if self._last_attempt is None:
            return 0.0
        return max(0.0, self._last_attempt + self.interval - now)

    def tick(self, now: float) -> Beat:
        """Send one beat. A failure raises and still counts as the attempt for :meth:`due`."""
        self._last_attempt = now
        reply = self._gateway.heartbeat(self._run_id, self.report_by_seconds)
        beat = Beat(
            run_status=WorkflowRunStatus(reply.status),
            max_concurrently_running=reply.concurrency.max_concurrently_running,
            array_limits=MappingProxyType(dict(reply.concurrency.array_limits)),
        )
        logger.debug(
            "swarm_heartbeat",
            workflow_run_id=self._run_id,
            run_status=beat.run_status.value,
            max_concurrently_running=beat.max_concurrently_running,
        )
        return beat


class ConsecutiveFailures:
    """Counts failures in a row; owned by the loop that decides what a failure means."""

    def __init__(self, limit: int = MAX_CONSECUTIVE_FAILURES) -> None:
        if limit < 1:
            raise ValueError("the failure limit must be >= 1")
        self.limit = limit
        self.count = 0

    def record_failure(self) -> bool:
        """Count one failure; True when the limit is reached (the caller must give up)."""
        self.count += 1
        return self.count >= self.limit

    def record_success(self) -> None:
        self.count = 0
