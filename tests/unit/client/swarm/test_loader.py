"""Loading a run's DAG from the server in pages, or from bound client objects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import pytest
from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman import Tool, Workflow
from herdsman.client.swarm.loader import load_from_server, load_from_workflow
from herdsman.client.swarm.state import SwarmState
from herdsman.core.errors import InvalidInputError
from herdsman.core.requester import Requester
from herdsman.core.schemas.swarm import SwarmEdgesOut, SwarmTasksOut
from herdsman.core.statuses import TaskStatus


class CountingGateway(InMemorySwarmGateway):
    """Counts the page reads."""

    def __init__(self) -> None:
        super().__init__()
        self.task_pages = 0
        self.edge_pages: list[tuple[int, int]] = []

    def tasks_page(self, workflow_id: int, after_task_id: int, limit: int) -> SwarmTasksOut:
        self.task_pages += 1
        return super().tasks_page(workflow_id, after_task_id, limit)

    def edges_page(self, workflow_id: int, offset: int, limit: int) -> SwarmEdgesOut:
        self.edge_pages.append((offset, limit))
        return super().edges_page(workflow_id, offset, limit)


def ready_ids(state: SwarmState) -> list[int]:
    return [tid for batch in state.next_batches() for tid in batch.task_ids]


def test_from_the_server_in_pages_and_chunks() -> None:
    gateway = CountingGateway()
    for task_id in range(1, 8):
        gateway.add_task(
            task_id, status=TaskStatus.DONE if task_id <= 2 else TaskStatus.REGISTERING
        )
    for edge in [(1, 3), (2, 3), (3, 4), (4, 5), (5, 6), (6, 7)]:
        gateway.add_edge(*edge)
    state = SwarmState()
    load_from_server(state, gateway, 1, edge_chunk_size=2, task_page_size=3)
    assert gateway.task_pages == 3
    assert gateway.edge_pages == [(0, 2), (2, 2), (4, 2)]
    assert state.num_tasks == 7 and state.done_ids() == {1, 2}
    state.set_initial_fringe()
    assert ready_ids(state) == [3]  # its upstreams were loaded as DONE


class StubTask:
    """The attributes of a bound Task the loader reads."""

    def __init__(
        self,
        task_id: int | None,
        *,
        array_id: int | None = 1,
        status: str | None = "G",
        template: str = "a",
        upstream: Iterable[StubTask] = (),
        task_resources_id: int | None = None,
    ) -> None:
        self.task_id = task_id
        self.array_id = array_id
        self.status = status
        self.template_version = template
        self.name = f"task-{task_id}"
        self.task_resources_id = task_resources_id
        self._upstream = list(upstream)

    def iter_upstream(self) -> list[StubTask]:
        return self._upstream


class StubWorkflow:
    def __init__(self, tasks: list[StubTask], limits: dict[str, int] | None = None) -> None:
        self.workflow_id: int | None = 1
        self.tasks = {index: task for index, task in enumerate(tasks)}
        self.max_concurrently_running = 50
        self._limits = limits or {}

    def array_limit(self, version: str) -> int:
        return self._limits.get(version, self.max_concurrently_running)


def as_workflow(stub: StubWorkflow) -> Workflow:
    return cast(Workflow, stub)


def test_from_bound_objects_with_no_reads() -> None:
    first = StubTask(1, array_id=10, template="a", task_resources_id=7)
    second = StubTask(2, array_id=20, template="b", upstream=[first])
    done = StubTask(3, array_id=10, status="D")
    workflow = StubWorkflow([first, second, done], limits={"b": 4})
    gateway = CountingGateway()
    state = SwarmState()
    load_from_workflow(state, as_workflow(workflow), gateway)
    assert gateway.task_pages == 0 and gateway.edge_pages == []
    assert state.workflow_limit == 50 and dict(state.array_limits) == {10: 50, 20: 4}
    state.set_initial_fringe()
    (batch,) = state.next_batches()
    assert (batch.array_id, batch.task_resources_id, batch.task_ids) == (10, 7, (1,))
    assert state.done_ids() == {3}


def test_objects_without_array_ids_take_their_tasks_from_the_server() -> None:
    tool = Tool("loader-tests", requester=cast(Requester, object()))
    template = tool.get_task_template(
        "echo", "echo {n}", node_args=["n"], default_cluster_name="dummy"
    )
    upstream = template.create_task(n=1)
    downstream = template.create_task(n=2, upstream_tasks=[upstream])
    workflow = tool.create_workflow(workflow_args="loader")
    workflow.add_tasks([upstream, downstream])
    workflow.workflow_id = 1
    gateway = CountingGateway()
    for task_id, task in enumerate([upstream, downstream], start=1):
        task.task_id, task.status = task_id, "G"  # what bind() sets, minus the array id
        gateway.add_task(task_id, array_id=5)
    state = SwarmState()
    load_from_workflow(state, workflow, gateway)
    assert gateway.task_pages == 1 and gateway.edge_pages == []
    state.set_initial_fringe()
    (batch,) = state.next_batches()
    assert batch.array_id == 5 and batch.task_ids == (1,)


@pytest.mark.parametrize("unbound", ["workflow", "task"])
def test_an_unbound_workflow_is_refused(unbound: str) -> None:
    workflow = StubWorkflow([StubTask(None if unbound == "task" else 1)])
    if unbound == "workflow":
        workflow.workflow_id = None
    with pytest.raises(InvalidInputError, match="bind"):
        load_from_workflow(SwarmState(), as_workflow(workflow), cast(Any, None))
