"""Every status change of every state machine, checked against an independent statement.

The expectations below are written as letter strings ("G->L G->A ..."), not by importing the
module's tables, so a slip in either place shows up as a failing pair rather than being copied
into the test.
"""

from __future__ import annotations

import enum
import itertools
from typing import Any

import pytest

from herdsman.core.statuses import (
    MACHINES,
    TASK,
    TASK_INSTANCE,
    WORKFLOW,
    WORKFLOW_RUN,
    StateMachine,
    TaskInstanceStatus,
    TaskStatus,
    Transition,
    WorkflowRunStatus,
    WorkflowStatus,
    decide,
    machine_for,
)

# --- the expected tables, in letters ---------------------------------------------------------

WORKFLOW_RUN_VALID = """
    G->L G->A
    L->B L->A
    B->I B->E B->A B->S B->C B->H
    I->O I->E I->S I->C I->H
    O->R O->E O->S O->C O->H
    R->D R->E R->S R->C R->H
    E->C E->H
    S->C S->H
    C->T H->T
"""
WORKFLOW_RUN_UNTIMELY = "R->O R->I T->C T->H"
WORKFLOW_RUN_FINAL = "D T A"

WORKFLOW_VALID = """
    G->Q G->A
    Q->I Q->A Q->F Q->H Q->G
    I->O I->F I->H I->G
    O->R O->F O->H O->G
    R->D R->F R->H R->G
    F->G H->G A->G F->D H->D
"""
WORKFLOW_UNTIMELY = "D->R D->F D->H"
WORKFLOW_FINAL = "D"

TASK_VALID = """
    G->Q
    Q->I Q->G
    I->O I->R I->E I->G
    O->R O->E O->G
    R->D R->E R->G
    E->G E->A E->F
    A->Q A->G
    F->G
"""
TASK_UNTIMELY = "R->O D->R D->O D->I"
TASK_FINAL = "D F"

TASK_INSTANCE_VALID = """
    Q->I Q->K
    I->O I->R I->W I->K
    O->R O->X O->K O->E
    R->D R->E R->Z R->U R->T R->K
    T->Z T->E T->U T->D T->K
    X->E X->F X->K
    K->F
"""
TASK_INSTANCE_UNTIMELY = """
    R->O D->O E->O Z->O U->O T->O X->O
    T->R K->R K->E
    F->K D->K E->K Z->K U->K W->K
"""
TASK_INSTANCE_FINAL = "D E Z U W F"


def _parse_pairs(enum_type: type[enum.Enum], text: str) -> set[tuple[Any, Any]]:
    pairs: set[tuple[Any, Any]] = set()
    for token in text.split():
        source, target = token.split("->")
        pair = (enum_type(source), enum_type(target))
        assert pair not in pairs, f"{token} listed twice in the test"
        pairs.add(pair)
    return pairs


def _parse_statuses(enum_type: type[enum.Enum], text: str) -> set[Any]:
    return {enum_type(letter) for letter in text.split()}


EXPECTED: dict[str, tuple[StateMachine[Any], str, str, str]] = {
    "workflow": (WORKFLOW, WORKFLOW_VALID, WORKFLOW_UNTIMELY, WORKFLOW_FINAL),
    "workflow_run": (WORKFLOW_RUN, WORKFLOW_RUN_VALID, WORKFLOW_RUN_UNTIMELY, WORKFLOW_RUN_FINAL),
    "task": (TASK, TASK_VALID, TASK_UNTIMELY, TASK_FINAL),
    "task_instance": (
        TASK_INSTANCE,
        TASK_INSTANCE_VALID,
        TASK_INSTANCE_UNTIMELY,
        TASK_INSTANCE_FINAL,
    ),
}


def _expected_decision(name: str, current: Any, target: Any) -> Transition:
    machine, valid, untimely, _ = EXPECTED[name]
    if current is target:
        return Transition.UNTIMELY
    if (current, target) in _parse_pairs(machine.status_type, valid):
        return Transition.VALID
    if (current, target) in _parse_pairs(machine.status_type, untimely):
        return Transition.UNTIMELY
    return Transition.REFUSED


def _members(machine: StateMachine[Any]) -> list[enum.Enum]:
    enum_type: type[enum.Enum] = machine.status_type
    return list(enum_type)


ALL_PAIRS = [
    pytest.param(name, current, target, id=f"{name}:{current.value}->{target.value}")
    for name, (machine, *_rest) in EXPECTED.items()
    for current, target in itertools.product(_members(machine), repeat=2)
]


# --- every pair ------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "current", "target"), ALL_PAIRS)
def test_every_pair(name: str, current: Any, target: Any) -> None:
    machine = EXPECTED[name][0]
    expected = _expected_decision(name, current, target)
    assert machine.decide(current, target) is expected
    assert decide(current, target) is expected
    assert machine.can(current, target) is (expected is Transition.VALID)


def test_pair_count_covers_every_machine() -> None:
    sizes = {len(WorkflowStatus), len(WorkflowRunStatus), len(TaskStatus), len(TaskInstanceStatus)}
    assert sizes == {9, 13}
    assert len(ALL_PAIRS) == 9**2 + 13**2 + 9**2 + 13**2


@pytest.mark.parametrize("name", list(EXPECTED))
def test_tables_match_exactly(name: str) -> None:
    machine, valid, untimely, final = EXPECTED[name]
    assert machine.valid == _parse_pairs(machine.status_type, valid)
    assert machine.untimely == _parse_pairs(machine.status_type, untimely)
    assert machine.final == _parse_statuses(machine.status_type, final)


# --- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_same_status_is_untimely(machine: StateMachine[Any]) -> None:
    for status in machine.status_type:
        assert machine.decide(status, status) is Transition.UNTIMELY
        assert not machine.can(status, status)


# The only moves out of a final status: a fatally failed task may be reset by a resume.
FINAL_EXITS: dict[str, str] = {
    "workflow": "",
    "workflow_run": "",
    "task": "F->G",
    "task_instance": "",
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_final_statuses_have_no_valid_exits_except_listed(name: str) -> None:
    machine = EXPECTED[name][0]
    exits = {
        (current, target)
        for current in machine.final
        for target in machine.status_type
        if machine.can(current, target)
    }
    assert exits == _parse_pairs(machine.status_type, FINAL_EXITS[name])


def test_workflow_done_has_no_exits() -> None:
    assert WORKFLOW.targets(WorkflowStatus.DONE) == frozenset()


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_targets_agree_with_can(machine: StateMachine[Any]) -> None:
    for current in machine.status_type:
        expected = {t for t in machine.status_type if machine.can(current, t)}
        assert machine.targets(current) == expected


@pytest.mark.parametrize("machine", MACHINES, ids=lambda m: m.name)
def test_valid_and_untimely_are_disjoint(machine: StateMachine[Any]) -> None:
    assert not machine.valid & machine.untimely


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (WorkflowStatus.DONE, TaskStatus.DONE),
        (TaskStatus.RUNNING, TaskInstanceStatus.DONE),
        (WorkflowRunStatus.RUNNING, WorkflowStatus.DONE),
        (TaskInstanceStatus.QUEUED, WorkflowRunStatus.REGISTERED),
        ("R", "D"),
        (TaskStatus.RUNNING, "D"),
    ],
)
def test_decide_rejects_mismatched_types(current: Any, target: Any) -> None:
    with pytest.raises(TypeError):
        decide(current, target)


def test_machine_rejects_foreign_enum() -> None:
    # Same letters, other enum: str equality must not let a task status through.
    foreign: Any = WorkflowStatus.RUNNING
    with pytest.raises(TypeError):
        TASK.decide(foreign, TaskStatus.DONE)
    with pytest.raises(TypeError):
        TASK.decide(TaskStatus.RUNNING, foreign)


def test_machine_for() -> None:
    assert machine_for(WorkflowStatus) is WORKFLOW
    assert machine_for(WorkflowRunStatus) is WORKFLOW_RUN
    assert machine_for(TaskStatus) is TASK
    assert machine_for(TaskInstanceStatus) is TASK_INSTANCE
    with pytest.raises(TypeError):
        machine_for(Transition)


def test_bad_table_fails_at_construction() -> None:
    with pytest.raises(ValueError, match="both valid and untimely"):
        StateMachine(
            name="bad",
            status_type=TaskStatus,
            valid=frozenset({(TaskStatus.QUEUED, TaskStatus.RUNNING)}),
            untimely=frozenset({(TaskStatus.QUEUED, TaskStatus.RUNNING)}),
            final=frozenset(),
        )
    with pytest.raises(ValueError, match="self-loop"):
        StateMachine(
            name="bad",
            status_type=TaskStatus,
            valid=frozenset({(TaskStatus.QUEUED, TaskStatus.QUEUED)}),
            untimely=frozenset(),
            final=frozenset(),
        )


# --- the enums -------------------------------------------------------------------------------

ENUM_LETTERS: dict[type[enum.Enum], str] = {
    WorkflowStatus: "G Q I O R D F H A",
    WorkflowRunStatus: "G L B I O R D E S C H T A",
    TaskStatus: "G Q I O R D E A F",
    TaskInstanceStatus: "Q I O R D E Z U W T X K F",
}


@pytest.mark.parametrize("enum_type", list(ENUM_LETTERS), ids=lambda e: e.__name__)
def test_letters_are_unique_single_characters(enum_type: type[enum.Enum]) -> None:
    values = [member.value for member in enum_type]
    assert all(isinstance(v, str) and len(v) == 1 for v in values)
    assert len(set(values)) == len(values)
    assert values == ENUM_LETTERS[enum_type].split()
    for member in enum_type:
        assert isinstance(member, str)
        assert member == member.value


def test_member_names() -> None:
    assert WorkflowStatus("O") is WorkflowStatus.LAUNCHED
    assert WorkflowRunStatus("C") is WorkflowRunStatus.COLD_RESUME
    assert WorkflowRunStatus("H") is WorkflowRunStatus.HOT_RESUME
    assert TaskStatus("A") is TaskStatus.ADJUSTING_RESOURCES
    assert TaskStatus("E") is TaskStatus.ERROR_RECOVERABLE
    assert TaskInstanceStatus("W") is TaskInstanceStatus.NO_DISTRIBUTOR_ID
    assert TaskInstanceStatus("X") is TaskInstanceStatus.NO_HEARTBEAT
    assert TaskInstanceStatus("K") is TaskInstanceStatus.KILL_SELF
