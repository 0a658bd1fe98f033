"""Why a run ended, as the orchestrator's result says it: the facts a run's summary is made of."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman.client.swarm.orchestrator import RunEnding, SwarmOrchestrator
from herdsman.client.swarm.state import SwarmState
from herdsman.client.swarm.values import RunProgress
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus

Start = Callable[..., tuple[SwarmOrchestrator, SwarmState, int]]
MakeGateway = Callable[..., InMemorySwarmGateway]


def test_a_done_run_says_done_and_reports_its_progress_on_every_pass(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    seen: list[RunProgress] = []
    gateway = make_gateway(3, [(1, 2), (2, 3)], cluster=lambda g: g.finish())
    orchestrator, _, _ = orchestrate(gateway, on_progress=seen.append)

    result = orchestrator.run()

    assert result.ending is RunEnding.DONE
    assert result.progress == RunProgress(
        total=3, done=3, running=0, queued=0, failed=0, newly_done=3
    )
    assert seen[0].done == 0 and seen[0].total == 3
    assert [p.done for p in seen] == sorted(p.done for p in seen)  # never goes backwards
    assert result.first_failed_task_id is None


def test_fail_fast_names_the_first_task_that_failed(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    def cluster(gateway: InMemorySwarmGateway) -> None:
        if gateway.task_status(2) is not TaskStatus.ERROR_FATAL:
            gateway.fail([2])

    gateway = make_gateway(4, max_attempts=1, cluster=cluster)
    orchestrator, _, _ = orchestrate(gateway, fail_fast=True)

    result = orchestrator.run()

    assert result.ending is RunEnding.FAIL_FAST
    assert result.first_failed_task_id == 2
    assert result.progress is not None and result.progress.failed == 1


def test_failed_tasks_end_the_run_when_the_rest_waits_behind_them(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    gateway = make_gateway(2, [(1, 2)], max_attempts=1, cluster=lambda g: g.fail([1]))
    orchestrator, _, _ = orchestrate(gateway)

    result = orchestrator.run()

    assert result.ending is RunEnding.TASKS_FAILED
    assert result.progress is not None
    assert (result.progress.failed, result.progress.waiting) == (1, 1)


def test_the_timeout_is_named(make_gateway: MakeGateway, orchestrate: Start) -> None:
    gateway = make_gateway(2)
    orchestrator, _, _ = orchestrate(gateway, seconds_until_timeout=30)

    result = orchestrator.run()

    assert result.ending is RunEnding.TIMEOUT
    assert result.progress is not None and result.progress.queued == 2


def test_a_dead_distributor_is_named(make_gateway: MakeGateway, orchestrate: Start) -> None:
    gateway = make_gateway(2)
    orchestrator, _, _ = orchestrate(gateway, distributor_alive=lambda: False)

    assert orchestrator.run().ending is RunEnding.DISTRIBUTOR_DIED


def test_a_stop_from_the_server_is_told_apart_from_other_ends(
    make_gateway: MakeGateway, orchestrate: Start, clock: Any
) -> None:
    for server_status, ending in (
        (WorkflowRunStatus.STOPPED, RunEnding.STOPPED),
        (WorkflowRunStatus.COLD_RESUME, RunEnding.TAKEN_OVER),
        (WorkflowRunStatus.ERROR, RunEnding.ENDED_ELSEWHERE),
    ):
        gateway = make_gateway(2)
        orchestrator, _, run_id = orchestrate(gateway)
        gateway.set_server_run_status(run_id, server_status)
        assert orchestrator.run().ending is ending, server_status
