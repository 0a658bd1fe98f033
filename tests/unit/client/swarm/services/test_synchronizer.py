"""SynchronizerService: the full sync finds what the feed missed."""

from __future__ import annotations

import pytest
from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman.client.swarm.services.synchronizer import SynchronizerService
from herdsman.client.swarm.state import StateUpdate, SwarmState, TaskRow
from herdsman.core.statuses import TaskStatus


def setup(num_tasks: int) -> tuple[InMemorySwarmGateway, SwarmState, int]:
    gateway = InMemorySwarmGateway()
    state = SwarmState()
    for task_id in range(1, num_tasks + 1):
        gateway.add_task(task_id)
        state.add_tasks([TaskRow(task_id, 1, TaskStatus.REGISTERING)])
    for task_id in range(1, num_tasks):
        gateway.add_edge(task_id, task_id + 1)
        state.add_edges([(task_id, task_id + 1)])
    state.set_initial_fringe()
    run = gateway.create_run(1, resume=False, reset_running_jobs=True)
    return gateway, state, run.workflow_run_id


def test_due_every_interval_after_start() -> None:
    gateway, state, _ = setup(1)
    sync = SynchronizerService(gateway, state, workflow_id=1, interval=60.0)
    assert not sync.due(0.0)
    sync.start(0.0)
    assert not sync.due(59.0) and sync.due(60.0)
    sync.tick(60.0)
    assert sync.seconds_until_due(90.0) == pytest.approx(30.0)


def test_a_missed_change_is_found_and_fixed() -> None:
    gateway, state, run_id = setup(3)
    for batch in state.next_batches():
        state.apply(StateUpdate.from_task_statuses(gateway.queue_tasks(run_id, batch.task_ids)))
    gateway.set_task_status(1, TaskStatus.DONE, record=False)  # the feed never says so
    update = SynchronizerService(gateway, state, workflow_id=1, interval=1, page_size=2).tick(0)
    assert dict(update.statuses) == {1: TaskStatus.DONE}
    state.apply(update)
    assert [b.task_ids for b in state.next_batches()] == [(2,)]


def test_a_clean_sync_returns_an_empty_update() -> None:
    gateway, state, _ = setup(5)
    assert not SynchronizerService(gateway, state, workflow_id=1, interval=1, page_size=2).tick(0)


def test_bad_settings_are_refused() -> None:
    gateway, state, _ = setup(1)
    with pytest.raises(ValueError):
        SynchronizerService(gateway, state, workflow_id=1, interval=0)
