"""A resumed workflow's new run waits for its earlier runs to let go, then takes over.

Resuming asks the earlier runs to let go: their jobs are killed (cold) or, for those not yet
started, dropped (hot), and the server ends each run (T) once its distributor has confirmed
the kills. Until then the new run stays registered: two runs scheduling one workflow could run
a task twice. If the confirmations do not come within the timeout -- the old distributor died
with its run, or the jobs were killed outside herdsman -- the new run forces the release,
which records the unconfirmed kills as such, and goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import structlog

from herdsman.client.swarm.gateway import SwarmGateway
from herdsman.core.lifecycle import RESUMING_RUN_STATUSES
from herdsman.core.schemas.swarm import WorkflowRunOut
from herdsman.core.statuses import WorkflowRunStatus

__all__ = ["DEFAULT_RESUME_TIMEOUT", "take_over"]

logger = structlog.get_logger(__name__)

DEFAULT_RESUME_TIMEOUT = 300.0
"""Seconds to wait for earlier runs to confirm their kills before forcing their release."""

_POLL_SECONDS = 0.25
# The waiting run promises a heartbeat this often, so the reaper leaves it alone.
_BEAT_SECONDS = 10.0


def take_over(
    gateway: SwarmGateway,
    run: WorkflowRunOut,
    *,
    timeout: float = DEFAULT_RESUME_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WorkflowRunOut:
    """The new run, linked to its workflow once ``run.waiting_on`` have let go (or forced)."""
    if not run.waiting_on:
        return run
    log = logger.bind(workflow_run_id=run.workflow_run_id, waiting_on=run.waiting_on)
    log.info("swarm_waiting_for_earlier_runs", timeout=timeout)
    deadline = clock() + timeout
    next_beat = clock()
    pending = list(run.waiting_on)
    while pending:
        pending = [
            rid
            for rid in pending
            if WorkflowRunStatus(gateway.get_run(rid).status) in RESUMING_RUN_STATUSES
        ]
        if not pending:
            break
        now = clock()
        if now >= deadline:
            for run_id in pending:
                gateway.force_release(run_id)
            log.warning(
                "swarm_forced_release",
                runs=pending,
                hint="their kills were not confirmed in time; check the cluster for their jobs",
            )
            break
        if now >= next_beat:
            gateway.heartbeat(run.workflow_run_id, _BEAT_SECONDS * 3)
            next_beat = now + _BEAT_SECONDS
        sleep(_POLL_SECONDS)
    linked = gateway.link_run(run.workflow_run_id)
    log.info("swarm_took_over", status=linked.status)
    return linked
