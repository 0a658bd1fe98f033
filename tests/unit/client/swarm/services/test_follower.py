"""FollowerService: reads the change feed in order and turns it into updates."""

from __future__ import annotations

from tests.support.swarm_gateway import FEED_PAGE_SIZE, InMemorySwarmGateway

from herdsman.client.swarm.services.follower import FollowerService
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus


def started(num_tasks: int) -> tuple[InMemorySwarmGateway, int, int]:
    gateway = InMemorySwarmGateway()
    for task_id in range(1, num_tasks + 1):
        gateway.add_task(task_id)
    run = gateway.create_run(1, resume=False, reset_running_jobs=True)
    return gateway, run.workflow_run_id, gateway.last_seq  # after the run's own L and B


def test_task_changes_become_an_update_with_the_latest_status() -> None:
    gateway, run_id, seq = started(2)
    follower = FollowerService(gateway, workflow_id=1, run_id=run_id, after=seq)
    gateway.queue_tasks(run_id, (1, 2))
    gateway.finish([1])
    news = follower.tick(timeout=0)
    # Only statuses that change scheduling are followed: 1 finished; 2's queueing is not news.
    assert dict(news.update.statuses) == {1: TaskStatus.DONE}
    assert news.run_status is None and news.num_changes == 1
    assert follower.last_seq == gateway.last_seq


def test_only_this_runs_status_changes_are_reported() -> None:
    gateway, run_id, seq = started(1)
    follower = FollowerService(gateway, workflow_id=1, run_id=run_id, after=seq)
    gateway.set_run_status(run_id, "I")
    newer = gateway.create_run(1, resume=True, reset_running_jobs=False)
    gateway.set_run_status(newer.workflow_run_id, "I")
    news = follower.tick(timeout=0)
    assert news.run_status is WorkflowRunStatus.HOT_RESUME


def test_the_runs_own_start_up_is_reported_from_the_create_position() -> None:
    gateway = InMemorySwarmGateway()
    gateway.add_task(1)
    run = gateway.create_run(1, resume=False, reset_running_jobs=True)
    follower = FollowerService(gateway, workflow_id=1, run_id=1, after=run.last_seq)
    assert follower.tick(timeout=0).run_status is WorkflowRunStatus.BOUND


def test_changes_before_the_start_position_are_not_news() -> None:
    gateway, run_id, _ = started(1)
    gateway.queue_tasks(run_id, (1,))
    follower = FollowerService(gateway, workflow_id=1, run_id=run_id, after=gateway.last_seq)
    assert not follower.tick(timeout=0).update


def test_an_empty_poll_waits_and_keeps_the_position() -> None:
    waited: list[float] = []
    gateway, run_id, seq = started(1)
    gateway.wait = waited.append
    follower = FollowerService(gateway, workflow_id=1, run_id=run_id, after=seq)
    news = follower.tick(timeout=2.5)
    assert not news.update and waited == [2.5]
    assert follower.last_seq == seq


def test_a_long_feed_is_read_page_by_page_without_waiting() -> None:
    waited: list[float] = []
    gateway, run_id, seq = started(FEED_PAGE_SIZE + 1)
    gateway.wait = waited.append
    follower = FollowerService(gateway, workflow_id=1, run_id=run_id, after=seq)
    gateway.queue_tasks(run_id, tuple(range(1, FEED_PAGE_SIZE + 2)))
    gateway.finish(list(range(1, FEED_PAGE_SIZE + 2)))
    seen: dict[int, TaskStatus] = {}
    pages = 0
    while len(seen) < FEED_PAGE_SIZE + 1 and pages < 10:
        seen.update(follower.tick(timeout=5).update.statuses)
        pages += 1
    assert set(seen.values()) == {TaskStatus.DONE} and len(seen) == FEED_PAGE_SIZE + 1
    assert pages > 1  # more than one page was needed, and none of them waited
    assert waited == []
