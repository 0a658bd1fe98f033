"""Why the cluster has yet to start an instance's job, as its distributor last heard it.

Kept in the server process's memory, not in the database, on purpose: a pending reason is a
hint that changes at every poll of the cluster (every triage, 30 s by default) and is worth
nothing once the job starts, so writing it would cost a row update per queued instance per
poll for a sentence on one page. What this gives up: a server that restarts forgets the
reasons until the next poll, and where several server processes share a database, a page
served by another process than the one the distributor reported to shows none; the page then
says only that the cluster has yet to start the job, as it did before reasons were known.
Reasons older than :data:`MAX_AGE` seconds are not shown (the distributor may have stopped).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import structlog

__all__ = ["MAX_AGE", "MAX_RUNS", "PendingReason", "PendingReasons"]

logger = structlog.get_logger(__name__)

MAX_AGE = 600.0
MAX_RUNS = 1000


@dataclass(frozen=True)
class PendingReason:
    """``reason`` in ``scheduler``'s words (``Slurm``, ``Priority``), reported at ``seen``
    (seconds of the server's monotonic clock)."""

    scheduler: str
    reason: str
    seen: float


class PendingReasons:
    """The last report of each run's distributor, for the newest :data:`MAX_RUNS` runs.

    Thread-safe: reports arrive on the route's worker threads while pages read.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._runs: OrderedDict[int, dict[int, PendingReason]] = OrderedDict()
        self._run_of: dict[int, int] = {}

    def report(self, run_id: int, scheduler: str, reasons: Mapping[int, str]) -> None:
        """The run's reasons now, replacing its last report."""
        now = self._clock()
        with self._lock:
            for instance_id in self._runs.pop(run_id, {}):
                self._run_of.pop(instance_id, None)
            self._runs[run_id] = {
                instance_id: PendingReason(scheduler, reason, now)
                for instance_id, reason in reasons.items()
            }
            self._run_of.update(dict.fromkeys(reasons, run_id))
            while len(self._runs) > MAX_RUNS:
                _, dropped = self._runs.popitem(last=False)
                for instance_id in dropped:
                    self._run_of.pop(instance_id, None)
        logger.debug("pending_reasons_reported", workflow_run_id=run_id, instances=len(reasons))

    def of(self, instance_id: int) -> PendingReason | None:
        """The instance's last reported reason, if recent."""
        with self._lock:
            run_id = self._run_of.get(instance_id)
            found = None if run_id is None else self._runs[run_id].get(instance_id)
        if found is None or self._clock() - found.seen > MAX_AGE:
            return None
        return found
