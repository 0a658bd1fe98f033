"""SwarmState: fringe, release of downstream tasks, limits, batches, retries and failures."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herdsman.client.swarm.state import QueueBatch, StateUpdate, SwarmState, TaskRow
from herdsman.core.schemas.swarm import (
    ChangeOut,
    ChangesOut,
    SwarmTaskOut,
    SwarmTasksOut,
    TaskStatusesOut,
)
from herdsman.core.statuses import TaskStatus

G = TaskStatus.REGISTERING
Q = TaskStatus.QUEUED
R = TaskStatus.RUNNING
D = TaskStatus.DONE
E = TaskStatus.ERROR_RECOVERABLE
A = TaskStatus.ADJUSTING_RESOURCES
F = TaskStatus.ERROR_FATAL


def make_state(
    task_ids: Iterable[int],
    edges: Iterable[tuple[int, int]] = (),
    *,
    statuses: dict[int, TaskStatus] | None = None,
    array_of: dict[int, int] | None = None,
    resources_of: dict[int, int] | None = None,
    seal: bool = True,
) -> SwarmState:
    statuses, array_of, resources_of = statuses or {}, array_of or {}, resources_of or {}
    state = SwarmState()
    state.add_tasks(
        TaskRow(tid, array_of.get(tid, 1), statuses.get(tid, G), resources_of.get(tid, 1))
        for tid in task_ids
    )
    state.add_edges(edges)
    if seal:
        state.set_initial_fringe()
    return state


def take_all(state: SwarmState, limit_total: int | None = None) -> list[int]:
    """Hand out what fits and have the server queue all of it; returns the task ids."""
    ids = [tid for batch in state.next_batches(limit_total) for tid in batch.task_ids]
    state.apply(StateUpdate.of(dict.fromkeys(ids, Q)))
    return ids


def finish(state: SwarmState, *task_ids: int) -> frozenset[int]:
    return state.apply(StateUpdate.of(dict.fromkeys(task_ids, D)))


# --- StateUpdate ---------------------------------------------------------------------------------


def test_update_from_changes_keeps_task_changes_and_the_latest_per_task() -> None:
    reply = ChangesOut(
        last_seq=4,
        changes=[
            ChangeOut(seq=1, kind="T", id=7, status="Q", task_id=7),
            ChangeOut(seq=2, kind="I", id=70, status="R", task_id=7),
            ChangeOut(seq=3, kind="R", id=1, status="S"),
            ChangeOut(seq=4, kind="T", id=7, status="D", task_id=7),
        ],
    )
    assert StateUpdate.from_changes(reply) == StateUpdate.of({7: D})


def test_update_from_replies_converts_letters_to_statuses() -> None:
    queued = StateUpdate.from_task_statuses(TaskStatusesOut(task_ids=[1, 2], statuses=["Q", "D"]))
    assert dict(queued.statuses) == {1: Q, 2: D}
    assert all(isinstance(status, TaskStatus) for status in queued.statuses.values())
    page = SwarmTasksOut(
        tasks=[
            SwarmTaskOut(
                task_id=3,
                array_id=1,
                status="F",
                num_upstreams=0,
                task_resources_id=1,
                max_attempts=3,
                num_attempts=3,
                resource_scales="",
                fallback_queues="",
            )
        ],
        next_task_id=None,
    )
    assert StateUpdate.from_swarm_tasks(page) == StateUpdate.of({3: "F"})


def test_merge_lets_the_later_update_win() -> None:
    merged = StateUpdate.of({1: Q, 2: Q}).merge(StateUpdate.of({2: D, 3: R}))
    assert dict(merged.statuses) == {1: Q, 2: D, 3: R}
    assert len(StateUpdate()) == 0 and not StateUpdate()
    assert StateUpdate().merge(merged) is merged


def test_update_is_read_only() -> None:
    update = StateUpdate.of({1: Q})
    with pytest.raises(TypeError):
        update.statuses[2] = D  # type: ignore[index]


# --- loading and the fringe ----------------------------------------------------------------------


def test_fringe_of_a_chain_is_its_head() -> None:
    state = make_state(range(1, 6), [(1, 2), (2, 3), (3, 4), (4, 5)])
    assert take_all(state) == [1]
    for task_id in range(1, 5):
        finish(state, task_id)
        assert take_all(state) == [task_id + 1]


def test_fork_join_releases_the_join_only_after_every_branch() -> None:
    state = make_state(range(1, 6), [(1, 2), (1, 3), (1, 4), (2, 5), (3, 5), (4, 5)])
    assert take_all(state) == [1]
    finish(state, 1)
    assert sorted(take_all(state)) == [2, 3, 4]
    finish(state, 2, 3)
    assert take_all(state) == []
    finish(state, 4)
    assert take_all(state) == [5]


def test_fringe_of_a_bushy_dag_is_every_root() -> None:
    edges = [(1, 4), (2, 4), (2, 5), (3, 6), (4, 7), (5, 7), (6, 7)]
    state = make_state(range(1, 8), edges)
    assert take_all(state) == [1, 2, 3]
    finish(state, 2)
    assert take_all(state) == [5]


def test_done_tasks_loaded_as_done_satisfy_their_edges() -> None:
    # A resumed workflow: 1 and 2 finished in an earlier run.
    state = make_state([1, 2, 3, 4], [(1, 3), (2, 3), (3, 4)], statuses={1: D, 2: D})
    assert take_all(state) == [3]
    assert state.done_ids() == {1, 2}
    assert state.num_newly_done == 0


def test_a_late_report_cannot_undo_done_nor_release_downstream_twice() -> None:
    state = make_state([1, 2, 3], [(1, 3), (2, 3)])
    take_all(state)
    assert finish(state, 1) == {1}
    assert finish(state, 1) == frozenset()  # a replayed report
    assert state.apply(StateUpdate.of({1: R})) == frozenset()  # a stale one
    assert state.status_of(1) is D
    assert take_all(state) == []  # 3 still waits for 2
    finish(state, 2)
    assert take_all(state) == [3]


def test_loading_is_checked() -> None:
    state = make_state([1, 2], seal=False)
    with pytest.raises(ValueError, match="twice"):
        state.add_tasks([TaskRow(1, 1, G)])
    with pytest.raises(ValueError, match="not loaded"):
        state.add_edges([(1, 99)])
    state.set_initial_fringe()
    with pytest.raises(RuntimeError):
        state.add_tasks([TaskRow(3, 1, G)])
    with pytest.raises(RuntimeError):
        state.add_edges([(1, 2)])


def test_an_empty_state_is_finished() -> None:
    state = make_state([])
    assert state.is_finished() and state.is_settled() and state.next_batches() == []


def test_reports_about_unknown_tasks_are_ignored() -> None:
    state = make_state([1])
    assert state.apply(StateUpdate.of({99: D})) == frozenset()


# --- limits ---------------------------------------------------------------------------------------


def test_the_workflow_limit_caps_active_tasks() -> None:
    state = make_state(range(1, 11))
    state.set_limits(3, {})
    assert take_all(state) == [1, 2, 3]
    assert take_all(state) == []
    finish(state, 2)
    assert take_all(state) == [4]
    assert state.num_active == 3


def test_each_array_limit_caps_its_array_only() -> None:
    arrays = {tid: 1 if tid <= 5 else 2 for tid in range(1, 11)}
    state = make_state(range(1, 11), array_of=arrays)
    state.set_limits(100, {1: 2})
    taken = take_all(state)
    assert [tid for tid in taken if arrays[tid] == 1] == [1, 2]
    assert [tid for tid in taken if arrays[tid] == 2] == [6, 7, 8, 9, 10]
    assert state.num_active_in(1) == 2


def test_limit_zero_pauses_and_raising_it_resumes() -> None:
    state = make_state(range(1, 5))
    state.set_limits(0, {})
    assert state.next_batches() == []
    assert not state.is_settled()  # ready tasks held back are not the end of the run
    state.set_limits(2, {})
    assert take_all(state) == [1, 2]


def test_lowering_a_limit_below_the_active_count_stops_new_hand_outs() -> None:
    state = make_state(range(1, 7))
    state.set_limits(4, {})
    take_all(state)
    state.set_limits(2, {})
    finish(state, 1)
    assert take_all(state) == []  # 3 still active, limit 2
    finish(state, 2, 3)
    assert take_all(state) == [5]


def test_limit_total_caps_one_call() -> None:
    state = make_state(range(1, 6))
    assert take_all(state, limit_total=2) == [1, 2]
    assert take_all(state) == [3, 4, 5]


def test_negative_limits_are_refused() -> None:
    state = make_state([1])
    with pytest.raises(ValueError):
        state.set_limits(-1, {})
    with pytest.raises(ValueError):
        state.set_limits(1, {1: -1})


def test_arrays_take_turns_when_the_workflow_limit_binds() -> None:
    arrays = {tid: 1 if tid <= 10 else 2 for tid in range(1, 21)}
    state = make_state(range(1, 21), array_of=arrays)
    state.set_limits(1, {})
    served = []
    for _ in range(4):
        (task_id,) = take_all(state)
        served.append(arrays[task_id])
        finish(state, task_id)
    assert sorted(served) == [1, 1, 2, 2]


# --- batches -------------------------------------------------------------------------------------


def test_batches_group_one_array_and_identical_resources() -> None:
    arrays = {1: 1, 2: 1, 3: 1, 4: 2, 5: 2}
    resources = {1: 10, 2: 11, 3: 10, 4: 10, 5: 10}
    state = make_state(range(1, 6), array_of=arrays, resources_of=resources)
    batches = state.next_batches()
    assert sorted(batches, key=lambda b: (b.array_id, b.task_resources_id)) == [
        QueueBatch(1, 10, (1, 3)),
        QueueBatch(1, 11, (2,)),
        QueueBatch(2, 10, (4, 5)),
    ]


def test_batches_are_split_at_the_maximum_size() -> None:
    state = make_state(range(1, 8))
    batches = state.next_batches(max_batch_size=3)
    assert [b.task_ids for b in batches] == [(1, 2, 3), (4, 5, 6), (7,)]


def test_requested_tasks_are_not_handed_out_twice() -> None:
    state = make_state(range(1, 4))
    state.set_limits(10, {})
    first = state.next_batches()
    assert state.next_batches() == []
    assert state.num_active == 3  # requested tasks count against the limits
    assert [b.task_ids for b in first] == [(1, 2, 3)]


def test_released_requests_come_back_first_and_free_their_capacity() -> None:
    state = make_state(range(1, 6))
    state.set_limits(2, {})
    (batch,) = state.next_batches()
    state.release(batch.task_ids)
    assert state.num_active == 0
    assert take_all(state) == [1, 2]


def test_an_unchanged_answer_ends_the_request_and_requeues_the_task() -> None:
    state = make_state([1])
    state.next_batches()
    state.apply(StateUpdate.of({1: G}))  # the server did not queue it
    assert state.num_active == 0
    assert [b.task_ids for b in state.next_batches()] == [(1,)]


# --- retries and failures ------------------------------------------------------------------------


def test_a_retried_task_is_queued_again() -> None:
    state = make_state([1, 2], [(1, 2)])
    take_all(state)
    state.apply(StateUpdate.of({1: R}))
    state.apply(StateUpdate.of({1: E}))
    assert state.num_active == 0 and take_all(state) == []
    assert state.apply(StateUpdate.of({1: G})) == {1}
    assert state.tasks_needing_resources() == []
    assert take_all(state) == [1]


def test_a_fatal_task_blocks_its_downstream_while_other_branches_go_on() -> None:
    state = make_state([1, 2, 3, 4], [(1, 2), (3, 4)])
    take_all(state)
    state.apply(StateUpdate.of({1: F}))
    finish(state, 3)
    assert take_all(state) == [4]
    assert not state.is_settled()
    finish(state, 4)
    assert state.has_failures
    assert not state.is_finished()  # 2 is neither done nor failed
    assert state.is_settled()  # but it can never run
    assert state.failed_ids() == {1} and state.done_ids() == {3, 4}


def test_a_task_in_error_on_its_way_to_a_retry_keeps_the_run_unsettled() -> None:
    state = make_state([1])
    take_all(state)
    state.apply(StateUpdate.of({1: E}))
    assert not state.is_settled()


def test_queries_and_counts() -> None:
    state = make_state(range(1, 6), statuses={5: D})
    take_all(state)
    state.apply(StateUpdate.of({1: R, 2: D, 3: F}))
    counts = state.counts()
    assert counts[D] == 2 and counts[F] == 1 and counts[R] == 1 and counts[Q] == 1
    assert sum(counts.values()) == state.num_tasks == 5
    assert state.active_ids() == {1, 4}
    assert state.num_newly_done == 1
    assert state.status_of(99) is None
    assert not state.is_finished()
    finish(state, 1, 4)
    assert state.is_finished() and state.is_settled()


# --- resources ------------------------------------------------------------------------------------


def kill_for_resources(state: SwarmState, task_id: int) -> None:
    """The task ran and was killed for resources: E, then A on the server."""
    state.apply(StateUpdate.of({task_id: R}))
    state.apply(StateUpdate.of({task_id: E}))
    state.apply(StateUpdate.of({task_id: A}))


def needs(state: SwarmState) -> list[tuple[int, int, bool]]:
    return [(n.task_id, n.task_resources_id, n.initial) for n in state.tasks_needing_resources()]


def test_a_task_killed_for_resources_waits_for_new_resources() -> None:
    state = make_state([1, 2], [(1, 2)], resources_of={1: 7})
    take_all(state)
    kill_for_resources(state, 1)
    assert take_all(state) == []
    assert needs(state) == [(1, 7, False)]
    assert not state.is_settled()  # its new resources will come
    state.set_resources(1, 70)
    assert needs(state) == []
    assert state.resources_of(1) == 70
    batches = state.next_batches()
    assert batches == [QueueBatch(1, 70, (1,))]


def test_adjusted_tasks_form_batches_of_their_own() -> None:
    state = make_state([1, 2, 3, 4], resources_of=dict.fromkeys([1, 2, 3, 4], 5))
    take_all(state)
    for task_id in (1, 2, 3):
        kill_for_resources(state, task_id)
    state.apply(StateUpdate.of({4: G}))  # an ordinary retry keeps its resources
    state.set_resources(1, 50)
    state.set_resources(2, 50)
    state.set_resources(3, 51)
    batches = sorted(state.next_batches(), key=lambda b: b.task_resources_id)
    assert [(b.task_resources_id, b.task_ids) for b in batches] == [
        (5, (4,)),
        (50, (1, 2)),
        (51, (3,)),
    ]


def test_every_new_kill_needs_a_new_adjustment() -> None:
    state = make_state([1])
    take_all(state)
    kill_for_resources(state, 1)
    state.set_resources(1, 10)
    take_all(state)
    assert needs(state) == []
    kill_for_resources(state, 1)
    assert needs(state) == [(1, 10, False)]


def test_a_repeated_report_of_adjusting_does_not_ask_for_a_second_adjustment() -> None:
    state = make_state([1])
    take_all(state)
    kill_for_resources(state, 1)
    state.set_resources(1, 10)
    state.next_batches()
    state.apply(StateUpdate.of({1: A}))  # the server did not queue it: the same A, no new kill
    assert needs(state) == []
    assert [b.task_ids for b in state.next_batches()] == [(1,)]


def test_a_task_loaded_in_adjusting_resources_needs_adjusting_once_ready() -> None:
    state = make_state([1, 2], [(1, 2)], statuses={2: A}, resources_of={2: 3})
    assert needs(state) == []  # 2 waits on 1
    take_all(state)
    finish(state, 1)
    assert needs(state) == [(2, 3, False)]


def test_a_task_leaving_adjusting_resources_no_longer_needs_it() -> None:
    state = make_state([1])
    take_all(state)
    kill_for_resources(state, 1)
    state.apply(StateUpdate.of({1: G}))  # reset by a resume, say
    assert needs(state) == []
    assert take_all(state) == [1]


def test_held_tasks_wait_for_their_first_resources() -> None:
    state = make_state([1, 2, 3], [(1, 2)], seal=False)
    state.hold_for_resources([2, 3, 99])  # unknown ids are ignored
    state.set_initial_fringe()
    assert needs(state) == [(3, 1, True)]
    assert take_all(state) == [1]
    finish(state, 1)
    assert needs(state) == [(3, 1, True), (2, 1, True)]
    state.set_resources(3, 30)
    state.set_resources(2, 20)
    assert sorted(take_all(state)) == [2, 3]
    kill_for_resources(state, 2)
    assert needs(state) == [(2, 20, False)]  # the callable ran once: now it is scaled


def test_holding_after_sealing_takes_a_ready_task_back() -> None:
    state = make_state([1, 2])
    state.hold_for_resources([1])
    assert needs(state) == [(1, 1, True)]
    assert take_all(state) == [2]


def test_done_tasks_are_not_held() -> None:
    state = make_state([1], statuses={1: D}, seal=False)
    state.hold_for_resources([1])
    state.set_initial_fringe()
    assert needs(state) == [] and state.is_finished()


def test_needs_are_bounded_by_the_limit_and_by_the_room_left() -> None:
    state = make_state(range(1, 6), seal=False)
    state.hold_for_resources(range(1, 6))
    state.set_initial_fringe()
    assert [n.task_id for n in state.tasks_needing_resources(limit=2)] == [1, 2]
    state.set_limits(3, {})
    assert len(state.tasks_needing_resources()) == 3
    state.set_resources(1, 9)
    take_all(state)
    assert len(state.tasks_needing_resources()) == 2
    state.set_limits(0, {})
    assert state.tasks_needing_resources() == []
    assert not state.is_settled()  # paused, not over


def test_set_resources_of_an_unknown_task_is_an_error() -> None:
    state = make_state([1])
    with pytest.raises(ValueError, match="not loaded"):
        state.set_resources(2, 5)
    assert state.resources_of(2) is None


@settings(max_examples=60, deadline=None)
@given(
    size=st.integers(1, 20),
    kills=st.lists(st.integers(1, 20), max_size=30),
    limit=st.integers(1, 5),
)
def test_every_task_killed_for_resources_is_queued_again_only_with_new_resources(
    size: int, kills: list[int], limit: int
) -> None:
    state = make_state(range(1, size + 1))
    state.set_limits(limit, {})
    killed = {tid: 0 for tid in range(1, size + 1)}
    queued_with: dict[int, list[int]] = {tid: [] for tid in range(1, size + 1)}
    pending_kills = [k for k in kills if k <= size]
    next_id = 100
    while not state.is_finished():
        for need in state.tasks_needing_resources():
            next_id += 1
            state.set_resources(need.task_id, next_id)
        for batch in state.next_batches():
            for task_id in batch.task_ids:
                queued_with[task_id].append(batch.task_resources_id)
            state.apply(StateUpdate.of(dict.fromkeys(batch.task_ids, Q)))
        active = sorted(state.active_ids())
        assert 0 < len(active) <= limit
        if pending_kills and pending_kills[0] in active:
            task_id = pending_kills.pop(0)
            kill_for_resources(state, task_id)
            killed[task_id] += 1
        else:
            finish(state, active[0])
    for task_id, ids in queued_with.items():
        assert len(ids) == killed[task_id] + 1
        assert len(set(ids)) == len(ids), "queued again with the resources that were killed"


# --- properties ----------------------------------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    size = draw(st.integers(min_value=1, max_value=40))
    edges = draw(
        st.lists(
            st.tuples(st.integers(1, size), st.integers(1, size)).filter(
                lambda e: e[0] < e[1]
            ),  # upstream ids below downstream ids: acyclic
            unique=True,
            max_size=80,
        )
    )
    return size, edges


@settings(max_examples=60, deadline=None)
@given(dag=dags(), limit=st.integers(1, 5), seed=st.integers(0, 2**32))
def test_any_dag_runs_to_the_end_in_dependency_order_within_the_limit(
    dag: tuple[int, list[tuple[int, int]]], limit: int, seed: int
) -> None:
    size, edges = dag
    upstreams: dict[int, set[int]] = {tid: set() for tid in range(1, size + 1)}
    for up, down in edges:
        upstreams[down].add(up)
    state = make_state(range(1, size + 1), edges)
    state.set_limits(limit, {})
    rng = random.Random(seed)
    done: set[int] = set()
    active: set[int] = set()
    while not state.is_finished():
        for task_id in take_all(state):
            assert upstreams[task_id] <= done, "released before all its upstreams were done"
            assert task_id not in done and task_id not in active, "handed out twice"
            active.add(task_id)
        assert 0 < len(active) <= limit
        finished = rng.choice(sorted(active))
        active.remove(finished)
        done.add(finished)
        finish(state, finished)
    assert done == set(range(1, size + 1))
