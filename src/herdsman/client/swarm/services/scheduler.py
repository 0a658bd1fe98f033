"""The scheduler: hands ready tasks to the server, one queue request per batch.

Each batch holds tasks of one array with identical resources, which the distributor turns into
one cluster job array; the batch's resources id goes with it, so tasks given new resources by
the adjuster run with them. The server answers with every task's current status; those answers are
the update the caller applies, so a task the server did not queue (already queued by an older
run, say) is known at once instead of waiting for the feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import structlog

from herdsman.client.swarm.gateway import SwarmGateway
from herdsman.client.swarm.state import QueueBatch, StateUpdate, SwarmState
from herdsman.core.errors import ServerUnavailableError

__all__ = ["ScheduleResult", "SchedulerService"]

logger = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class ScheduleResult:
    """What one round of queue requests did.

    ``interrupted``: the server could not be reached; the batches not answered were released
    back to the ready queues and will be sent again.
    """

    update: StateUpdate
    num_batches: int
    num_tasks: int
    interrupted: bool = False


class SchedulerService:
    """Sends the state's ready batches for one run."""

    def __init__(self, gateway: SwarmGateway, state: SwarmState, *, run_id: int) -> None:
        self._gateway = gateway
        self._state = state
        self._run_id = run_id

    def tick(self, limit_total: int | None = None) -> ScheduleResult:
        """Take what fits the limits from the state and send it."""
        return self.send(self._state.next_batches(limit_total))

    def send(self, batches: Sequence[QueueBatch]) -> ScheduleResult:
        """Send batches already taken from the state, in order.

        If the server is unreachable, the unsent batches are released and the result says
        ``interrupted``; any other error releases them too and propagates.
        """
        update = StateUpdate()
        sent = 0
        for position, batch in enumerate(batches):
            try:
                reply = self._gateway.queue_tasks(
                    self._run_id, batch.task_ids, batch.task_resources_id
                )
            except ServerUnavailableError as error:
                self._release(batches[position:])
                logger.warning(
                    "swarm_queue_unavailable",
                    workflow_run_id=self._run_id,
                    unsent_tasks=sum(len(b.task_ids) for b in batches[position:]),
                    error=str(error),
                )
                return ScheduleResult(update, position, sent, interrupted=True)
            except BaseException:
                self._release(batches[position:])
                raise
            update = update.merge(StateUpdate.from_task_statuses(reply))
            sent += len(batch.task_ids)
            logger.debug(
                "swarm_batch_queued",
                workflow_run_id=self._run_id,
                array_id=batch.array_id,
                task_resources_id=batch.task_resources_id,
                tasks=len(batch.task_ids),
            )
        return ScheduleResult(update, len(batches), sent)

    def _release(self, batches: Sequence[QueueBatch]) -> None:
        self._state.release(task_id for batch in batches for task_id in batch.task_ids)
