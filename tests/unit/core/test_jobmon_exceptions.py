"""Jobmon's exception and constant names: one tree with herdsman's errors, and the values."""

from __future__ import annotations

import inspect

import pytest

from herdsman.core import constants, errors, exceptions
from herdsman.core.errors import HerdsmanError, error_class_by_name
from herdsman.distributor.process import DistributorStartError

# Every class name of Jobmon's jobmon/core/exceptions.py.
JOBMON_EXCEPTIONS = [
    "InvalidResponse",
    "InvalidRequest",
    "RemoteExitInfoNotAvailable",
    "CallableReturnedInvalidObject",
    "WorkflowAlreadyExists",
    "WorkflowAlreadyComplete",
    "WorkflowNotResumable",
    "EmptyWorkflowError",
    "DistributorStartupTimeout",
    "DistributorNotAlive",
    "DistributorUnexpected",
    "WorkflowRunStateError",
    "ResumeSet",
    "NodeDependencyNotExistError",
    "DuplicateNodeArgsError",
    "InvalidMemoryFormat",
    "InvalidMemoryUnit",
    "ConfigError",
    "InvalidStateTransition",
    "TransitionError",
    "WorkflowTestError",
    "DistributorInterruptedError",
    "CyclicGraphError",
    "UserTaskFunctionError",
]


@pytest.mark.parametrize("name", JOBMON_EXCEPTIONS)
def test_each_jobmon_exception_is_part_of_herdsmans_tree(name: str) -> None:
    cls = getattr(exceptions, name)

    assert issubclass(cls, HerdsmanError)
    assert getattr(errors, name) is cls  # the same class, not a parallel one


@pytest.mark.parametrize(
    ("jobmon", "herdsman"),
    [
        ("ConfigError", errors.ConfigurationError),
        ("InvalidRequest", errors.InvalidInputError),
    ],
)
def test_aliases_are_the_herdsman_classes(jobmon: str, herdsman: type) -> None:
    assert getattr(exceptions, jobmon) is herdsman


@pytest.mark.parametrize(
    ("herdsman", "jobmon"),
    [
        (errors.TransitionRefused, exceptions.InvalidStateTransition),
        (errors.TransitionRefused, exceptions.TransitionError),
        (errors.ServerError, exceptions.InvalidResponse),
        (errors.RunTimedOutError, RuntimeError),
        (exceptions.DistributorNotAlive, RuntimeError),
        (DistributorStartError, exceptions.DistributorStartupTimeout),
        (exceptions.CyclicGraphError, errors.WorkflowValidationError),
        (exceptions.DuplicateNodeArgsError, ValueError),
        (exceptions.InvalidMemoryFormat, errors.InvalidResourceError),
    ],
)
def test_herdsmans_errors_are_caught_by_jobmons_except_clauses(
    herdsman: type, jobmon: type
) -> None:
    assert issubclass(herdsman, jobmon)


def test_every_class_of_the_tree_crosses_http_by_name() -> None:
    for name in JOBMON_EXCEPTIONS:
        cls = getattr(exceptions, name)
        assert error_class_by_name(cls.__name__) is cls
    assert error_class_by_name("NoSuchError") is errors.ServerError


def test_the_modules_all_lists_only_what_it_has() -> None:
    for name in exceptions.__all__:
        assert hasattr(exceptions, name)
    for name in JOBMON_EXCEPTIONS:
        assert name in exceptions.__all__


def test_return_codes() -> None:
    codes = exceptions.ReturnCodes
    assert (codes.OK, codes.WORKER_NODE_ENV_FAILURE, codes.WORKER_NODE_CLI_FAILURE) == (0, 198, 199)


# --- constants ----------------------------------------------------------------------------------

JOBMON_STATUSES = {
    "TaskStatus": {
        "REGISTERING": "G",
        "QUEUED": "Q",
        "INSTANTIATING": "I",
        "LAUNCHED": "O",
        "RUNNING": "R",
        "DONE": "D",
        "ERROR_RECOVERABLE": "E",
        "ADJUSTING_RESOURCES": "A",
        "ERROR_FATAL": "F",
    },
    "TaskInstanceStatus": {
        "DONE": "D",
        "ERROR": "E",
        "ERROR_FATAL": "F",
        "INSTANTIATED": "I",
        "KILL_SELF": "K",
        "LAUNCHED": "O",
        "QUEUED": "Q",
        "RUNNING": "R",
        "TRIAGING": "T",
        "UNKNOWN_ERROR": "U",
        "NO_DISTRIBUTOR_ID": "W",
        "NO_HEARTBEAT": "X",
        "RESOURCE_ERROR": "Z",
    },
    "WorkflowRunStatus": {
        "REGISTERED": "G",
        "LINKING": "L",
        "BOUND": "B",
        "ABORTED": "A",
        "RUNNING": "R",
        "DONE": "D",
        "STOPPED": "S",
        "ERROR": "E",
        "COLD_RESUME": "C",
        "HOT_RESUME": "H",
        "TERMINATED": "T",
        "INSTANTIATED": "I",
        "LAUNCHED": "O",
    },
    "WorkflowStatus": {
        "REGISTERING": "G",
        "QUEUED": "Q",
        "ABORTED": "A",
        "INSTANTIATING": "I",
        "LAUNCHED": "O",
        "RUNNING": "R",
        "DONE": "D",
        "HALTED": "H",
        "FAILED": "F",
    },
}


@pytest.mark.parametrize("class_name", sorted(JOBMON_STATUSES))
def test_status_letters_are_jobmons(class_name: str) -> None:
    cls = getattr(constants, class_name)
    for name, letter in JOBMON_STATUSES[class_name].items():
        assert getattr(cls, name) == letter


def test_the_task_status_label_table_names_every_status() -> None:
    labels = constants.TaskStatus.LABEL_DICT

    assert labels == {letter: name for name, letter in JOBMON_STATUSES["TaskStatus"].items()}
    assert "LABEL_DICT" not in constants.TaskStatus.__members__  # not a status itself


def test_the_other_constants() -> None:
    assert constants.MaxConcurrentlyRunning.MAXCONCURRENTLYRUNNING == 2**31 - 1
    assert (constants.ArgType.NODE_ARG, constants.ArgType.TASK_ARG) == (1, 2)
    assert constants.ArgType.OP_ARG == 3
    assert constants.TaskResourcesType.ADJUSTED == "A"
    assert constants.Direction.UP.value == "up" and constants.Direction.DOWN.value == "down"
    assert not constants.ExecludeTTVs.EXECLUDE_TTVS
    assert inspect.isclass(constants.SpecialChars)
