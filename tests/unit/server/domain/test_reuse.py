"""The rule of a resumed bind, on plain values: which tasks a resume reuses and which run."""

from __future__ import annotations

from herdsman.server.domain.reuse import Verdict, propagate, task_verdict

R, N, C, U, W = (
    Verdict.REUSE,
    Verdict.NEW,
    Verdict.CHANGED,
    Verdict.UNFINISHED,
    Verdict.DOWNSTREAM,
)


def test_a_task_is_judged_by_its_stored_status_and_command() -> None:
    assert task_verdict(None, None, "echo a") is N
    assert task_verdict("D", "echo a", "echo a") is R
    assert task_verdict("D", "echo a", "echo b") is C
    assert task_verdict("F", "echo a", "echo a") is U
    assert task_verdict("G", "echo a", "echo b") is U


def test_everything_downstream_of_a_task_that_runs_runs_again() -> None:
    # 0 -> 1 -> 2, 0 -> 3; 4 -> 5; 6 stands alone
    upstream = [0, 1, 0, 4]
    downstream = [1, 2, 3, 5]

    assert propagate([C, R, R, R, R, R, R], upstream, downstream) == [C, W, W, W, R, R, R]
    assert propagate([R, N, R, R, R, R, R], upstream, downstream) == [R, N, W, R, R, R, R]
    assert propagate([R, R, R, R, U, R, R], upstream, downstream) == [R, R, R, R, U, W, R]


def test_a_task_that_runs_for_its_own_reason_keeps_that_reason() -> None:
    assert propagate([C, C], [0], [1]) == [C, C]
    assert propagate([N, R, N], [0, 1], [1, 2]) == [N, W, N]


def test_with_nothing_changed_every_done_task_is_reused() -> None:
    assert propagate([R, R, R], [0, 1], [1, 2]) == [R, R, R]
