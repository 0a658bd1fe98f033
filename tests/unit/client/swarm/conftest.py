"""Fixtures for the swarm unit tests: a fake clock and runs on the in-memory server.

Nothing here reads the wall clock or the network. The fake clock advances only when the code
under test waits (an empty long-poll of the fake gateway, or the orchestrator's pause after a
server error), so timeouts and heartbeat intervals pass in simulated time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar, cast

import pytest
from pydantic import BaseModel
from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman import Task, Tool, Workflow
from herdsman.client.swarm.loader import load_from_server
from herdsman.client.swarm.orchestrator import SwarmConfig, SwarmOrchestrator, build_services
from herdsman.client.swarm.policies import StoredResourcePolicy
from herdsman.client.swarm.state import SwarmState
from herdsman.client.swarm.values import RunProgress
from herdsman.core.requester import Requester
from herdsman.core.statuses import WorkflowRunStatus

M = TypeVar("M", bound=BaseModel)


class FakeClock:
    """Seconds that pass only when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def wait(self, seconds: float) -> None:
        """An empty long-poll: the server held the request this long."""
        self.waits.append(seconds)
        self.advance(seconds)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)


MakeGateway = Callable[..., InMemorySwarmGateway]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_gateway(clock: FakeClock) -> MakeGateway:
    """A gateway holding tasks 1..num_tasks and ``edges`` (upstream, downstream).

    ``array_of`` and ``resources_of`` map a task id to its array / resources (default 1).
    Other keyword arguments go to :class:`InMemorySwarmGateway`.
    """

    def make(
        num_tasks: int,
        edges: Iterable[tuple[int, int]] = (),
        *,
        array_of: Callable[[int], int] = lambda _: 1,
        resources_of: Callable[[int], int] = lambda _: 1,
        max_attempts: int = 3,
        **kwargs: Any,
    ) -> InMemorySwarmGateway:
        gateway = InMemorySwarmGateway(wait=clock.wait, **kwargs)
        for task_id in range(1, num_tasks + 1):
            gateway.add_task(
                task_id,
                array_id=array_of(task_id),
                task_resources_id=resources_of(task_id),
                max_attempts=max_attempts,
            )
        for upstream, downstream in edges:
            gateway.add_edge(upstream, downstream)
        return gateway

    return make


@pytest.fixture
def orchestrate(clock: FakeClock) -> Callable[..., tuple[SwarmOrchestrator, SwarmState, int]]:
    """A running run of the gateway's workflow, loaded from it, ready to ``run()``.

    Returns (orchestrator, state, run id). Keyword arguments are :class:`SwarmConfig` fields,
    plus ``distributor_alive``, ``confirm_stop`` and ``on_progress``.
    """

    def start(
        gateway: InMemorySwarmGateway,
        *,
        distributor_alive: Callable[[], bool] = lambda: True,
        confirm_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[RunProgress], None] | None = None,
        **config: Any,
    ) -> tuple[SwarmOrchestrator, SwarmState, int]:
        run = gateway.create_run(gateway.workflow_id, resume=False, reset_running_jobs=True)
        for status in ("I", "O", "R"):
            gateway.set_run_status(run.workflow_run_id, status)
        assert gateway.run_status(run.workflow_run_id) is WorkflowRunStatus.RUNNING
        state = SwarmState()
        policy = StoredResourcePolicy()
        load_from_server(state, gateway, gateway.workflow_id, policy=policy)
        state.set_initial_fringe()
        settings = SwarmConfig(**config)
        services = build_services(
            gateway,
            state,
            workflow_id=gateway.workflow_id,
            run_id=run.workflow_run_id,
            last_seq=run.last_seq,
            config=settings,
            policy=policy,
        )
        orchestrator = SwarmOrchestrator(
            state=state,
            gateway=gateway,
            run_id=run.workflow_run_id,
            services=services,
            config=settings,
            distributor_alive=distributor_alive,
            confirm_stop=confirm_stop,
            clock=clock,
            sleep=clock.sleep,
            on_progress=on_progress,
        )
        return orchestrator, state, run.workflow_run_id

    return start


class GatewayClusterRequester:
    """Stands in for Requester: serves ``GET /clusters/{name}`` from a fake gateway, only that.

    A Workflow resolves resources against the same clusters the fake server holds.
    """

    def __init__(self, gateway: InMemorySwarmGateway) -> None:
        self.gateway = gateway

    def get(self, path: str, reply: type[M], params: dict[str, Any] | None = None) -> M:
        name = path.removeprefix("/clusters/")
        if name == path:
            raise AssertionError(f"unit test sent an unexpected GET {path}")
        return reply.model_validate(self.gateway.get_cluster(name).model_dump())

    def put(self, path: str, *args: object, **kwargs: object) -> Any:
        raise AssertionError(f"unit test tried to PUT {path}")

    def post(self, path: str, *args: object, **kwargs: object) -> Any:
        raise AssertionError(f"unit test tried to POST {path}")


MakeWorkflow = Callable[..., tuple[Workflow, list[Task]]]


@pytest.fixture
def make_workflow() -> MakeWorkflow:
    """A workflow of independent tasks "fit" on cluster dummy, bound as far as the swarm cares.

    One task per dict in ``task_settings`` (keyword arguments of ``create_task``). The
    workflow gets the gateway's workflow id; each task gets id 1, 2, ..., array 1 and status G,
    and the gateway gets the task with its validated
    request as its resources row, as bind would write them. ``tool_settings`` are applied to
    the template with ``set_default_*`` (e.g. ``resource_scales``).
    """

    def make(
        gateway: InMemorySwarmGateway,
        task_settings: list[dict[str, Any]],
        *,
        template_scales: dict[str, Any] | None = None,
        max_concurrently_running: int = 100,
    ) -> tuple[Workflow, list[Task]]:
        tool = Tool("swarm-unit", requester=cast(Requester, GatewayClusterRequester(gateway)))
        tool.set_default_cluster_name("dummy")
        template = tool.get_task_template("fit", "fit {i}", node_args=["i"])
        if template_scales is not None:
            template.set_default_resource_scales(template_scales)
        workflow = tool.create_workflow(
            workflow_args="swarm-unit", max_concurrently_running=max_concurrently_running
        )
        tasks = [template.create_task(i=i, **settings) for i, settings in enumerate(task_settings)]
        workflow.add_tasks(tasks)
        workflow.workflow_id = gateway.workflow_id
        resolver = workflow.resolver()
        for task_id, task in enumerate(tasks, start=1):
            task.task_id, task.array_id, task.status = task_id, 1, "G"
            gateway.add_resources(task_id, resolver.resources(task).validated.requested)
            gateway.add_task(task_id, task_resources_id=task_id)
        return workflow, tasks

    return make
