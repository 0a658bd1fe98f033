"""ResourceAdjuster: new resources for tasks killed for resources or with a resources callable."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest
from tests.support.swarm_gateway import DEFAULT_REQUEST, InMemorySwarmGateway

from herdsman.client.swarm.loader import load_from_server
from herdsman.client.swarm.policies import StoredResourcePolicy
from herdsman.client.swarm.services.adjuster import ResourceAdjuster, ResourceAdjustmentError
from herdsman.client.swarm.state import StateUpdate, SwarmState, TaskRow
from herdsman.core.errors import InvalidResourceError
from herdsman.core.schemas.client import ClusterOut
from herdsman.core.schemas.swarm import AdjustedResourcesItemIn, AdjustedResourcesOut
from herdsman.core.statuses import TaskStatus

A = TaskStatus.ADJUSTING_RESOURCES
BIG_LIMITS = {"memory": (0.0, 64.0), "runtime": (1, 604_800)}


class FixedPolicy:
    """One set of settings for every task; ``initial`` answers held tasks."""

    def __init__(
        self,
        scales: Mapping[str, Any] | None = None,
        fallback_queues: Sequence[str] = (),
        initial: dict[str, Any] | Exception | None = None,
        held: Iterable[int] = (),
    ) -> None:
        self._scales = scales
        self._fallbacks = fallback_queues
        self._initial = initial
        self._held = list(held)
        self.initial_calls: list[int] = []

    def task_name(self, task_id: int) -> str | None:
        return f"fit_{task_id}"

    def scales(self, task_id: int) -> Mapping[str, Any] | None:
        return self._scales

    def fallback_queues(self, task_id: int) -> Sequence[str]:
        return self._fallbacks

    def held_task_ids(self) -> Iterable[int]:
        return self._held

    def initial_request(self, task_id: int) -> tuple[ClusterOut, dict[str, Any]]:
        self.initial_calls.append(task_id)
        if isinstance(self._initial, Exception):
            raise self._initial
        assert self._initial is not None
        return ClusterOut(id=1, name="dummy", plugin="dummy", parameters={}, queues=[]), dict(
            self._initial
        )


def setup(
    gateway: InMemorySwarmGateway, policy: Any = None, held: Iterable[int] = ()
) -> tuple[SwarmState, ResourceAdjuster]:
    """A loaded, sealed state over the gateway's tasks; the gateway's run is created."""
    gateway.create_run(gateway.workflow_id, resume=False, reset_running_jobs=True)
    state = SwarmState()
    stored = StoredResourcePolicy()
    load_from_server(state, gateway, gateway.workflow_id, policy=stored)
    state.hold_for_resources(held)
    state.set_initial_fringe()
    state.set_limits(100, {})
    adjuster = ResourceAdjuster(
        gateway, state, workflow_id=gateway.workflow_id, policy=policy or stored
    )
    return state, adjuster


def kill(gateway: InMemorySwarmGateway, state: SwarmState, *task_ids: int) -> None:
    """Queue the tasks, then have the cluster kill them for resources."""
    gateway.queue_tasks(1, task_ids)
    gateway.fail(task_ids, resource_error=True)
    state.apply(StateUpdate.of(dict.fromkeys(task_ids, A)))


def queued_request(gateway: InMemorySwarmGateway, state: SwarmState, task_id: int) -> Any:
    """Queue the task with the resources the state holds for it; its request as queued."""
    (batch,) = [b for b in state.next_batches() if task_id in b.task_ids]
    gateway.queue_tasks(1, batch.task_ids, batch.task_resources_id)
    state.apply(StateUpdate.of(dict.fromkeys(batch.task_ids, TaskStatus.QUEUED)))
    return gateway.requests_of(task_id)[-1]


def test_default_scales_grow_memory_and_runtime_by_half() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_task(1)
    state, adjuster = setup(gateway)
    kill(gateway, state, 1)
    assert adjuster.tick() == 1
    new_id = state.resources_of(1)
    assert new_id not in (None, 1)
    assert gateway.resources_row(new_id or 0) == (
        "adjusted",
        {"queue": "default", "memory": 1.5, "runtime": 900},
    )
    assert queued_request(gateway, state, 1)["memory"] == 1.5


def test_scales_compound_and_the_rows_written_are_not_read_again() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_task(1, max_attempts=5)
    state, adjuster = setup(gateway, FixedPolicy({"memory": 1.0}))
    memories = []
    for _ in range(3):
        kill(gateway, state, 1)
        adjuster.tick()
        memories.append(queued_request(gateway, state, 1)["memory"])
    assert memories == [2.0, 4.0, 8.0]
    assert gateway.num_resource_reads == 1  # only the bound row; later rows were cached


def test_tasks_given_the_same_request_share_one_row_and_one_batch() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_resources(2, {"queue": "default", "memory": 2.0})
    for task_id in (1, 2, 3):
        gateway.add_task(task_id)
    gateway.add_task(4, task_resources_id=2)
    state, adjuster = setup(gateway)
    kill(gateway, state, 1, 2, 3, 4)
    assert adjuster.tick() == 4
    assert gateway.num_resource_writes == 1
    assert state.resources_of(1) == state.resources_of(2) == state.resources_of(3)
    assert state.resources_of(4) != state.resources_of(1)
    batches = state.next_batches()
    assert sorted(b.task_ids for b in batches) == [(1, 2, 3), (4,)]


def test_stored_settings_scale_and_choose_a_fallback_queue() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_queue("small", {"memory": (0.0, 2.0)})
    gateway.add_queue("big", BIG_LIMITS)
    gateway.add_resources(5, {"queue": "small", "memory": 1.5, "runtime": 60})
    gateway.add_task(
        1,
        task_resources_id=5,
        resource_scales=json.dumps({"memory": 1.0, "runtime": 0.0}),
        fallback_queues=json.dumps(["big"]),
    )
    state, adjuster = setup(gateway)
    kill(gateway, state, 1)
    adjuster.tick()
    assert queued_request(gateway, state, 1) == {"queue": "big", "memory": 3.0, "runtime": 60}


def test_without_a_queue_that_fits_the_request_is_clamped() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_queue("small", {"memory": (0.0, 2.0)})
    gateway.add_queue("medium", {"memory": (0.0, 2.5)})
    gateway.add_resources(5, {"queue": "small", "memory": 2.0})
    gateway.add_task(1, task_resources_id=5)
    state, adjuster = setup(gateway, FixedPolicy({"memory": 1.0}, ["medium"]))
    kill(gateway, state, 1)
    adjuster.tick()
    assert queued_request(gateway, state, 1) == {"queue": "medium", "memory": 2.5}


def test_a_task_whose_resources_id_is_unknown_is_read_by_task_id() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_resources(8, {"queue": "default", "memory": 4.0})
    gateway.add_task(1, task_resources_id=8)
    gateway.create_run(1, resume=False, reset_running_jobs=True)
    state = SwarmState()
    state.add_tasks([TaskRow(1, 1, TaskStatus.REGISTERING, 0)])  # as from the client objects
    state.set_initial_fringe()
    state.set_limits(10, {})
    adjuster = ResourceAdjuster(gateway, state, workflow_id=1)
    kill(gateway, state, 1)
    adjuster.tick()
    assert queued_request(gateway, state, 1)["memory"] == 6.0


def test_held_tasks_get_their_initial_request_once() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_task(1)
    gateway.add_task(2)
    policy = FixedPolicy(initial={"queue": "default", "memory": 7.0}, held=[1])
    state, adjuster = setup(gateway, policy, held=[1])
    assert [b.task_ids for b in state.next_batches()] == [(2,)]
    adjuster.tick()
    assert policy.initial_calls == [1]
    assert queued_request(gateway, state, 1) == {"queue": "default", "memory": 7.0}
    assert adjuster.tick() == 0 and policy.initial_calls == [1]


def test_an_unreachable_server_postpones_without_computing_twice() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_task(1)
    values = iter(["2G", "3G", "5G"])
    state, adjuster = setup(gateway, FixedPolicy({"memory": values}))
    kill(gateway, state, 1)
    gateway.fail_resource_writes(2)
    assert adjuster.tick() == 0
    assert adjuster.tick() == 0
    assert state.next_batches() == []
    assert adjuster.tick() == 1
    assert queued_request(gateway, state, 1)["memory"] == 2.0  # not 5G: computed once
    assert next(values) == "3G"


def test_a_failing_initial_request_ends_with_an_error_naming_the_task() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_task(3)
    policy = FixedPolicy(initial=ValueError("no data for this region"), held=[3])
    _, adjuster = setup(gateway, policy, held=[3])
    with pytest.raises(ResourceAdjustmentError, match=r"task 'fit_3' \(id 3\)") as caught:
        adjuster.tick()
    assert "no data for this region" in caught.value.message
    assert caught.value.details == {"task_id": 3}


def test_an_unknown_fallback_queue_ends_with_an_error_naming_it() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_task(1)
    state, adjuster = setup(gateway, FixedPolicy({"memory": 10_000.0}, ["gpu"]))
    kill(gateway, state, 1)
    with pytest.raises(ResourceAdjustmentError, match="'gpu' is not a queue of cluster 'dummy'"):
        adjuster.tick()


def test_a_scale_moving_the_task_to_another_clusters_queue_ends_with_an_error() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_queue("elsewhere", BIG_LIMITS, cluster="other", is_default=True)
    gateway.add_task(1)
    state, adjuster = setup(gateway, FixedPolicy({"queue": lambda _: "elsewhere"}))
    kill(gateway, state, 1)
    with pytest.raises(ResourceAdjustmentError, match="'elsewhere' is not a queue"):
        adjuster.tick()


class RefusingGateway(InMemorySwarmGateway):
    def create_adjusted_resources(
        self, workflow_id: int, items: Sequence[AdjustedResourcesItemIn]
    ) -> AdjustedResourcesOut:
        raise InvalidResourceError("queue 'default' does not exist in cluster 'dummy'")


def test_a_request_the_server_refuses_ends_with_an_error() -> None:
    gateway = RefusingGateway()
    gateway.add_task(1)
    state, adjuster = setup(gateway)
    kill(gateway, state, 1)
    with pytest.raises(ResourceAdjustmentError, match=r"refused new resources for tasks \[1\]"):
        adjuster.tick()
    assert state.tasks_needing_resources()  # nothing recorded


def test_nothing_happens_before_the_limits_are_known() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_task(1, status=A)
    gateway.create_run(1, resume=False, reset_running_jobs=True)
    state = SwarmState()
    load_from_server(state, gateway, 1)
    state.set_initial_fringe()
    adjuster = ResourceAdjuster(gateway, state, workflow_id=1)
    assert adjuster.tick() == 0 and gateway.num_resource_reads == 0
    state.set_limits(1, {})
    assert adjuster.tick() == 1
    assert gateway.resources_row(state.resources_of(1) or 0)[1] == {
        **DEFAULT_REQUEST,
        "memory": 1.5,
        "runtime": 900,
    }


def test_max_per_tick_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ResourceAdjuster(InMemorySwarmGateway(), SwarmState(), workflow_id=1, max_per_tick=0)
