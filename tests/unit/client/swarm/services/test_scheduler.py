"""SchedulerService: one queue request per batch; failures hand the tasks back."""

from __future__ import annotations

import pytest
from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman.client.swarm.services.scheduler import SchedulerService
from herdsman.client.swarm.state import SwarmState, TaskRow
from herdsman.core.errors import NotFoundError, ServerUnavailableError
from herdsman.core.schemas.swarm import TaskStatusesOut
from herdsman.core.statuses import TaskStatus


def setup(num_tasks: int, arrays: int = 1) -> tuple[InMemorySwarmGateway, SwarmState, int]:
    gateway = InMemorySwarmGateway()
    state = SwarmState()
    for task_id in range(1, num_tasks + 1):
        array_id = task_id % arrays + 1
        gateway.add_task(task_id, array_id=array_id)
        state.add_tasks([TaskRow(task_id, array_id, TaskStatus.REGISTERING, 1)])
    state.set_initial_fringe()
    run = gateway.create_run(1, resume=False, reset_running_jobs=True)
    return gateway, state, run.workflow_run_id


def test_one_request_per_batch_and_the_replies_as_the_update() -> None:
    gateway, state, run_id = setup(6, arrays=2)
    result = SchedulerService(gateway, state, run_id=run_id).tick()
    assert sorted(gateway.queue_requests) == [(1, 3, 5), (2, 4, 6)]
    assert result.num_batches == 2 and result.num_tasks == 6 and not result.interrupted
    assert set(result.update.statuses.values()) == {TaskStatus.QUEUED}
    state.apply(result.update)
    assert state.active_ids() == set(range(1, 7))


def test_nothing_ready_sends_nothing() -> None:
    gateway, state, run_id = setup(2)
    state.set_limits(0, {})
    result = SchedulerService(gateway, state, run_id=run_id).tick()
    assert result.num_batches == 0 and gateway.queue_requests == []


class FlakyGateway(InMemorySwarmGateway):
    """Answers the first ``good`` queue requests, then raises ``error``."""

    def __init__(self, good: int, error: Exception) -> None:
        super().__init__()
        self.good = good
        self.error = error

    def queue_tasks(
        self, run_id: int, task_ids: tuple[int, ...], task_resources_id: int = 0
    ) -> TaskStatusesOut:
        if self.good == 0:
            raise self.error
        self.good -= 1
        return super().queue_tasks(run_id, task_ids, task_resources_id)


def flaky_setup(error: Exception) -> tuple[FlakyGateway, SwarmState, int]:
    gateway = FlakyGateway(good=1, error=error)
    state = SwarmState()
    for task_id in (1, 2, 3):
        gateway.add_task(task_id, array_id=task_id)
        state.add_tasks([TaskRow(task_id, task_id, TaskStatus.REGISTERING, 1)])
    state.set_initial_fringe()
    run = gateway.create_run(1, resume=False, reset_running_jobs=True)
    return gateway, state, run.workflow_run_id


def test_an_unreachable_server_interrupts_and_releases_the_unsent_batches() -> None:
    gateway, state, run_id = flaky_setup(ServerUnavailableError("down"))
    result = SchedulerService(gateway, state, run_id=run_id).tick()
    assert result.interrupted and result.num_batches == 1 and result.num_tasks == 1
    state.apply(result.update)
    assert state.num_active == 1  # only the answered batch
    gateway.good = 10
    again = SchedulerService(gateway, state, run_id=run_id).tick()
    assert again.num_tasks == 2 and not again.interrupted


def test_other_errors_release_the_unsent_batches_and_propagate() -> None:
    gateway, state, run_id = flaky_setup(NotFoundError("no such run"))
    with pytest.raises(NotFoundError):
        SchedulerService(gateway, state, run_id=run_id).tick()
    assert state.num_active == 1  # the answered batch is still requested until reported on
    assert sum(len(b.task_ids) for b in state.next_batches()) == 2
