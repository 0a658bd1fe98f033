"""Resource policies: settings from the workflow's objects, or from the stored columns."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman import Task, Workflow
from herdsman.client.scaling import scale_request
from herdsman.client.swarm.policies import StoredResourcePolicy, WorkflowResourcePolicy
from herdsman.core.errors import InvalidResourceError
from herdsman.core.exceptions import CallableReturnedInvalidObject

MakeWorkflow = Callable[..., tuple[Workflow, list[Task]]]

# --- from the workflow's objects ------------------------------------------------------------------


def test_scales_and_fallback_queues_resolve_like_bind(make_workflow: MakeWorkflow) -> None:
    gateway = InMemorySwarmGateway()
    workflow, tasks = make_workflow(
        gateway,
        [{}, {"resource_scales": {"memory": 2.0}, "fallback_queues": ["big"]}],
        template_scales={"runtime": 0.1},
    )
    policy = WorkflowResourcePolicy(workflow)
    assert policy.scales(1) == {"runtime": 0.1}
    assert policy.scales(2) == {"memory": 2.0}
    assert list(policy.fallback_queues(1)) == [] and list(policy.fallback_queues(2)) == ["big"]
    assert policy.task_name(2) == tasks[1].name
    assert policy.scales(99) is None and policy.task_name(99) is None


def test_a_shared_iterator_runs_separately_for_each_task(make_workflow: MakeWorkflow) -> None:
    gateway = InMemorySwarmGateway()
    shared = iter(["2G", "4G"])
    workflow, _ = make_workflow(gateway, [{}, {}], template_scales={"memory": shared})
    policy = WorkflowResourcePolicy(workflow)

    def next_memory(task_id: int, previous: float) -> Any:
        return scale_request({"memory": previous}, policy.scales(task_id))["memory"]

    assert next_memory(1, 1.0) == 2.0
    assert next_memory(1, 2.0) == 4.0
    assert next_memory(2, 1.0) == 2.0  # task 2 starts at the beginning
    assert next_memory(1, 3.0) == 4.0  # exhausted: the last value it gave
    assert next_memory(2, 2.0) == 4.0


def test_held_tasks_are_those_with_a_callable_not_done(make_workflow: MakeWorkflow) -> None:
    gateway = InMemorySwarmGateway()
    callable_ = lambda: {"memory": "2G"}  # noqa: E731
    workflow, tasks = make_workflow(
        gateway,
        [
            {"compute_resources_callable": callable_},
            {},
            {"compute_resources_callable": callable_},
        ],
    )
    tasks[2].status = "D"
    assert list(WorkflowResourcePolicy(workflow).held_task_ids()) == [1]


def test_the_callable_result_is_merged_over_the_resolved_resources_and_validated(
    make_workflow: MakeWorkflow,
) -> None:
    gateway = InMemorySwarmGateway()
    workflow, _ = make_workflow(
        gateway,
        [
            {
                "compute_resources": {"memory": "1G", "runtime": "1h", "project": "p"},
                "compute_resources_callable": lambda: {"memory": "3G", "cores": 2},
            }
        ],
    )
    cluster, requested = WorkflowResourcePolicy(workflow).initial_request(1)
    assert cluster.name == "dummy"
    assert requested == {
        "memory": 3.0,
        "runtime": 3600,
        "cores": 2,
        "project": "p",
        "queue": "default",
    }


@pytest.mark.parametrize(
    ("result", "message"),
    [
        (["4G"], r"returned \['4G'\] \(list\); it must return a dict"),
        (None, r"returned None \(NoneType\)"),
        ({"memory": "lots"}, "memory 'lots'"),
        ({"memory": 100_000}, "allows memory from 0 to 4096"),
    ],
)
def test_a_callable_result_that_is_not_usable_is_refused(
    make_workflow: MakeWorkflow, result: object, message: str
) -> None:
    gateway = InMemorySwarmGateway()
    workflow, _ = make_workflow(gateway, [{"compute_resources_callable": lambda: result}])
    with pytest.raises(InvalidResourceError, match=message):
        WorkflowResourcePolicy(workflow).initial_request(1)


@pytest.mark.parametrize("result", [["4G"], None, "8G"])
def test_a_callable_returning_no_dict_raises_jobmons_exception(
    make_workflow: MakeWorkflow, result: object
) -> None:
    gateway = InMemorySwarmGateway()
    workflow, _ = make_workflow(gateway, [{"compute_resources_callable": lambda: result}])
    with pytest.raises(CallableReturnedInvalidObject):
        WorkflowResourcePolicy(workflow).initial_request(1)


def test_a_callable_that_raises_is_reported_with_its_error(make_workflow: MakeWorkflow) -> None:
    def broken() -> dict[str, Any]:
        raise KeyError("region")

    gateway = InMemorySwarmGateway()
    workflow, _ = make_workflow(gateway, [{"compute_resources_callable": broken}])
    with pytest.raises(InvalidResourceError, match=r"raised KeyError\('region'\)"):
        WorkflowResourcePolicy(workflow).initial_request(1)


def test_a_task_without_a_callable_has_no_initial_request(make_workflow: MakeWorkflow) -> None:
    workflow, _ = make_workflow(InMemorySwarmGateway(), [{}])
    with pytest.raises(InvalidResourceError, match="no compute_resources_callable"):
        WorkflowResourcePolicy(workflow).initial_request(1)


# --- from the stored columns ----------------------------------------------------------------------


def test_stored_settings_keep_numbers_and_queue_names() -> None:
    policy = StoredResourcePolicy()
    policy.add(1, json.dumps({"memory": 1.0, "runtime": 0.25, "odd": "x"}), '["big", 3]')
    policy.add(2, "", "")
    policy.add(3, "{not json", "")
    assert policy.scales(1) == {"memory": 1.0, "runtime": 0.25}
    assert list(policy.fallback_queues(1)) == ["big"]
    assert policy.scales(2) is None and list(policy.fallback_queues(2)) == []
    assert policy.scales(3) is None  # unreadable: the defaults
    assert policy.scales(4) is None and policy.task_name(1) is None
    assert list(policy.held_task_ids()) == []
    with pytest.raises(InvalidResourceError, match="from_workflow"):
        policy.initial_request(1)


def test_stored_settings_are_shared_and_found_in_any_load_order() -> None:
    policy = StoredResourcePolicy()
    scales = json.dumps({"memory": 0.5})
    for task_id in (5, 1, 9, 3):
        policy.add(task_id, scales if task_id != 9 else "", "")
    assert policy.scales(1) is policy.scales(3) is policy.scales(5)
    assert policy.scales(9) is None
    assert policy.scales(2) is None
