"""Jobmon's exception names, at the path Jobmon's scripts import them from.

Each name is a class of herdsman's one exception tree (:mod:`herdsman.core.errors`) or an
alias of one, so ``except WorkflowAlreadyExists`` written for Jobmon catches what herdsman
raises, and ``except HerdsmanError`` catches all of them.
"""

from __future__ import annotations

from herdsman.core.errors import (
    CallableReturnedInvalidObject,
    ConfigError,
    CyclicGraphError,
    DistributorInterruptedError,
    DistributorNotAlive,
    DistributorStartupTimeout,
    DistributorUnexpected,
    DuplicateNodeArgsError,
    EmptyWorkflowError,
    HerdsmanError,
    InvalidMemoryFormat,
    InvalidMemoryUnit,
    InvalidRequest,
    InvalidResponse,
    InvalidStateTransition,
    NodeDependencyNotExistError,
    RemoteExitInfoNotAvailable,
    ResumeSet,
    TransitionError,
    UserTaskFunctionError,
    WorkflowAlreadyComplete,
    WorkflowAlreadyExists,
    WorkflowNotResumable,
    WorkflowRunStateError,
    WorkflowTestError,
)

__all__ = [
    "CallableReturnedInvalidObject",
    "ConfigError",
    "CyclicGraphError",
    "DistributorInterruptedError",
    "DistributorNotAlive",
    "DistributorStartupTimeout",
    "DistributorUnexpected",
    "DuplicateNodeArgsError",
    "EmptyWorkflowError",
    "HerdsmanError",
    "InvalidMemoryFormat",
    "InvalidMemoryUnit",
    "InvalidRequest",
    "InvalidResponse",
    "InvalidStateTransition",
    "NodeDependencyNotExistError",
    "RemoteExitInfoNotAvailable",
    "ResumeSet",
    "ReturnCodes",
    "TransitionError",
    "UserTaskFunctionError",
    "WorkflowAlreadyComplete",
    "WorkflowAlreadyExists",
    "WorkflowNotResumable",
    "WorkflowRunStateError",
    "WorkflowTestError",
]


class ReturnCodes:
    """Exit codes of the worker wrapper that Jobmon names (see :mod:`herdsman.worker`)."""

    OK = 0
    WORKER_NODE_ENV_FAILURE = 198
    WORKER_NODE_CLI_FAILURE = 199
