"""The lifecycle rules, checked against independent statements and against the tables.

Expected sets are written as letter strings, not computed from the tables, so a change to a
table that silently changes a derived set fails here. Each rule is also checked to agree with
the tables: every move a rule prescribes must be one the tables call valid.
"""

from __future__ import annotations

import enum
import itertools
import re
from typing import Any

import pytest

from herdsman.core import lifecycle
from herdsman.core.changes import CHANGE_FILTER_PATTERN, ChangeFilter, ChangeKind
from herdsman.core.lifecycle import TaskProgress
from herdsman.core.statuses import (
    TASK,
    TASK_INSTANCE,
    WORKFLOW,
    WORKFLOW_RUN,
    TaskInstanceStatus,
    TaskStatus,
    Transition,
    WorkflowRunStatus,
    WorkflowStatus,
)

I = TaskInstanceStatus  # noqa: E741 - the letter the tables use
T = TaskStatus
R = WorkflowRunStatus
W = WorkflowStatus


def letters(enum_type: type[enum.Enum], text: str) -> set[Any]:
    return {enum_type(letter) for letter in text.split()}


# --- derived sets ----------------------------------------------------------------------------

EXPECTED_SETS: list[tuple[str, type[enum.Enum], str]] = [
    ("UNFINISHED_INSTANCE_STATUSES", I, "Q I O R T X K"),
    ("LIVE_INSTANCE_STATUSES", I, "I O R T X K"),
    ("KILLABLE_INSTANCE_STATUSES", I, "Q I O R T X"),
    ("NOT_STARTED_INSTANCE_STATUSES", I, "Q I"),
    ("HEARTBEAT_INSTANCE_STATUSES", I, "R T"),
    ("SILENT_INSTANCE_STATUSES", I, "T X"),
    ("LOST_INSTANCE_STATUSES", I, "U X"),
    ("TASK_INSTANCE_ERROR_STATUSES", I, "E Z U W F"),
    ("ERROR_STATUSES", I, "E Z U"),
    ("ACTIVE_TASK_STATUSES", T, "Q I O R"),
    ("QUEUEABLE_TASK_STATUSES", T, "G A"),
    ("UNFINISHED_TASK_STATUSES", T, "G Q I O R E A F"),
    ("WAITING_TASK_STATUSES", T, "Q I O"),
    ("RESETTABLE_TASK_STATUSES", T, "G Q I O R E A F"),
    ("RESCALABLE_TASK_STATUSES", T, "F A"),
    ("OWNER_TASK_TARGETS", T, "D G"),
    ("UNBOUND_RUN_STATUSES", R, "G L"),
    ("RESUMING_RUN_STATUSES", R, "C H"),
    ("LIVE_WORKFLOW_RUN_STATUSES", R, "G L B I O R C H"),
    ("ACTIVE_RUN_STATUSES", R, "G L B I O R"),
    ("ENDED_RUN_STATUSES", R, "D E S T A C H"),
    ("TAKEN_OVER_RUN_STATUSES", R, "C H T"),
    ("LAPSABLE_RUN_STATUSES", R, "G L B I O R"),
    ("SCHEDULING_WORKFLOW_STATUSES", W, "Q I O R"),
    ("DONEABLE_WORKFLOW_STATUSES", W, "R F H"),
    ("PRUNABLE_WORKFLOW_STATUSES", W, "D F H"),
]


@pytest.mark.parametrize(("name", "enum_type", "expected"), EXPECTED_SETS)
def test_derived_set(name: str, enum_type: type[enum.Enum], expected: str) -> None:
    found = getattr(lifecycle, name)
    assert isinstance(found, frozenset)
    assert found == letters(enum_type, expected)


def test_every_exported_status_set_is_checked() -> None:
    exported_sets = {
        name for name in lifecycle.__all__ if isinstance(getattr(lifecycle, name), frozenset)
    }
    assert exported_sets == {name for name, _, _ in EXPECTED_SETS}


def test_set_relations_the_rules_rely_on() -> None:
    # Retention never removes a workflow a run is scheduling.
    assert not lifecycle.PRUNABLE_WORKFLOW_STATUSES & lifecycle.SCHEDULING_WORKFLOW_STATUSES
    # A live run is never in a final status, and an ended run is never live.
    assert not lifecycle.LIVE_WORKFLOW_RUN_STATUSES & WORKFLOW_RUN.final
    assert set(R) == lifecycle.ENDED_RUN_STATUSES | lifecycle.LIVE_WORKFLOW_RUN_STATUSES
    # Every error of an attempt is final for that attempt.
    assert TASK_INSTANCE.final >= lifecycle.TASK_INSTANCE_ERROR_STATUSES
    # Killing is for live attempts; a hot resume kills a subset of what a cold one kills.
    assert lifecycle.NOT_STARTED_INSTANCE_STATUSES <= lifecycle.KILLABLE_INSTANCE_STATUSES
    assert lifecycle.KILLABLE_INSTANCE_STATUSES <= lifecycle.UNFINISHED_INSTANCE_STATUSES
    # An active task is never queueable again until it leaves the cluster's hands.
    assert not lifecycle.ACTIVE_TASK_STATUSES & lifecycle.QUEUEABLE_TASK_STATUSES


def test_statuses_of_gives_sorted_letters() -> None:
    assert lifecycle.statuses_of(lifecycle.QUEUEABLE_TASK_STATUSES) == ("A", "G")


# --- an attempt moves its task ---------------------------------------------------------------


def test_task_follows_progress_of_its_attempt() -> None:
    follows = {
        instance.value: task.value
        for instance in I
        if (task := lifecycle.task_status_for_instance(instance)) is not None
    }
    assert follows == {"I": "I", "O": "O", "R": "R", "D": "D"}


@pytest.mark.parametrize("instance", list(I))
def test_a_followed_task_move_is_valid_from_the_task_status_it_follows(
    instance: TaskInstanceStatus,
) -> None:
    task = lifecycle.task_status_for_instance(instance)
    if task is None:
        return
    # The task was where the attempt's previous status had put it (or queued, before that).
    before = {
        I.INSTANTIATED: T.QUEUED,
        I.LAUNCHED: T.INSTANTIATING,
        I.RUNNING: T.LAUNCHED,
        I.DONE: T.RUNNING,
    }[instance]
    assert TASK.decide(before, task) is Transition.VALID


ATTEMPT_COUNTS = [(1, 3), (2, 3), (3, 3), (4, 3), (1, 1)]


@pytest.mark.parametrize(
    ("error", "counts"),
    list(itertools.product(sorted(lifecycle.TASK_INSTANCE_ERROR_STATUSES), ATTEMPT_COUNTS)),
)
def test_a_failed_attempt_retries_adjusts_or_ends_its_task(
    error: TaskInstanceStatus, counts: tuple[int, int]
) -> None:
    attempts, max_attempts = counts
    target = lifecycle.task_after_failed_attempt(
        error, attempts=attempts, max_attempts=max_attempts
    )
    if attempts >= max_attempts:
        assert target is T.ERROR_FATAL
    elif error is I.RESOURCE_ERROR:
        assert target is T.ADJUSTING_RESOURCES
    else:
        assert target is T.REGISTERING
    path = lifecycle.task_path_after_failed_attempt(
        error, attempts=attempts, max_attempts=max_attempts
    )
    assert path == (T.ERROR_RECOVERABLE, target)
    # Every step is valid: a running task fails (E), then moves on.
    assert TASK.decide(T.RUNNING, path[0]) is Transition.VALID
    assert TASK.decide(path[0], path[1]) is Transition.VALID


@pytest.mark.parametrize("status", sorted(set(I) - lifecycle.TASK_INSTANCE_ERROR_STATUSES))
def test_only_error_statuses_count_as_failed_attempts(status: TaskInstanceStatus) -> None:
    with pytest.raises(ValueError, match="not an error status"):
        lifecycle.task_after_failed_attempt(status, attempts=1, max_attempts=3)


@pytest.mark.parametrize("status", sorted(lifecycle.ACTIVE_TASK_STATUSES))
def test_a_kill_gives_an_active_task_back(status: TaskStatus) -> None:
    assert lifecycle.TASK_STATUS_AFTER_KILL is T.REGISTERING
    assert TASK.decide(status, lifecycle.TASK_STATUS_AFTER_KILL) is Transition.VALID


@pytest.mark.parametrize(
    ("name", "start", "expected"),
    [("FINISHED_WITHOUT_RUNNING", "I", "R D"), ("VANISHED_BEFORE_RUNNING", "O", "X E")],
)
def test_multi_step_paths(name: str, start: str, expected: str) -> None:
    path = getattr(lifecycle, name)
    assert [status.value for status in path] == expected.split()
    previous = I(start)
    for step in path:
        assert TASK_INSTANCE.decide(previous, step) is Transition.VALID
        previous = step


@pytest.mark.parametrize("status", list(T))
def test_progress_groups(status: TaskStatus) -> None:
    expected = {"R": "running", "D": "done", "F": "fatal"}.get(status.value, "pending")
    assert lifecycle.progress_of(status) is TaskProgress(expected)


# --- runs and workflows ----------------------------------------------------------------------


def test_workflow_status_for_run_covers_every_run_status() -> None:
    found = {run.value: lifecycle.workflow_status_for_run(run).value for run in R}
    expected = "G:G L:G B:Q I:I O:O R:R D:D E:F S:H C:H H:H T:H A:A"
    assert found == dict(item.split(":") for item in expected.split())


@pytest.mark.parametrize("status", list(R))
def test_lapsed_runs(status: WorkflowRunStatus) -> None:
    unfinished = lifecycle.lapsed_run_target(status, tasks_unfinished=True)
    finished = lifecycle.lapsed_run_target(status, tasks_unfinished=False)
    expected = {"G": "A", "L": "A", "B": "E", "I": "E", "O": "E", "R": "E"}.get(status.value)
    assert (unfinished.value if unfinished else None) == expected
    if status is R.RUNNING:
        assert finished is R.DONE
    else:
        assert finished == unfinished
    for target in (unfinished, finished):
        if target is not None:
            assert WORKFLOW_RUN.decide(status, target) is Transition.VALID


@pytest.mark.parametrize("status", list(R))
def test_a_run_starts_by_instantiating_launching_and_running(status: WorkflowRunStatus) -> None:
    path = lifecycle.run_startup_path(status)
    expected = {"G": "I O R", "L": "I O R", "B": "I O R", "I": "O R", "O": "R", "R": ""}
    if status.value not in expected:
        assert path is None
        return
    assert path is not None
    assert [step.value for step in path] == expected[status.value].split()
    # Every step is valid from a bound run on; an unbound one must be bound first.
    previous = R.BOUND if status in lifecycle.UNBOUND_RUN_STATUSES else status
    for step in path:
        assert WORKFLOW_RUN.decide(previous, step) is Transition.VALID
        previous = step


def test_resume_statuses_and_kills() -> None:
    assert lifecycle.resume_status(cold=True) is R.COLD_RESUME
    assert lifecycle.resume_status(cold=False) is R.HOT_RESUME
    assert lifecycle.kills_for_resume(cold=True) == lifecycle.KILLABLE_INSTANCE_STATUSES
    assert lifecycle.kills_for_resume(cold=False) == lifecycle.NOT_STARTED_INSTANCE_STATUSES
    for status in lifecycle.KILLABLE_INSTANCE_STATUSES:
        assert TASK_INSTANCE.decide(status, I.KILL_SELF) is Transition.VALID


@pytest.mark.parametrize("status", list(W))
def test_a_workflow_is_done_by_its_tasks_only_from_a_doneable_status(
    status: WorkflowStatus,
) -> None:
    assert not lifecycle.workflow_done_by_tasks(status, tasks_unfinished=True)
    done = lifecycle.workflow_done_by_tasks(status, tasks_unfinished=False)
    assert done is (status in lifecycle.DONEABLE_WORKFLOW_STATUSES)
    assert done is (WORKFLOW.decide(status, W.DONE) is Transition.VALID)


# --- change-feed filters ---------------------------------------------------------------------


def test_the_swarm_follows_finished_and_queueable_tasks_and_its_runs() -> None:
    assert lifecycle.SWARM_FOLLOWS.spec == "L,R,T:ADFG"
    assert ChangeFilter.parse(lifecycle.SWARM_FOLLOWS.spec) == lifecycle.SWARM_FOLLOWS
    assert ("T", "D") in lifecycle.SWARM_FOLLOWS
    assert ("T", "R") not in lifecycle.SWARM_FOLLOWS
    assert ("R", "S") in lifecycle.SWARM_FOLLOWS
    assert ("I", "Q") not in lifecycle.SWARM_FOLLOWS
    assert ("L", "") in lifecycle.SWARM_FOLLOWS  # a changed limit
    assert re.match(CHANGE_FILTER_PATTERN, lifecycle.SWARM_FOLLOWS.spec)


def test_the_distributor_follows_attempts_to_submit_or_kill_and_its_runs() -> None:
    assert lifecycle.DISTRIBUTOR_FOLLOWS.spec == "I:KQ,R"
    assert ChangeFilter.parse(lifecycle.DISTRIBUTOR_FOLLOWS.spec) == lifecycle.DISTRIBUTOR_FOLLOWS
    assert ("I", "K") in lifecycle.DISTRIBUTOR_FOLLOWS
    assert ("I", "R") not in lifecycle.DISTRIBUTOR_FOLLOWS


def test_change_filter_specs_round_trip() -> None:
    every = ChangeFilter.of({kind: None for kind in ChangeKind})
    assert every.spec == "ILRT"
    assert ChangeFilter.parse("TR") == ChangeFilter.of(
        {ChangeKind.TASK: None, ChangeKind.RUN: None}
    )


# --- attempts of ended runs that nobody attends -------------------------------------------------

ABANDONED = {
    "I": "W",
    "O": "X E",
    "R": "U",
    "T": "U",
    "X": "E",
    "K": "F",
}


@pytest.mark.parametrize("status", list(TaskInstanceStatus))
@pytest.mark.parametrize("report_overdue", [True, False])
def test_an_abandoned_attempt_is_closed_by_valid_moves_to_a_final_status(
    status: TaskInstanceStatus, report_overdue: bool
) -> None:
    path = lifecycle.abandoned_attempt_path(status, report_overdue=report_overdue)

    expected = ABANDONED.get(status.value, "")
    if status is I.RUNNING and not report_overdue:
        expected = ""  # its worker still reports: it will end the attempt itself
    assert " ".join(step.value for step in path) == expected
    current = status
    for step in path:
        assert TASK_INSTANCE.decide(current, step) is Transition.VALID, (current, step)
        current = step
    assert not path or current in TASK_INSTANCE.final


def test_every_live_attempt_has_a_way_to_be_closed() -> None:
    assert set(lifecycle.ABANDONED_ATTEMPT_PATHS) == lifecycle.LIVE_INSTANCE_STATUSES
    assert letters(I, "I O R T X K") == lifecycle.LIVE_INSTANCE_STATUSES


def test_a_resume_scales_tasks_whose_last_attempt_was_killed_for_resources() -> None:
    assert lifecycle.scaled_on_resume(T.ERROR_FATAL, I.RESOURCE_ERROR)
    assert lifecycle.scaled_on_resume(T.ADJUSTING_RESOURCES, I.RESOURCE_ERROR)
    assert not lifecycle.scaled_on_resume(T.ERROR_FATAL, I.ERROR)
    assert not lifecycle.scaled_on_resume(T.ERROR_FATAL, None)
    assert not lifecycle.scaled_on_resume(T.DONE, I.RESOURCE_ERROR)


def test_an_owner_reset_reopens_a_done_workflow_as_failed() -> None:
    assert lifecycle.workflow_reopened_by_owner(W.DONE, T.REGISTERING) is W.FAILED
    assert lifecycle.workflow_reopened_by_owner(W.DONE, T.DONE) is None
    assert lifecycle.workflow_reopened_by_owner(W.FAILED, T.REGISTERING) is None
    assert lifecycle.workflow_reopened_by_owner(W.HALTED, T.REGISTERING) is None
