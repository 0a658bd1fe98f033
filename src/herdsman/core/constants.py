"""Jobmon's constants module: status letters and the other fixed values scripts import.

The four status classes are herdsman's own enums (:mod:`herdsman.core.statuses`), whose
members are strings: ``TaskStatus.DONE == "D"`` holds as in Jobmon, and a status read from
the server compares equal to them.
"""

from __future__ import annotations

import enum

from herdsman.core.statuses import TaskInstanceStatus, TaskStatus, WorkflowRunStatus, WorkflowStatus

__all__ = [
    "ArgType",
    "Direction",
    "ExecludeTTVs",
    "MaxConcurrentlyRunning",
    "SpecialChars",
    "TaskInstanceStatus",
    "TaskResourcesType",
    "TaskStatus",
    "WorkflowRunStatus",
    "WorkflowStatus",
]


class ArgType:
    """The three kinds of a template's arguments, by Jobmon's numbers."""

    NODE_ARG = 1
    TASK_ARG = 2
    OP_ARG = 3


class TaskResourcesType:
    """Whether a task's resources are as requested, validated, or adjusted after a failure."""

    ORIGINAL = "O"
    VALIDATED = "V"
    ADJUSTED = "A"


class Direction(enum.Enum):
    """Up or down a DAG."""

    UP = "up"
    DOWN = "down"


class SpecialChars:
    """Characters an explicit task name may not contain (cluster schedulers refuse them)."""

    ILLEGAL_SPECIAL_CHARACTERS = "/\\'\" "


class ExecludeTTVs:
    """Template versions whose resource usage Jobmon refuses to query; none in herdsman."""

    EXECLUDE_TTVS: frozenset[int] = frozenset()


class MaxConcurrentlyRunning:
    """The largest concurrency limit (a signed 32-bit integer, as Jobmon's database holds)."""

    MAXCONCURRENTLYRUNNING = 2_147_483_647
