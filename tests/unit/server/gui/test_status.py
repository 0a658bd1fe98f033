"""How statuses look and what the GUI says about a run's health and a waiting task."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from herdsman.core.statuses import TaskInstanceStatus, TaskStatus, WorkflowRunStatus, WorkflowStatus
from herdsman.server.gui.status import (
    Bucket,
    bar,
    bucket_of,
    health,
    pending_words,
    status_name,
    time_left,
    why_not_running,
)
from herdsman.server.queries.tasks import Blockers
from herdsman.server.queries.workflows import RunRow

NOW = dt.datetime(2026, 1, 2, 12, 0, 0)


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [
        ("task", TaskStatus),
        ("instance", TaskInstanceStatus),
        ("workflow", WorkflowStatus),
        ("run", WorkflowRunStatus),
    ],
)
def test_every_status_of_every_kind_has_a_colour_and_a_name(kind: str, statuses: type) -> None:
    for status in statuses:
        assert bucket_of(kind, status.value) in Bucket
        assert status_name(kind, status.value) == status.name.lower().replace("_", " ")


def test_task_buckets_follow_the_lifecycle() -> None:
    assert bucket_of("task", "G") is Bucket.PENDING
    assert {bucket_of("task", s) for s in "QIO"} == {Bucket.QUEUED}
    assert bucket_of("task", "R") is Bucket.RUNNING
    assert bucket_of("task", "D") is Bucket.DONE
    assert {bucket_of("task", s) for s in "EA"} == {Bucket.ERROR}
    assert bucket_of("task", "F") is Bucket.FATAL
    assert bucket_of("task", "?") is Bucket.PENDING
    assert status_name("task", "?") == "?"


def test_a_bar_counts_every_bucket_in_order_and_shares_add_up() -> None:
    segments = bar({"D": 6, "F": 1, "E": 1, "Q": 1, "O": 1})
    assert [s.bucket for s in segments] == list(Bucket)
    assert {s.bucket: s.count for s in segments} == {
        Bucket.PENDING: 0,
        Bucket.QUEUED: 2,
        Bucket.RUNNING: 0,
        Bucket.DONE: 6,
        Bucket.ERROR: 1,
        Bucket.FATAL: 1,
    }
    assert sum(s.percent for s in segments) == pytest.approx(100.0)
    assert all(s.percent == 0.0 for s in bar({}))


def run(status: str, heartbeat: dt.datetime, message: str = "") -> RunRow:
    return RunRow(7, status, "ana", "node1", NOW, NOW, heartbeat, message)


def test_health_of_a_run() -> None:
    later = NOW + dt.timedelta(seconds=30)
    assert health("D", run("D", NOW), NOW).level == "ok"
    assert health("R", run("R", later), NOW).level == "ok"
    never = health("Q", None, NOW)
    assert never.level == "warning" and "never run" in never.message
    stale = health("R", run("R", NOW - dt.timedelta(minutes=5)), NOW)
    assert stale.level == "alert" and "5 min overdue" in stale.message and "node1" in stale.message
    ended = health("F", run("E", NOW, "3 tasks failed"), NOW)
    assert ended.level == "warning" and "run, 7, is error" in ended.message
    assert "3 tasks failed" in ended.message


WAITING = Blockers(
    task_id=5,
    status="G",
    num_attempts=0,
    max_attempts=3,
    upstream_not_done=[],
    upstream_not_done_count=0,
    template="work",
    template_limit=10,
    template_active=2,
    workflow_status="R",
    workflow_limit=100,
    workflow_active=2,
    run_id=7,
    run_status="R",
)


def test_a_task_ready_to_go_waits_for_the_swarm() -> None:
    assert why_not_running(WAITING) == ["it is ready: the swarm queues it on its next pass"]


def test_every_reason_a_task_waits_is_named() -> None:
    blocked = replace(
        WAITING,
        upstream_not_done_count=3,
        template_active=10,
        workflow_active=100,
        run_status="S",
    )
    reasons = why_not_running(blocked)
    assert reasons[0] == "3 upstream tasks are not done"
    assert "the limit of its template work is full (10 of 10 running or queued)" in reasons
    assert "the workflow's limit is full (100 of 100 running or queued)" in reasons
    assert "the workflow's newest run, 7, is stopped, not running" in reasons
    assert "the workflow has never run" in why_not_running(replace(WAITING, run_status=None))


def test_queued_retried_and_final_tasks() -> None:
    assert why_not_running(replace(WAITING, status="R")) == []
    assert why_not_running(replace(WAITING, status="D")) == ["it is done"]
    fatal = why_not_running(replace(WAITING, status="F", num_attempts=3))
    assert fatal[0].startswith("it failed for good after 3 of 3 attempts")
    queued = why_not_running(replace(WAITING, status="O", template_active=10))
    assert queued == ["it is launched: the cluster has yet to start its job"]
    retried = why_not_running(replace(WAITING, status="E", num_attempts=1))
    assert "its attempt 1 of 3 failed; it will be retried" in retried


def test_a_clusters_pending_reason_is_said_in_words() -> None:
    assert pending_words("Slurm", "Priority") == (
        "queued in the cluster: Slurm says (Priority): jobs of higher priority are ahead of it"
    )
    assert pending_words("Slurm", "SomethingNew") == (
        "queued in the cluster: Slurm says (SomethingNew)"
    )


def test_a_slurm_reason_with_details_is_said_in_words_and_keeps_the_details() -> None:
    # As squeue -r -o '%r' printed it on the local Slurm, under a maintenance reservation.
    said = pending_words("Slurm", "ReqNodeNotAvail, Reserved for maintenance")
    assert said == (
        "queued in the cluster: Slurm says (ReqNodeNotAvail, Reserved for maintenance): "
        "a node it needs is unavailable (down, drained or reserved)"
    )
    assert pending_words("Slurm", "ReqNodeNotAvail, UnavailableNodes:node[1-2]").endswith(
        "(ReqNodeNotAvail, UnavailableNodes:node[1-2]): a node it needs is unavailable "
        "(down, drained or reserved)"
    )
    # Prose from Slurm (a description, not a code) is shown as it is.
    prose = "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority"
    assert pending_words("Slurm", prose) == f"queued in the cluster: Slurm says ({prose})"


def test_time_left_goes_in_waves_of_the_tasks_running_now() -> None:
    # 10 left (4 running + 6 waiting) in waves of 4: three waves of the median 60 s.
    assert time_left({"D": 5, "F": 1, "R": 4, "Q": 6}, 60.0) == 180.0
    assert time_left({"R": 1}, 2.5) == 2.5


def test_time_left_is_unknown_without_a_pace_or_with_nothing_left() -> None:
    assert time_left({"G": 10}, 60.0) is None  # nothing runs
    assert time_left({"R": 2, "G": 10}, None) is None  # nothing finished yet
    assert time_left({"D": 3, "F": 2}, 60.0) is None  # nothing left
