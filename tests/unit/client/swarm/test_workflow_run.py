"""WorkflowRun, the facade: construction, the step-by-step methods and whole runs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import pytest
from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman import Task, Workflow
from herdsman.client.swarm.state import QueueBatch
from herdsman.client.swarm.workflow_run import WorkflowRun
from herdsman.core.errors import ConfigurationError, ConflictError, InvalidInputError
from herdsman.core.lifecycle import ACTIVE_TASK_STATUSES
from herdsman.core.schemas.swarm import SwarmTasksOut
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus

MakeGateway = Callable[..., InMemorySwarmGateway]
RUN = WorkflowRunStatus


def alive() -> bool:
    return True


def test_from_workflow_id_runs_to_done(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(6, [(1, 2), (2, 3), (4, 5)], cluster=lambda gw: gw.finish())
    swarm = WorkflowRun.from_workflow_id(1, edge_chunk_size=2, gateway=gateway)
    assert swarm.workflow_id == 1 and swarm.status == "B"
    assert swarm.run(alive) == "D"
    assert swarm.status is RUN.DONE
    assert swarm.done_tasks == [1, 2, 3, 4, 5, 6]
    assert swarm.failed_tasks == [] and swarm.active_tasks == []
    assert swarm.result.status is RUN.DONE and swarm.result.num_tasks == 6
    assert gateway.run_history(swarm.workflow_run_id) == [
        RUN.LINKING,
        RUN.BOUND,
        RUN.INSTANTIATED,
        RUN.LAUNCHED,
        RUN.RUNNING,
        RUN.DONE,
    ]


def test_resuming_loads_done_tasks_as_done(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(3, [(1, 2), (2, 3)], cluster=lambda gw: gw.finish())
    gateway.set_task_status(1, TaskStatus.DONE)
    first = gateway.create_run(1, resume=False, reset_running_jobs=True)
    swarm = WorkflowRun.from_workflow_id(1, resume=True, gateway=gateway)
    assert gateway.run_status(first.workflow_run_id) is RUN.COLD_RESUME
    assert swarm.run(alive) == "D"
    assert [t for request in gateway.queue_requests for t in request] == [2, 3]


class StubTask:
    def __init__(self, task_id: int, *, upstream: list[StubTask] | None = None) -> None:
        self.task_id: int | None = task_id
        self.array_id: int | None = 1
        self.status: str | None = "G"
        self.template_version = "echo"
        self.name = f"t{task_id}"
        self.compute_resources_callable = None
        self.fallback_queues = None
        self._upstream = upstream or []

    def iter_upstream(self) -> list[StubTask]:
        return self._upstream


class StubWorkflow:
    def __init__(self, tasks: list[StubTask]) -> None:
        self.workflow_id: int | None = 1
        self.tasks = {task.task_id: task for task in tasks}
        self.max_concurrently_running = 1

    def array_limit(self, version: str) -> int:
        return self.max_concurrently_running

    @property
    def requester(self) -> Any:
        raise AssertionError("a gateway was given; the workflow's requester must not be used")


class NoReadsGateway(InMemorySwarmGateway):
    def tasks_page(self, workflow_id: int, after_task_id: int, limit: int) -> SwarmTasksOut:
        raise AssertionError("from_workflow must load the tasks from the objects")


def test_from_workflow_loads_from_the_objects_and_honours_their_limit() -> None:
    first = StubTask(1)
    tasks = [first, StubTask(2, upstream=[first]), StubTask(3)]
    gateway = NoReadsGateway(cluster=lambda gw: gw.finish())
    for task in tasks:
        assert task.task_id is not None
        gateway.add_task(task.task_id)
    gateway.add_edge(1, 2)
    swarm = WorkflowRun.from_workflow(
        cast(Workflow, StubWorkflow(tasks)),
        gateway=gateway,
        workflow_run_heartbeat_interval=5,
        heartbeat_report_by_buffer=2.0,
    )
    # Before any heartbeat, the workflow's own limit (1) applies.
    assert [b.task_ids for b in swarm.get_swarm_commands()] == [(1,)]
    assert swarm.run(alive) == "D"
    assert gateway.report_by(swarm.workflow_run_id) == pytest.approx(10.0)


def test_a_zero_heartbeat_interval_is_refused_not_replaced() -> None:
    with pytest.raises(ConfigurationError):
        WorkflowRun(1, workflow_run_heartbeat_interval=0, gateway=InMemorySwarmGateway())


def test_an_unbound_workflow_is_refused() -> None:
    workflow = StubWorkflow([])
    workflow.workflow_id = None
    with pytest.raises(InvalidInputError, match="bind"):
        WorkflowRun.from_workflow(cast(Workflow, workflow), gateway=InMemorySwarmGateway())


def test_step_by_step(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(4, [(1, 3), (2, 3), (3, 4)], max_concurrently_running=10)
    swarm = WorkflowRun.from_workflow_id(1, gateway=gateway)
    swarm.set_initial_fringe()
    commands = swarm.get_swarm_commands()  # fetches the limits with one heartbeat
    assert commands == [QueueBatch(1, 1, (1, 2))] and gateway.num_heartbeats == 1
    swarm.process_commands()
    assert gateway.queue_requests == [(1, 2)]
    assert swarm.active_tasks == [1, 2]
    gateway.finish([1, 2])
    swarm.synchronize_state()
    assert swarm.done_tasks == [1, 2]
    gateway.set_task_status(3, TaskStatus.QUEUED, record=False)  # someone else queued it
    swarm.synchronize_state(full_sync=True)
    assert swarm.active_tasks == [3]
    gateway.set_server_run_status(swarm.workflow_run_id, RUN.STOPPED)
    swarm.synchronize_state()
    assert swarm.status is RUN.STOPPED


def test_process_commands_takes_new_batches_when_none_are_pending(
    make_gateway: MakeGateway,
) -> None:
    gateway = make_gateway(2)
    swarm = WorkflowRun.from_workflow_id(1, gateway=gateway)
    swarm.process_commands(timeout=10)
    assert gateway.queue_requests == [(1, 2)]


def test_batches_taken_but_not_sent_are_rescheduled_by_run(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(2, cluster=lambda gw: gw.finish())
    swarm = WorkflowRun.from_workflow_id(1, gateway=gateway)
    swarm.get_swarm_commands()
    assert swarm.run(alive) == "D"
    assert gateway.queue_requests == [(1, 2)]


def test_a_run_built_from_its_id_loads_itself_from_the_server(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(3, [(1, 2)], cluster=lambda gw: gw.finish())
    run = gateway.create_run(1, resume=False, reset_running_jobs=True)
    swarm = WorkflowRun(run.workflow_run_id, gateway=gateway)
    assert swarm.status is None
    assert swarm.run(alive, seconds_until_timeout=100) == "D"
    assert swarm.workflow_id == 1 and swarm.done_tasks == [1, 2, 3]


def test_a_finished_run_cannot_be_started(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(1)
    swarm = WorkflowRun.from_workflow_id(1, gateway=gateway)
    gateway.set_server_run_status(swarm.workflow_run_id, RUN.STOPPED)
    with pytest.raises(ConflictError, match="cannot start"):
        WorkflowRun(swarm.workflow_run_id, gateway=gateway).run(alive)


def test_result_before_run_is_an_error(make_gateway: MakeGateway) -> None:
    swarm = WorkflowRun.from_workflow_id(1, gateway=make_gateway(1))
    with pytest.raises(RuntimeError, match="has not been run"):
        _ = swarm.result


def test_failures_are_reported(make_gateway: MakeGateway) -> None:
    def cluster(gateway: InMemorySwarmGateway) -> None:
        gateway.fail([2])
        gateway.finish()

    gateway = make_gateway(3, [(2, 3)], max_attempts=1, cluster=cluster)
    swarm = WorkflowRun.from_workflow_id(1, gateway=gateway)
    assert swarm.run(alive) == "E"
    assert swarm.failed_tasks == [2] and swarm.done_tasks == [1]


def test_a_hundred_thousand_tasks_run_to_completion(make_gateway: MakeGateway) -> None:
    """100 layers of 1,000 tasks; each task waits on up to two tasks of the layer before."""
    width, layers = 1_000, 100
    total = width * layers
    edges = []
    for task_id in range(width + 1, total + 1):
        edges.append((task_id - width, task_id))
        if task_id % width != 0:
            edges.append((task_id - width + 1, task_id))
    gateway = make_gateway(
        total,
        edges,
        array_of=lambda task_id: 1 + task_id % 2,
        resources_of=lambda task_id: 1 + task_id % 3,
        max_concurrently_running=1_500,
        cluster=lambda gw: gw.finish(),
    )
    swarm = WorkflowRun.from_workflow_id(1, gateway=gateway)
    assert swarm.run(alive) == "D"
    assert len(swarm.result.done_task_ids) == total == swarm.result.num_tasks
    assert not swarm.result.failed_task_ids
    assert gateway.tasks_in(TaskStatus.DONE) == list(range(1, total + 1))
    assert not gateway.tasks_in(*ACTIVE_TASK_STATUSES)
    assert gateway.peak_active <= 1_500
    assert sum(len(request) for request in gateway.queue_requests) == total


# --- resources computed by the swarm ------------------------------------------------------------

MakeWorkflow = Callable[..., tuple[Workflow, list[Task]]]


def kill_once_then_finish(killed: set[int]) -> Callable[[InMemorySwarmGateway], None]:
    """A cluster that kills every task's first attempt for resources."""

    def cluster(gateway: InMemorySwarmGateway) -> None:
        for task_id in gateway.tasks_in(*ACTIVE_TASK_STATUSES):
            if task_id in killed:
                gateway.finish([task_id])
            else:
                killed.add(task_id)
                gateway.fail([task_id], resource_error=True)

    return cluster


def test_a_resources_callable_runs_when_its_task_becomes_ready(
    make_workflow: MakeWorkflow,
) -> None:
    gateway = InMemorySwarmGateway(cluster=lambda gw: gw.finish())
    upstream_done_when_called: list[bool] = []

    def resources() -> dict[str, Any]:
        upstream_done_when_called.append(gateway.task_status(1) is TaskStatus.DONE)
        return {"memory": "3G", "runtime": "2h"}

    workflow, tasks = make_workflow(
        gateway, [{"compute_resources": {"memory": "1G", "cores": 2}}, {}]
    )
    tasks[1].compute_resources_callable = resources
    tasks[1].add_upstream(tasks[0])
    gateway.add_edge(1, 2)
    swarm = WorkflowRun.from_workflow(workflow, gateway=gateway)
    assert swarm.run(alive) == "D"
    assert upstream_done_when_called == [True]
    (request,) = gateway.requests_of(2)
    assert request == {"memory": 3.0, "runtime": 7200, "queue": "default"}
    assert gateway.requests_of(1) == [{"memory": 1.0, "cores": 2, "queue": "default"}]


def test_a_failing_resources_callable_ends_the_run_naming_the_task(
    make_workflow: MakeWorkflow,
) -> None:
    gateway = InMemorySwarmGateway(cluster=lambda gw: gw.finish())
    workflow, _ = make_workflow(
        gateway, [{}, {"compute_resources_callable": lambda: "8G", "name": "fit_region"}]
    )
    swarm = WorkflowRun.from_workflow(workflow, gateway=gateway)
    assert swarm.run(alive) == "E"
    message = gateway.run_messages(swarm.workflow_run_id)[-1]
    assert "task 'fit_region' (id 2)" in message
    assert "compute_resources_callable returned '8G' (str)" in message
    assert gateway.requests_of(2) == []  # never queued


def test_scales_from_the_objects_may_be_callables_and_iterators(
    make_workflow: MakeWorkflow,
) -> None:
    killed: set[int] = set()
    gateway = InMemorySwarmGateway(cluster=kill_once_then_finish(killed))
    workflow, _ = make_workflow(
        gateway,
        [{"compute_resources": {"memory": "1G", "runtime": 100}}] * 2,
        template_scales={"memory": iter(["6G"]), "runtime": lambda seconds: seconds + 5},
    )
    swarm = WorkflowRun.from_workflow(workflow, gateway=gateway)
    assert swarm.run(alive) == "D"
    for task_id in (1, 2):  # each task has its own run through the shared iterator
        assert [(r["memory"], r["runtime"]) for r in gateway.requests_of(task_id)] == [
            (1.0, 100),
            (6.0, 105),
        ]


def test_step_by_step_adjusts_before_taking_batches(make_gateway: MakeGateway) -> None:
    gateway = make_gateway(1)
    swarm = WorkflowRun.from_workflow_id(1, gateway=gateway)
    swarm.process_commands()
    gateway.fail([1], resource_error=True)
    swarm.synchronize_state()
    (batch,) = swarm.get_swarm_commands()
    assert batch.task_ids == (1,) and batch.task_resources_id != 1
    swarm.process_commands()
    assert [r["memory"] for r in gateway.requests_of(1)] == [1.0, 1.5]
