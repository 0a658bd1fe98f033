"""The four status state machines (workflow, workflow run, task, task instance), as data.

Every status change in herdsman goes through :func:`decide`, so the rules live in one place and
are written as tables rather than scattered ``if`` statements. The tables are data because the
server, the client, the distributor and the tests all need to ask the same question -- "may this
thing move from A to B?" -- and a reviewer should be able to read the whole answer on one screen.

Each question has three answers, not two. On a cluster, reports arrive late, twice, or out of
order: a worker may say "running" before the distributor has recorded the launch, and a
resumed workflow's old run may be told to stop twice. Such reports are *untimely*: they are
harmless, so the server ignores them and answers with the current status instead of failing the
caller. Only a change that would corrupt the record is *refused*.

The one-letter values are what the database stores; the member names are what code reads.
What a change entails (a failed attempt's task is retried, a run's status moves its workflow)
and every set of statuses derived from these tables live beside them, in
:mod:`herdsman.core.lifecycle`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

__all__ = [
    "MACHINES",
    "TASK",
    "TASK_BY_OWNER",
    "TASK_INSTANCE",
    "WORKFLOW",
    "WORKFLOW_BY_OWNER",
    "WORKFLOW_RUN",
    "StateMachine",
    "TaskInstanceStatus",
    "TaskStatus",
    "Transition",
    "WorkflowRunStatus",
    "WorkflowStatus",
    "decide",
    "machine_for",
]


class WorkflowStatus(enum.StrEnum):
    """Where a workflow is, summed over its runs."""

    REGISTERING = "G"
    QUEUED = "Q"
    INSTANTIATING = "I"
    LAUNCHED = "O"
    RUNNING = "R"
    DONE = "D"
    FAILED = "F"
    HALTED = "H"
    ABORTED = "A"


class WorkflowRunStatus(enum.StrEnum):
    """Where one attempt at running a workflow is."""

    REGISTERED = "G"
    LINKING = "L"
    BOUND = "B"
    INSTANTIATED = "I"
    LAUNCHED = "O"
    RUNNING = "R"
    DONE = "D"
    ERROR = "E"
    STOPPED = "S"
    COLD_RESUME = "C"
    HOT_RESUME = "H"
    TERMINATED = "T"
    ABORTED = "A"


class TaskStatus(enum.StrEnum):
    """Where a task (one command of the DAG) is, across its attempts."""

    REGISTERING = "G"
    QUEUED = "Q"
    INSTANTIATING = "I"
    LAUNCHED = "O"
    RUNNING = "R"
    DONE = "D"
    ERROR_RECOVERABLE = "E"
    ADJUSTING_RESOURCES = "A"
    ERROR_FATAL = "F"

    # Jobmon's letter -> name table; a plain attribute, not a status.
    LABEL_DICT = enum.nonmember(
        {
            "G": "REGISTERING",
            "Q": "QUEUED",
            "I": "INSTANTIATING",
            "O": "LAUNCHED",
            "R": "RUNNING",
            "D": "DONE",
            "E": "ERROR_RECOVERABLE",
            "A": "ADJUSTING_RESOURCES",
            "F": "ERROR_FATAL",
        }
    )


class TaskInstanceStatus(enum.StrEnum):
    """Where one attempt at a task (one cluster job or array element) is."""

    QUEUED = "Q"
    INSTANTIATED = "I"
    LAUNCHED = "O"
    RUNNING = "R"
    DONE = "D"
    ERROR = "E"
    RESOURCE_ERROR = "Z"
    UNKNOWN_ERROR = "U"
    NO_DISTRIBUTOR_ID = "W"
    TRIAGING = "T"
    NO_HEARTBEAT = "X"
    KILL_SELF = "K"
    ERROR_FATAL = "F"


class Transition(enum.StrEnum):
    """What to do with a requested status change."""

    VALID = "valid"
    """Apply it."""
    UNTIMELY = "untimely"
    """A late or repeated report: ignore it and answer success with the current status."""
    REFUSED = "refused"
    """Do not apply it: answer with the current status and give the caller an error."""


S = TypeVar("S", bound=enum.Enum)


@dataclass(frozen=True)
class StateMachine(Generic[S]):
    """The allowed moves between the members of one status enum.

    ``valid`` and ``untimely`` must not overlap and hold no self-loops (staying put is always
    untimely); both are checked when the machine is built, so a typo in a table fails at import.
    """

    name: str
    status_type: type[S]
    valid: frozenset[tuple[S, S]]
    untimely: frozenset[tuple[S, S]]
    final: frozenset[S]
    _targets: Mapping[S, frozenset[S]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        members = set(self.status_type)
        for kind, pairs in (("valid", self.valid), ("untimely", self.untimely)):
            for current, target in pairs:
                if current not in members or target not in members:
                    raise ValueError(f"{self.name}: {kind} pair {current!r}->{target!r} is foreign")
                if current is target:
                    raise ValueError(f"{self.name}: {kind} pair {current!r} is a self-loop")
        both = self.valid & self.untimely
        if both:
            raise ValueError(f"{self.name}: pairs both valid and untimely: {sorted(both)}")
        if not self.final <= members:
            raise ValueError(f"{self.name}: final statuses are not all {self.status_type}")
        targets = {status: frozenset(t for c, t in self.valid if c is status) for status in members}
        object.__setattr__(self, "_targets", targets)

    def decide(self, current: S, target: S) -> Transition:
        """Whether ``current -> target`` is valid, untimely (ignored) or refused."""
        self._check(current)
        self._check(target)
        if current is target:
            return Transition.UNTIMELY  # an idempotent replay of the same report
        if (current, target) in self.valid:
            return Transition.VALID
        if (current, target) in self.untimely:
            return Transition.UNTIMELY
        return Transition.REFUSED

    def can(self, current: S, target: S) -> bool:
        """True if ``current -> target`` is a valid (applied) transition."""
        return self.decide(current, target) is Transition.VALID

    def targets(self, current: S) -> frozenset[S]:
        """The statuses ``current`` may validly move to."""
        self._check(current)
        return self._targets[current]

    def _check(self, status: S) -> None:
        # The enums mix in str, so WorkflowStatus.DONE == TaskStatus.DONE; check the type so a
        # task status can never be judged by the workflow machine.
        if not isinstance(status, self.status_type):
            raise TypeError(
                f"{self.name} state machine expects {self.status_type.__name__}, "
                f"got {type(status).__name__} {status!r}"
            )


def _pairs(table: Mapping[S, Iterable[S]]) -> frozenset[tuple[S, S]]:
    return frozenset((current, target) for current, targets in table.items() for target in targets)


# ---------------------------------------------------------------------------------------------
# Workflow runs
# ---------------------------------------------------------------------------------------------

_R = WorkflowRunStatus

_RUN_VALID: dict[WorkflowRunStatus, tuple[WorkflowRunStatus, ...]] = {
    _R.REGISTERED: (_R.LINKING, _R.ABORTED),
    _R.LINKING: (_R.BOUND, _R.ABORTED),
    _R.BOUND: (
        _R.INSTANTIATED,
        _R.ERROR,
        _R.ABORTED,  # the client gave up before the run started
        _R.STOPPED,  # stopped before it ran
        _R.COLD_RESUME,  # a new run resumes the workflow; this one is told to let go
        _R.HOT_RESUME,
    ),
    _R.INSTANTIATED: (
        _R.LAUNCHED,
        _R.ERROR,
        _R.STOPPED,
        _R.COLD_RESUME,
        _R.HOT_RESUME,
    ),
    _R.LAUNCHED: (
        _R.RUNNING,
        _R.ERROR,
        _R.STOPPED,
        _R.COLD_RESUME,
        _R.HOT_RESUME,
    ),
    _R.RUNNING: (
        _R.DONE,
        _R.ERROR,
        _R.STOPPED,
        _R.COLD_RESUME,
        _R.HOT_RESUME,
    ),
    # ERROR and STOPPED end the run's scheduling, but the workflow can still be resumed by a
    # new run, which tells this one to let go.
    _R.ERROR: (_R.COLD_RESUME, _R.HOT_RESUME),
    _R.STOPPED: (_R.COLD_RESUME, _R.HOT_RESUME),
    # The run acknowledges the resume: its tasks are killed (cold) or left to finish (hot).
    _R.COLD_RESUME: (_R.TERMINATED,),
    _R.HOT_RESUME: (_R.TERMINATED,),
    _R.DONE: (),
    _R.TERMINATED: (),
    _R.ABORTED: (),
}

_RUN_UNTIMELY: dict[WorkflowRunStatus, tuple[WorkflowRunStatus, ...]] = {
    # A launch report that arrives after the run already reported running.
    _R.RUNNING: (_R.LAUNCHED, _R.INSTANTIATED),
    # The resume was announced twice; the run has already let go.
    _R.TERMINATED: (_R.COLD_RESUME, _R.HOT_RESUME),
}

WORKFLOW_RUN: StateMachine[WorkflowRunStatus] = StateMachine(
    name="workflow run",
    status_type=WorkflowRunStatus,
    valid=_pairs(_RUN_VALID),
    untimely=_pairs(_RUN_UNTIMELY),
    final=frozenset({_R.DONE, _R.TERMINATED, _R.ABORTED}),
)


# ---------------------------------------------------------------------------------------------
# Workflows
# ---------------------------------------------------------------------------------------------

_W = WorkflowStatus

_WORKFLOW_VALID: dict[WorkflowStatus, tuple[WorkflowStatus, ...]] = {
    _W.REGISTERING: (_W.QUEUED, _W.ABORTED),
    # From QUEUED onwards every unfinished status may go back to REGISTERING: a new run
    # re-registers a resumable workflow.
    _W.QUEUED: (_W.INSTANTIATING, _W.ABORTED, _W.FAILED, _W.HALTED, _W.REGISTERING),
    _W.INSTANTIATING: (_W.LAUNCHED, _W.FAILED, _W.HALTED, _W.REGISTERING),
    _W.LAUNCHED: (_W.RUNNING, _W.FAILED, _W.HALTED, _W.REGISTERING),
    _W.RUNNING: (_W.DONE, _W.FAILED, _W.HALTED, _W.REGISTERING),
    # A failed or halted workflow is done when its last tasks finish after its run ended:
    # a hot resume's jobs, or jobs a distributor saw through after its swarm died.
    _W.FAILED: (_W.REGISTERING, _W.DONE),
    _W.HALTED: (_W.REGISTERING, _W.DONE),
    _W.ABORTED: (_W.REGISTERING,),
    _W.DONE: (),
}

_WORKFLOW_UNTIMELY: dict[WorkflowStatus, tuple[WorkflowStatus, ...]] = {
    # Late reports from a run after the workflow had already finished.
    _W.DONE: (_W.RUNNING, _W.FAILED, _W.HALTED),
}

WORKFLOW: StateMachine[WorkflowStatus] = StateMachine(
    name="workflow",
    status_type=WorkflowStatus,
    valid=_pairs(_WORKFLOW_VALID),
    untimely=_pairs(_WORKFLOW_UNTIMELY),
    final=frozenset({_W.DONE}),
)


WORKFLOW_BY_OWNER: StateMachine[WorkflowStatus] = StateMachine(
    name="workflow (owner update)",
    status_type=WorkflowStatus,
    # A done workflow whose owner sets tasks back to registering has work again: it moves back
    # to failed, from where a resume runs those tasks (Jobmon's rule).
    valid=_pairs({_W.DONE: (_W.FAILED,)}),
    untimely=frozenset(),
    final=frozenset(),
)


# ---------------------------------------------------------------------------------------------
# Tasks
# ---------------------------------------------------------------------------------------------

_T = TaskStatus

_TASK_VALID: dict[TaskStatus, tuple[TaskStatus, ...]] = {
    _T.REGISTERING: (_T.QUEUED,),
    # Every unfinished status (and ERROR_FATAL) may be reset to REGISTERING: a resume restarts
    # the workflow's unfinished tasks.
    _T.QUEUED: (_T.INSTANTIATING, _T.REGISTERING),
    _T.INSTANTIATING: (
        _T.LAUNCHED,
        _T.RUNNING,  # the worker reported running before the distributor recorded the launch
        _T.ERROR_RECOVERABLE,  # the submission failed
        _T.REGISTERING,
    ),
    _T.LAUNCHED: (
        _T.RUNNING,
        _T.ERROR_RECOVERABLE,  # the job was lost before it ran
        _T.REGISTERING,
    ),
    _T.RUNNING: (_T.DONE, _T.ERROR_RECOVERABLE, _T.REGISTERING),
    _T.ERROR_RECOVERABLE: (
        _T.REGISTERING,  # retry
        _T.ADJUSTING_RESOURCES,  # a resource error: adjust the resources, then retry
        _T.ERROR_FATAL,  # the attempts are spent
    ),
    _T.ADJUSTING_RESOURCES: (
        _T.QUEUED,  # queued again with the adjusted resources
        _T.REGISTERING,
    ),
    _T.ERROR_FATAL: (_T.REGISTERING,),
    _T.DONE: (),
}

_TASK_UNTIMELY: dict[TaskStatus, tuple[TaskStatus, ...]] = {
    # The launch was recorded after the worker reported running.
    _T.RUNNING: (_T.LAUNCHED,),
    # Late progress reports about an attempt that already finished the task.
    _T.DONE: (_T.RUNNING, _T.LAUNCHED, _T.INSTANTIATING),
}

TASK: StateMachine[TaskStatus] = StateMachine(
    name="task",
    status_type=TaskStatus,
    valid=_pairs(_TASK_VALID),
    untimely=_pairs(_TASK_UNTIMELY),
    final=frozenset({_T.DONE, _T.ERROR_FATAL}),
)


# Changes a workflow's owner makes by hand (``herdsman task update``, ``workflow reset``), on a
# workflow that no run holds. They are not the scheduler's moves: a finished task may be reset
# so that it runs again, and any task may be marked done when its output was made another way.
# Nothing is running, so every status may go to either target; the scheduler's own table above
# stays strict. Being a second table for the same enum, it is not in MACHINES/machine_for.

_T_ALL = tuple(TaskStatus)

TASK_BY_OWNER: StateMachine[TaskStatus] = StateMachine(
    name="task (owner update)",
    status_type=TaskStatus,
    valid=_pairs(
        {
            status: tuple(t for t in (_T.REGISTERING, _T.DONE) if t is not status)
            for status in _T_ALL
        }
    ),
    untimely=frozenset(),
    final=frozenset(),
)


# ---------------------------------------------------------------------------------------------
# Task instances
# ---------------------------------------------------------------------------------------------

_I = TaskInstanceStatus

_INSTANCE_VALID: dict[TaskInstanceStatus, tuple[TaskInstanceStatus, ...]] = {
    # KILL_SELF is reachable from every live status: the instance is told to stop.
    _I.QUEUED: (_I.INSTANTIATED, _I.KILL_SELF),
    _I.INSTANTIATED: (
        _I.LAUNCHED,
        _I.RUNNING,  # a fast start, before the launch is recorded
        _I.NO_DISTRIBUTOR_ID,  # the submission failed
        _I.KILL_SELF,
    ),
    _I.LAUNCHED: (
        _I.RUNNING,
        _I.NO_HEARTBEAT,  # the job vanished before it started
        _I.KILL_SELF,
        _I.ERROR,
    ),
    _I.RUNNING: (
        _I.DONE,
        _I.ERROR,
        _I.RESOURCE_ERROR,
        _I.UNKNOWN_ERROR,
        _I.TRIAGING,  # heartbeats stopped: find out from the cluster what happened
        _I.KILL_SELF,
    ),
    _I.TRIAGING: (
        _I.RESOURCE_ERROR,
        _I.ERROR,
        _I.UNKNOWN_ERROR,
        _I.DONE,  # the worker's late done report wins over triage
        _I.KILL_SELF,
    ),
    _I.NO_HEARTBEAT: (_I.ERROR, _I.ERROR_FATAL, _I.KILL_SELF),
    _I.KILL_SELF: (_I.ERROR_FATAL,),  # the kill is acknowledged
    _I.DONE: (),
    _I.ERROR: (),
    _I.RESOURCE_ERROR: (),
    _I.UNKNOWN_ERROR: (),
    _I.NO_DISTRIBUTOR_ID: (),
    _I.ERROR_FATAL: (),
}

_INSTANCE_UNTIMELY: dict[TaskInstanceStatus, tuple[TaskInstanceStatus, ...]] = {
    # The launch is recorded after the instance has already moved on.
    _I.RUNNING: (_I.LAUNCHED,),
    _I.TRIAGING: (
        _I.LAUNCHED,
        _I.RUNNING,  # a late heartbeat while triage runs; triage decides
    ),
    _I.NO_HEARTBEAT: (_I.LAUNCHED,),
    _I.KILL_SELF: (
        _I.RUNNING,  # a heartbeat from an instance that has not yet read its kill order
        _I.ERROR,  # the worker reports an error after being told to die
    ),
    # A late launch record, or a kill request, for an instance that has finished: nothing to do.
    _I.DONE: (_I.LAUNCHED, _I.KILL_SELF),
    _I.ERROR: (_I.LAUNCHED, _I.KILL_SELF),
    _I.RESOURCE_ERROR: (_I.LAUNCHED, _I.KILL_SELF),
    _I.UNKNOWN_ERROR: (_I.LAUNCHED, _I.KILL_SELF),
    _I.NO_DISTRIBUTOR_ID: (_I.KILL_SELF,),
    _I.ERROR_FATAL: (_I.KILL_SELF,),
}

TASK_INSTANCE: StateMachine[TaskInstanceStatus] = StateMachine(
    name="task instance",
    status_type=TaskInstanceStatus,
    valid=_pairs(_INSTANCE_VALID),
    untimely=_pairs(_INSTANCE_UNTIMELY),
    final=frozenset(
        {
            _I.DONE,
            _I.ERROR,
            _I.RESOURCE_ERROR,
            _I.UNKNOWN_ERROR,
            _I.NO_DISTRIBUTOR_ID,
            _I.ERROR_FATAL,
        }
    ),
)


# ---------------------------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------------------------

MACHINES: tuple[StateMachine[Any], ...] = (WORKFLOW, WORKFLOW_RUN, TASK, TASK_INSTANCE)

_MACHINE_BY_TYPE: dict[type[enum.Enum], StateMachine[Any]] = {
    machine.status_type: machine for machine in MACHINES
}

AnyStatus = TypeVar("AnyStatus", WorkflowStatus, WorkflowRunStatus, TaskStatus, TaskInstanceStatus)


def machine_for(status_type: type[S]) -> StateMachine[S]:
    """The state machine of a status enum; TypeError for anything else."""
    machine = _MACHINE_BY_TYPE.get(status_type)
    if machine is None:
        raise TypeError(f"no state machine for {status_type!r}")
    return machine


def decide(current: AnyStatus, target: AnyStatus) -> Transition:
    """Decide ``current -> target`` with the machine of ``current``'s enum.

    Raises TypeError if the two statuses are of different enums (or not statuses at all).
    """
    if type(current) is not type(target):
        raise TypeError(
            f"cannot decide a transition between {type(current).__name__} {current!r} "
            f"and {type(target).__name__} {target!r}"
        )
    return machine_for(type(current)).decide(current, target)
