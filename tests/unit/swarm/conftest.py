"""Fixtures for the swarm unit tests: a fake clock and runs on the in-memory server.

Nothing here reads the wall clock or the network. The fake clock advances only when the code
under test waits (an empty long-poll of the fake gateway, or the orchestrator's pause after a
server error), so timeouts and heartbeat intervals pass in simulated time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from herdsman.client.swarm.fake import InMemorySwarmGateway
from herdsman.client.swarm.loader import load_from_server
from herdsman.client.swarm.orchestrator import SwarmConfig, SwarmOrchestrator, build_services
from herdsman.client.swarm.state import SwarmState
from herdsman.core.statuses import WorkflowRunStatus


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
    plus ``distributor_alive``.
    """

    def start(
        gateway: InMemorySwarmGateway,
        *,
        distributor_alive: Callable[[], bool] = lambda: True,
        **config: Any,
    ) -> tuple[SwarmOrchestrator, SwarmState, int]:
        run = gateway.create_run(gateway.workflow_id, resume=False, reset_running_jobs=True)
        for status in ("I", "O", "R"):
            gateway.set_run_status(run.workflow_run_id, status)
        assert gateway.run_status(run.workflow_run_id) is WorkflowRunStatus.RUNNING
        state = SwarmState()
        load_from_server(state, gateway, gateway.workflow_id)
        state.set_initial_fringe()
        settings = SwarmConfig(**config)
        services = build_services(
            gateway,
            state,
            workflow_id=gateway.workflow_id,
            run_id=run.workflow_run_id,
            last_seq=run.last_seq,
            config=settings,
        )
        orchestrator = SwarmOrchestrator(
            state=state,
            gateway=gateway,
            run_id=run.workflow_run_id,
            services=services,
            config=settings,
            distributor_alive=distributor_alive,
            clock=clock,
            sleep=clock.sleep,
        )
        return orchestrator, state, run.workflow_run_id

    return start
