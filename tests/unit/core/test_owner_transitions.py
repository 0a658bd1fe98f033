"""The owner's task table, pair by pair, against an independent statement of it."""

from __future__ import annotations

import itertools

import pytest

from herdsman.core.statuses import TASK, TASK_BY_OWNER, TaskStatus, Transition

# Every status may be set to done (D) or reset to registering (G); staying put is untimely.
EXPECTED_VALID = {
    (TaskStatus(current), TaskStatus(target))
    for current in "GQIORDEAF"
    for target in "DG"
    if current != target
}


@pytest.mark.parametrize(
    ("current", "target"),
    list(itertools.product(TaskStatus, repeat=2)),
    ids=lambda status: status.value,
)
def test_every_pair(current: TaskStatus, target: TaskStatus) -> None:
    if current is target:
        expected = Transition.UNTIMELY
    elif (current, target) in EXPECTED_VALID:
        expected = Transition.VALID
    else:
        expected = Transition.REFUSED
    assert TASK_BY_OWNER.decide(current, target) is expected


def test_owner_may_do_what_the_scheduler_may_not() -> None:
    # Reopening a done task and declaring a waiting one done are owner-only moves.
    assert TASK.decide(TaskStatus.DONE, TaskStatus.REGISTERING) is Transition.REFUSED
    assert TASK_BY_OWNER.decide(TaskStatus.DONE, TaskStatus.REGISTERING) is Transition.VALID
    assert TASK.decide(TaskStatus.ERROR_FATAL, TaskStatus.DONE) is Transition.REFUSED
    assert TASK_BY_OWNER.decide(TaskStatus.ERROR_FATAL, TaskStatus.DONE) is Transition.VALID
    assert len(TASK_BY_OWNER.valid) == len(EXPECTED_VALID) == 16
