"""Count increments of a transaction: tasks that move, leave their workflow, or come back."""

from __future__ import annotations

from herdsman.server.database.task_counts import TaskCountChanges


def test_a_removed_task_leaves_the_counts_and_its_status() -> None:
    changes = TaskCountChanges()
    changes.leave(1, 10, "F", attempts=3)
    assert changes.counts == {(1, 10, "F"): [-1, -3, -2]}
    assert changes.exited == {(1, "F"): 1}
    assert not changes.entered
    assert changes.workflows() == {1}


def test_a_task_back_in_its_workflow_joins_the_counts_and_its_status() -> None:
    changes = TaskCountChanges()
    changes.join(1, 10, "D", attempts=1)
    assert changes.counts == {(1, 10, "D"): [1, 1, 0]}
    assert changes.entered == {(1, "D"): 1}


def test_a_recount_keeps_the_history_of_a_removal() -> None:
    changes = TaskCountChanges()
    changes.leave(1, 10, "D", attempts=1)
    changes.forget(1)
    assert not changes.counts
    # The history still has the task's exit, so the flush still visits the workflow.
    assert changes.workflows() == {1}


def test_moves_sum_into_counts_and_history() -> None:
    changes = TaskCountChanges()
    for _ in range(3):
        changes.move(1, 10, "Q", "I", attempts=1)
    changes.move(1, 10, "R", "D", attempts=2)
    changes.move(1, 11, "G", "Q", attempts=0, attempts_after=1)
    changes.move(1, 10, "R", "R", attempts=1, attempts_after=2)
    assert changes.workflows() == {1}
    assert changes.counts == {
        (1, 10, "Q"): [-3, -3, 0],
        (1, 10, "I"): [3, 3, 0],
        (1, 10, "R"): [-1, -1, 0],  # one finished (2 attempts), one retried in place (1 -> 2)
        (1, 10, "D"): [1, 2, 1],
        (1, 11, "G"): [-1, 0, 0],
        (1, 11, "Q"): [1, 1, 0],
    }
    assert changes.exited == {(1, "Q"): 3, (1, "R"): 1, (1, "G"): 1}
    assert changes.entered == {(1, "I"): 3, (1, "D"): 1, (1, "Q"): 1}
