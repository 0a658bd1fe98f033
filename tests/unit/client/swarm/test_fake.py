"""InMemorySwarmGateway behaves like the server's swarm routes, as the swarm relies on."""

from __future__ import annotations

import pytest
from tests.support.swarm_gateway import DEFAULT_REQUEST, FEED_PAGE_SIZE, InMemorySwarmGateway

from herdsman.core.changes import ChangeFilter, ChangeKind
from herdsman.core.errors import (
    InvalidResourceError,
    NotFoundError,
    ServerUnavailableError,
    TransitionRefused,
    WorkflowAlreadyComplete,
    WorkflowAlreadyExists,
)
from herdsman.core.schemas.swarm import AdjustedResourcesItemIn
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus

T = TaskStatus


def gateway_with(num_tasks: int, max_attempts: int = 2) -> tuple[InMemorySwarmGateway, int]:
    gateway = InMemorySwarmGateway(workflow_id=3)
    for task_id in range(1, num_tasks + 1):
        gateway.add_task(task_id, max_attempts=max_attempts)
    run = gateway.create_run(3, resume=False, reset_running_jobs=True)
    return gateway, run.workflow_run_id


def test_queue_moves_registering_and_adjusting_tasks_and_answers_every_status() -> None:
    gateway, run_id = gateway_with(3)
    gateway.set_task_status(2, T.ADJUSTING_RESOURCES)
    gateway.set_task_status(3, T.DONE)
    reply = gateway.queue_tasks(run_id, (1, 2, 3))
    assert reply.statuses == ["Q", "Q", "D"]
    again = gateway.queue_tasks(run_id, (1,))
    assert again.statuses == ["Q"]
    assert gateway.queue_requests == [(1, 2, 3), (1,)]


def test_every_change_gets_the_next_sequence_number() -> None:
    gateway, run_id = gateway_with(2)
    start = gateway.last_seq
    gateway.queue_tasks(run_id, (1, 2))
    gateway.finish([1])
    feed = gateway.changes(3, after=start, timeout=0)
    assert [(c.seq, c.id, c.status) for c in feed.changes] == [
        (start + 1, 1, "Q"),
        (start + 2, 2, "Q"),
        (start + 3, 1, "D"),
    ]
    assert feed.last_seq == start + 3
    assert gateway.changes(3, after=feed.last_seq, timeout=0).changes == []


def test_feed_filters_kinds_and_pages() -> None:
    gateway, run_id = gateway_with(FEED_PAGE_SIZE + 5)
    start = gateway.last_seq
    gateway.queue_tasks(run_id, tuple(range(1, FEED_PAGE_SIZE + 6)))
    gateway.set_server_run_status(run_id, WorkflowRunStatus.STOPPED)
    # Like the server, one call passes over pages holding nothing wanted.
    found = gateway.changes(
        3, after=start, timeout=0, kinds=ChangeFilter.of({ChangeKind.RUN: None})
    )
    assert [(c.kind, c.status) for c in found.changes] == [("R", "S")]
    assert found.last_seq > start + FEED_PAGE_SIZE


def test_failed_attempts_are_retried_until_attempts_are_spent() -> None:
    gateway, run_id = gateway_with(1, max_attempts=2)
    gateway.queue_tasks(run_id, (1,))
    gateway.fail([1])
    assert gateway.task_status(1) is T.REGISTERING
    gateway.queue_tasks(run_id, (1,))
    gateway.fail([1])
    assert gateway.task_status(1) is T.ERROR_FATAL


def test_a_resource_kill_goes_to_adjusting_resources() -> None:
    gateway, run_id = gateway_with(1)
    gateway.queue_tasks(run_id, (1,))
    gateway.fail([1], resource_error=True)
    assert gateway.task_status(1) is T.ADJUSTING_RESOURCES


def test_a_stop_kills_queued_attempts_at_once_and_others_when_confirmed() -> None:
    gateway, run_id = gateway_with(3, max_attempts=1)
    gateway.queue_tasks(run_id, (1, 2))
    gateway.run_tasks([1])
    gateway.set_run_status(run_id, "S")
    assert [gateway.task_status(t) for t in (1, 2, 3)] == [T.RUNNING, T.REGISTERING, T.REGISTERING]
    gateway.finish([1])  # a report from an attempt told to die is ignored
    assert gateway.task_status(1) is T.RUNNING
    assert gateway.confirm_kills() == [1]
    # Back to wait for the next run, not failed, although its one attempt was used.
    assert gateway.task_status(1) is T.REGISTERING
    assert gateway.tasks_page(3, 0, 10).tasks[0].num_attempts == 1


def test_runs_follow_the_run_state_machine() -> None:
    gateway, run_id = gateway_with(1)
    assert gateway.run_history(run_id) == [
        WorkflowRunStatus.LINKING,
        WorkflowRunStatus.BOUND,
    ]
    with pytest.raises(WorkflowAlreadyExists):
        gateway.create_run(3, resume=False, reset_running_jobs=True)
    with pytest.raises(TransitionRefused) as refused:
        gateway.set_run_status(run_id, "D")
    assert refused.value.details["status"] == "B"
    for status in "IOR":
        gateway.set_run_status(run_id, status)
    assert gateway.set_run_status(run_id, "O").status == "R"  # untimely: ignored
    newer = gateway.create_run(3, resume=True, reset_running_jobs=True)
    assert gateway.run_status(run_id) is WorkflowRunStatus.COLD_RESUME
    assert gateway.get_run(newer.workflow_run_id).status == "B"
    with pytest.raises(NotFoundError):
        gateway.get_run(99)


def test_a_resume_restarts_unfinished_tasks_and_reports_the_position_before_it() -> None:
    gateway, run_id = gateway_with(3, max_attempts=1)
    gateway.queue_tasks(run_id, (1, 2, 3))
    gateway.finish([1])
    gateway.fail([2])
    before = gateway.last_seq
    newer = gateway.create_run(3, resume=True, reset_running_jobs=False)
    assert newer.last_seq == before
    assert gateway.run_status(run_id) is WorkflowRunStatus.HOT_RESUME
    assert [gateway.task_status(t) for t in (1, 2, 3)] == [T.DONE, T.REGISTERING, T.REGISTERING]
    assert gateway.tasks_page(3, 0, 10).tasks[1].num_attempts == 0


def test_a_complete_workflow_cannot_start_a_run() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_task(1, status=T.DONE)
    with pytest.raises(WorkflowAlreadyComplete):
        gateway.create_run(1, resume=False, reset_running_jobs=True)


def test_heartbeats_report_status_limits_and_injected_failures() -> None:
    gateway, run_id = gateway_with(1)
    gateway.set_limits(4, {1: 2})
    gateway.fail_heartbeats(1)
    with pytest.raises(ServerUnavailableError):
        gateway.heartbeat(run_id, 93.0)
    beat = gateway.heartbeat(run_id, 93.0)
    assert beat.status == "B"
    assert beat.concurrency.max_concurrently_running == 4
    assert beat.concurrency.array_limits == {1: 2}
    assert gateway.report_by(run_id) == 93.0


def test_pages_of_tasks_and_edges_cover_everything_once() -> None:
    gateway = InMemorySwarmGateway()
    for task_id in (5, 1, 9, 3):
        gateway.add_task(task_id)
    gateway.add_edge(1, 3)
    gateway.add_edge(3, 5)
    gateway.add_edge(5, 9)
    seen, after = [], 0
    while True:
        page = gateway.tasks_page(1, after, 3)
        seen += [t.task_id for t in page.tasks]
        if page.next_task_id is None:
            break
        after = page.next_task_id
    assert seen == [1, 3, 5, 9]
    assert gateway.tasks_page(1, 0, 10).tasks[1].num_upstreams == 1
    first = gateway.edges_page(1, 0, 2)
    assert first.edges == [(1, 3), (3, 5)] and first.next_offset == 2
    assert gateway.edges_page(1, 2, 2).next_offset is None


def test_peak_active_tracks_the_most_tasks_ever_active() -> None:
    gateway, run_id = gateway_with(3)
    gateway.queue_tasks(run_id, (1, 2))
    gateway.finish()
    gateway.queue_tasks(run_id, (3,))
    assert gateway.peak_active == 2 and gateway.peak_active_by_array == {1: 2}


# --- resources -----------------------------------------------------------------------------------


def test_tasks_get_a_default_row_and_clusters_their_queues() -> None:
    gateway, _ = gateway_with(1)
    gateway.add_queue("big", {"memory": (0.0, 8.0)})
    cluster = gateway.get_cluster("dummy")
    assert [(q.name, q.is_default) for q in cluster.queues] == [("default", True), ("big", False)]
    assert cluster.queues[1].limits == {"memory": [0.0, 8.0]}
    with pytest.raises(NotFoundError):
        gateway.get_cluster("slurm")
    read = gateway.read_resources([1], task_ids=[1])
    assert read.task_resources_ids == [1]
    (row,) = read.resources
    assert (row.kind, row.cluster, row.queue, row.requested) == (
        "validated",
        "dummy",
        "default",
        dict(DEFAULT_REQUEST),
    )
    with pytest.raises(NotFoundError):
        gateway.read_resources([99])


def test_adjusted_rows_are_one_per_item_and_their_queue_is_checked() -> None:
    gateway, _ = gateway_with(2)
    items = [
        AdjustedResourcesItemIn(task_id=1, requested={"queue": "default", "memory": 2.0}),
        AdjustedResourcesItemIn(task_id=2, requested={"queue": "default", "memory": 2.0}),
    ]
    first, second = gateway.create_adjusted_resources(3, items).task_resources_ids
    assert first != second and gateway.resources_row(first)[0] == "adjusted"
    bad = AdjustedResourcesItemIn(task_id=1, requested={"queue": "gpu"})
    with pytest.raises(InvalidResourceError, match="'gpu' does not exist in cluster 'dummy'"):
        gateway.create_adjusted_resources(3, [bad])
    gateway.fail_resource_writes(1)
    with pytest.raises(ServerUnavailableError):
        gateway.create_adjusted_resources(3, items)
    assert gateway.num_resource_writes == 1


def test_queueing_with_a_resources_id_gives_the_tasks_that_row() -> None:
    gateway, run_id = gateway_with(2)
    (new,) = gateway.create_adjusted_resources(
        3, [AdjustedResourcesItemIn(task_id=1, requested={"queue": "default", "memory": 5.0})]
    ).task_resources_ids
    gateway.queue_tasks(run_id, (1,), new)
    gateway.queue_tasks(run_id, (2,))
    assert gateway.requests_of(1) == [{"queue": "default", "memory": 5.0}]
    assert gateway.requests_of(2) == [dict(DEFAULT_REQUEST)]
    assert gateway.read_resources([], task_ids=[1]).task_resources_ids == [new]
    with pytest.raises(NotFoundError):
        gateway.queue_tasks(run_id, (2,), 999)
