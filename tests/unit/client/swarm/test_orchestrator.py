"""SwarmOrchestrator: whole runs against the in-memory server, in simulated time.

Each test's ``cluster`` callable is what the distributor and workers do between two reads of
the change feed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman.client.swarm.orchestrator import SwarmConfig, SwarmOrchestrator
from herdsman.client.swarm.state import SwarmState
from herdsman.core.errors import ConfigurationError, ServerUnavailableError
from herdsman.core.lifecycle import ACTIVE_TASK_STATUSES
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus

Start = Callable[..., tuple[SwarmOrchestrator, SwarmState, int]]
MakeGateway = Callable[..., InMemorySwarmGateway]

RUN = WorkflowRunStatus


def finish_all(gateway: InMemorySwarmGateway) -> None:
    gateway.finish()


def finish_one(gateway: InMemorySwarmGateway) -> None:
    active = gateway.tasks_in(*ACTIVE_TASK_STATUSES)
    if active:
        gateway.finish(active[:1])


def chain(count: int) -> list[tuple[int, int]]:
    return [(task_id, task_id + 1) for task_id in range(1, count)]


def queued_ids(gateway: InMemorySwarmGateway) -> list[int]:
    return [task_id for request in gateway.queue_requests for task_id in request]


# --- running to the end ---------------------------------------------------------------------


def test_a_chain_runs_to_done_without_ever_waiting_on_the_feed(
    make_gateway: MakeGateway, orchestrate: Start, clock: Any
) -> None:
    gateway = make_gateway(50, chain(50), cluster=finish_all)
    orchestrator, _, run_id = orchestrate(gateway)
    result = orchestrator.run()
    assert result.status is RUN.DONE
    assert result.done_task_ids == frozenset(range(1, 51)) and not result.failed_task_ids
    assert result.num_tasks == 50 and "done" in result.reason
    assert gateway.run_status(run_id) is RUN.DONE
    # Every finished task's successor was queued on the next pass: no empty long-poll at all.
    assert clock.waits == []
    assert queued_ids(gateway) == list(range(1, 51))


def test_a_fork_join_queues_the_join_once_after_all_branches(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    edges = [(1, b) for b in range(2, 12)] + [(b, 12) for b in range(2, 12)]
    gateway = make_gateway(12, edges, cluster=finish_one)
    orchestrator, _, _ = orchestrate(gateway)
    assert orchestrator.run().status is RUN.DONE
    queued = queued_ids(gateway)
    assert queued[-1] == 12 and queued.count(12) == 1


# --- limits ----------------------------------------------------------------------------------


def test_the_workflow_limit_is_never_exceeded(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    gateway = make_gateway(30, max_concurrently_running=4, cluster=finish_one)
    orchestrator, _, _ = orchestrate(gateway)
    assert orchestrator.run().status is RUN.DONE
    assert gateway.peak_active == 4


def test_array_limits_are_never_exceeded(make_gateway: MakeGateway, orchestrate: Start) -> None:
    gateway = make_gateway(
        40,
        array_of=lambda task_id: 1 + task_id % 2,
        max_concurrently_running=5,
        array_limits={1: 2},
        cluster=finish_one,
    )
    orchestrator, _, _ = orchestrate(gateway)
    assert orchestrator.run().status is RUN.DONE
    assert gateway.peak_active_by_array[1] == 2
    assert gateway.peak_active == 5


def test_limit_zero_pauses_until_a_heartbeat_brings_a_new_limit(
    make_gateway: MakeGateway, orchestrate: Start, clock: Any
) -> None:
    queued_while_paused: list[int] = []

    def cluster(gateway: InMemorySwarmGateway) -> None:
        if gateway.max_concurrently_running == 0 and clock.now >= 1_100:
            queued_while_paused.append(len(gateway.queue_requests))
            gateway.set_limits(2, {})
        finish_one(gateway)

    gateway = make_gateway(6, max_concurrently_running=0, cluster=cluster)
    orchestrator, _, _ = orchestrate(gateway, heartbeat_interval=30.0)
    assert orchestrator.run().status is RUN.DONE
    assert queued_while_paused == [0]
    assert gateway.peak_active == 2


def test_nothing_is_queued_before_a_heartbeat_has_brought_the_limits(
    make_gateway: MakeGateway, orchestrate: Start, clock: Any
) -> None:
    gateway = make_gateway(10, max_concurrently_running=2, cluster=finish_one)
    gateway.fail_heartbeats(1)
    started = clock.now
    orchestrator, _, _ = orchestrate(gateway, heartbeat_interval=30.0)
    assert orchestrator.run().status is RUN.DONE
    assert gateway.peak_active == 2
    assert clock.now - started >= 30.0  # the first queue request waited for the second beat


# --- retries and failures -----------------------------------------------------------------------


def test_a_retried_task_is_queued_again_and_the_run_finishes(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    failed_once: set[int] = set()

    def cluster(gateway: InMemorySwarmGateway) -> None:
        for task_id in gateway.tasks_in(*ACTIVE_TASK_STATUSES):
            if task_id == 2 and task_id not in failed_once:
                failed_once.add(task_id)
                gateway.fail([task_id], resource_error=True)
            else:
                gateway.finish([task_id])

    gateway = make_gateway(3, chain(3), cluster=cluster)
    orchestrator, _, _ = orchestrate(gateway)
    assert orchestrator.run().status is RUN.DONE
    assert queued_ids(gateway) == [1, 2, 2, 3]


def test_a_task_killed_for_resources_is_queued_again_with_more_each_time(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    kills = {2: 2}  # task id -> resource kills still to come

    def cluster(gateway: InMemorySwarmGateway) -> None:
        for task_id in gateway.tasks_in(*ACTIVE_TASK_STATUSES):
            if kills.get(task_id):
                kills[task_id] -= 1
                gateway.fail([task_id], resource_error=True)
            else:
                gateway.finish([task_id])

    gateway = make_gateway(3, chain(3), cluster=cluster)
    orchestrator, _, _ = orchestrate(gateway)
    assert orchestrator.run().status is RUN.DONE
    assert queued_ids(gateway) == [1, 2, 2, 2, 3]
    assert [r["memory"] for r in gateway.requests_of(2)] == [1.0, 1.5, 2.25]
    assert [r["runtime"] for r in gateway.requests_of(2)] == [600, 900, 1350]
    assert gateway.requests_of(3) == gateway.requests_of(1)  # untouched


def test_stored_settings_move_a_killed_task_to_its_fallback_queue(
    orchestrate: Start, clock: Any
) -> None:
    killed: set[int] = set()

    def cluster(gateway: InMemorySwarmGateway) -> None:
        for task_id in gateway.tasks_in(*ACTIVE_TASK_STATUSES):
            if task_id not in killed:
                killed.add(task_id)
                gateway.fail([task_id], resource_error=True)
            else:
                gateway.finish([task_id])

    gateway = InMemorySwarmGateway(cluster=cluster, wait=clock.wait)
    gateway.add_queue("small", {"memory": [0.0, 1.0]})
    gateway.add_queue("big", {"memory": [0.0, 8.0]})
    gateway.add_resources(1, {"queue": "small", "memory": 1.0})
    gateway.add_task(1, resource_scales='{"memory": 3}', fallback_queues='["big"]')
    orchestrator, _, _ = orchestrate(gateway)
    assert orchestrator.run().status is RUN.DONE
    assert gateway.requests_of(1) == [
        {"queue": "small", "memory": 1.0},
        {"queue": "big", "memory": 4.0},
    ]


def test_resources_that_cannot_be_computed_end_the_run_in_error(
    orchestrate: Start, clock: Any
) -> None:
    def cluster(gateway: InMemorySwarmGateway) -> None:
        gateway.fail(gateway.tasks_in(*ACTIVE_TASK_STATUSES), resource_error=True)

    gateway = InMemorySwarmGateway(cluster=cluster, wait=clock.wait)
    gateway.add_task(1, fallback_queues='["gpu"]', resource_scales='{"memory": 10000}')
    orchestrator, _, run_id = orchestrate(gateway)
    result = orchestrator.run()
    assert result.status is RUN.ERROR
    assert "cannot give task 1 new resources" in result.reason
    assert "'gpu' is not a queue of cluster 'dummy'" in result.reason
    assert gateway.run_status(run_id) is RUN.ERROR
    assert gateway.run_messages(run_id)[-1] == result.reason


def test_an_unreachable_server_delays_the_adjustment_only(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    killed: set[int] = set()

    def cluster(gateway: InMemorySwarmGateway) -> None:
        for task_id in gateway.tasks_in(*ACTIVE_TASK_STATUSES):
            if task_id not in killed:
                killed.add(task_id)
                gateway.fail([task_id], resource_error=True)
                gateway.fail_resource_writes(3)
            else:
                gateway.finish([task_id])

    gateway = make_gateway(1, cluster=cluster)
    orchestrator, _, _ = orchestrate(gateway)
    assert orchestrator.run().status is RUN.DONE
    assert [r["memory"] for r in gateway.requests_of(1)] == [1.0, 1.5]


def test_a_fatal_task_blocks_its_downstream_and_the_run_ends_in_error(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    def cluster(gateway: InMemorySwarmGateway) -> None:
        gateway.fail([1])
        gateway.finish()

    gateway = make_gateway(5, [(1, 2), (3, 4), (4, 5)], max_attempts=2, cluster=cluster)
    orchestrator, _, run_id = orchestrate(gateway)
    result = orchestrator.run()
    assert result.status is RUN.ERROR
    assert result.failed_task_ids == {1}
    assert result.done_task_ids == {3, 4, 5}  # the other branch finished
    assert 2 not in queued_ids(gateway)
    assert "wait on failed upstreams" in result.reason
    assert gateway.run_status(run_id) is RUN.ERROR
    assert gateway.run_messages(run_id)[-1] == result.reason


def test_fail_fast_ends_the_run_at_the_first_fatal_task(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    def cluster(gateway: InMemorySwarmGateway) -> None:
        gateway.fail([1])  # the others keep running

    gateway = make_gateway(10, max_attempts=1, cluster=cluster)
    orchestrator, _, _ = orchestrate(gateway, fail_fast=True)
    result = orchestrator.run()
    assert result.status is RUN.ERROR and "fail_fast" in result.reason
    assert result.failed_task_ids == {1} and not result.done_task_ids


def test_fail_after_n_executions_ends_the_run_in_error(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    gateway = make_gateway(10, cluster=finish_one)
    orchestrator, _, _ = orchestrate(gateway, fail_after_n_executions=3)
    result = orchestrator.run()
    assert result.status is RUN.ERROR and "fail_after_n_executions" in result.reason
    assert len(result.done_task_ids) == 3


# --- ways out ----------------------------------------------------------------------------------


def test_timeout_ends_in_error_saying_submitted_jobs_keep_running(
    make_gateway: MakeGateway, orchestrate: Start, clock: Any
) -> None:
    gateway = make_gateway(3)  # nobody ever runs the tasks
    started = clock.now
    orchestrator, _, run_id = orchestrate(gateway, seconds_until_timeout=100)
    result = orchestrator.run()
    assert result.status is RUN.ERROR
    assert "seconds_until_timeout" in result.reason and "keep running" in result.reason
    assert clock.now - started == pytest.approx(100)
    assert gateway.run_status(run_id) is RUN.ERROR


def test_a_stop_seen_on_the_feed_ends_the_run_stopped(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    run_ids: list[int] = []

    def cluster(gateway: InMemorySwarmGateway) -> None:
        if gateway.finish():
            gateway.set_server_run_status(run_ids[0], RUN.STOPPED)

    gateway = make_gateway(3, chain(3), cluster=cluster)
    orchestrator, _, run_id = orchestrate(gateway)
    run_ids.append(run_id)
    result = orchestrator.run()
    assert result.status is RUN.STOPPED
    assert gateway.run_history(run_id)[-1] is RUN.STOPPED  # nothing recorded after it
    assert queued_ids(gateway) == [1]


def test_a_stop_seen_by_the_heartbeat_ends_the_run_before_scheduling(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    gateway = make_gateway(3)
    orchestrator, _, run_id = orchestrate(gateway)
    gateway.set_server_run_status(run_id, RUN.STOPPED)
    assert orchestrator.run().status is RUN.STOPPED
    assert gateway.queue_requests == []


@pytest.mark.parametrize("resume", [RUN.COLD_RESUME, RUN.HOT_RESUME])
def test_a_resume_by_a_new_run_stops_this_one_and_leaves_its_end_to_the_server(
    make_gateway: MakeGateway, orchestrate: Start, resume: WorkflowRunStatus
) -> None:
    gateway = make_gateway(3)
    orchestrator, _, run_id = orchestrate(gateway)
    gateway.set_server_run_status(run_id, resume)
    assert orchestrator.run().status is resume
    # The server ends the run (T) once the kills the resume asked for are carried out.
    assert gateway.run_status(run_id) is resume
    assert gateway.queue_requests == []


def test_a_dead_distributor_ends_the_run_in_error(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    checks = iter([True, True])
    gateway = make_gateway(5, chain(5), cluster=finish_all)
    orchestrator, _, run_id = orchestrate(gateway, distributor_alive=lambda: next(checks, False))
    result = orchestrator.run()
    assert result.status is RUN.ERROR and "distributor" in result.reason
    assert result.done_task_ids == {1, 2}
    assert gateway.run_status(run_id) is RUN.ERROR


# --- the heartbeat -------------------------------------------------------------------------------


def test_five_failed_heartbeats_in_a_row_end_the_run(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    gateway = make_gateway(3)
    gateway.fail_heartbeats(5)
    orchestrator, _, _ = orchestrate(gateway, heartbeat_interval=1.0)
    result = orchestrator.run()
    assert result.status is RUN.ERROR and "5 heartbeats in a row failed" in result.reason


def test_a_successful_heartbeat_resets_the_failure_count(
    make_gateway: MakeGateway, orchestrate: Start, clock: Any
) -> None:
    gateway = make_gateway(3, cluster=lambda gw: gw.finish() if clock.now > 1_012 else None)
    gateway.fail_heartbeats(4)
    orchestrator, _, _ = orchestrate(gateway, heartbeat_interval=1.0)
    original = gateway.heartbeat
    calls: list[int] = []

    def heartbeat(run_id: int, next_report_seconds: float) -> Any:
        calls.append(1)
        if len(calls) == 6:  # after 4 failures and 1 success, 4 more failures
            gateway.fail_heartbeats(4)
        return original(run_id, next_report_seconds)

    gateway.heartbeat = heartbeat  # type: ignore[method-assign]
    result = orchestrator.run()
    assert result.status is RUN.DONE
    assert gateway.num_heartbeats >= 2


# --- safety nets ---------------------------------------------------------------------------------


def test_the_full_sync_catches_a_change_the_feed_missed(
    make_gateway: MakeGateway, orchestrate: Start, clock: Any
) -> None:
    lost: list[int] = []

    def cluster(gateway: InMemorySwarmGateway) -> None:
        if not lost and gateway.task_status(1) is TaskStatus.QUEUED:
            lost.append(1)
            gateway.set_task_status(1, TaskStatus.DONE, record=False)
        else:
            gateway.finish()

    gateway = make_gateway(3, chain(3), cluster=cluster)
    started = clock.now
    orchestrator, _, _ = orchestrate(gateway, wedged_workflow_sync_interval=20.0)
    assert orchestrator.run().status is RUN.DONE
    assert clock.now - started >= 20.0  # task 2 was found only by the sync


def test_an_unreachable_feed_is_retried_after_a_pause(
    make_gateway: MakeGateway, orchestrate: Start, clock: Any
) -> None:
    failures = [ServerUnavailableError("feed down")]

    def cluster(gateway: InMemorySwarmGateway) -> None:
        if failures:
            raise failures.pop()
        gateway.finish()

    gateway = make_gateway(2, chain(2), cluster=cluster)
    orchestrator, _, _ = orchestrate(gateway, server_retry_pause=2.0)
    assert orchestrator.run().status is RUN.DONE
    assert clock.sleeps == [2.0]


@pytest.mark.parametrize(
    ("raised", "recorded"),
    [(RuntimeError("bug"), RUN.ERROR), (KeyboardInterrupt(), RUN.STOPPED)],
)
def test_an_exception_ends_the_run_on_the_server_and_propagates(
    make_gateway: MakeGateway, orchestrate: Start, raised: BaseException, recorded: RUN
) -> None:
    def cluster(gateway: InMemorySwarmGateway) -> None:
        raise raised

    gateway = make_gateway(2, cluster=cluster)
    orchestrator, _, run_id = orchestrate(gateway)
    with pytest.raises(type(raised)):
        orchestrator.run()
    assert gateway.run_status(run_id) is recorded


def test_tasks_finished_elsewhere_end_the_run_done(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    gateway = make_gateway(2)
    orchestrator, _, _ = orchestrate(gateway)
    for task_id in (1, 2):  # a previous run's jobs, still running, finish now
        gateway.set_task_status(task_id, TaskStatus.DONE)
    assert orchestrator.run().status is RUN.DONE


@pytest.mark.parametrize(
    "bad",
    [
        {"heartbeat_interval": 0},
        {"heartbeat_report_by_buffer": 0.5},
        {"max_poll_seconds": 60},
        {"fail_after_n_executions": 0},
        {"server_retry_pause": -1},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        SwarmConfig(**bad)


# --- Ctrl-C ----------------------------------------------------------------------------------


def _interrupted_once() -> Callable[[], bool]:
    """A distributor check that raises KeyboardInterrupt once, as a Ctrl-C mid-loop would."""
    calls = iter([True, "interrupt"])

    def alive() -> bool:
        if next(calls, True) == "interrupt":
            raise KeyboardInterrupt
        return True

    return alive


def test_a_declined_ctrl_c_lets_the_run_go_on(
    make_gateway: MakeGateway, orchestrate: Start
) -> None:
    gateway = make_gateway(5, chain(5), cluster=finish_all)
    asked: list[bool] = []

    def decline() -> bool:
        asked.append(True)
        return False

    orchestrator, _, _run_id = orchestrate(
        gateway, distributor_alive=_interrupted_once(), confirm_stop=decline
    )
    result = orchestrator.run()

    assert asked == [True]
    assert result.status is RUN.DONE and len(result.done_task_ids) == 5


def test_a_confirmed_ctrl_c_stops_the_run(make_gateway: MakeGateway, orchestrate: Start) -> None:
    gateway = make_gateway(5, chain(5), cluster=finish_all)
    orchestrator, _, run_id = orchestrate(
        gateway, distributor_alive=_interrupted_once(), confirm_stop=lambda: True
    )
    with pytest.raises(KeyboardInterrupt):
        orchestrator.run()

    # Stopped (S): the server then asks the run's distributor to kill its jobs.
    assert gateway.run_status(run_id) is RUN.STOPPED
