"""herdsman's exceptions, arranged by what the caller does next.

::

    HerdsmanError
    ├── InvalidInputError            fix the input and try again (HTTP 422/400)
    │   ├── InvalidResourceError     a memory/runtime/queue value is not understood or too big
    │   │   ├── InvalidMemoryFormat  a memory value is not understood
    │   │   ├── InvalidMemoryUnit    a memory value cannot be shown in the unit asked for
    │   │   └── CallableReturnedInvalidObject  a compute_resources callable gave no dict
    │   ├── WorkflowValidationError  the DAG or its tasks are inconsistent
    │   │   ├── CyclicGraphError             the tasks' dependencies form a cycle
    │   │   ├── DuplicateNodeArgsError       two tasks of a template have the same node args
    │   │   ├── NodeDependencyNotExistError  a task depends on a task outside the workflow
    │   │   ├── EmptyWorkflowError           the workflow has no tasks
    │   │   ├── InvalidToolVersionError      the tool has no such version
    │   │   └── InvalidTaskNameError         an explicit task name the clusters would refuse
    │   ├── ConfigurationError       a setting is missing or malformed (alias ConfigError)
    │   └── RequestTooLargeError     the request body is over the server's limit (HTTP 413)
    ├── NotFoundError                the id or name does not exist on the server (HTTP 404)
    ├── AuthenticationError          no valid credentials: sign in or fix the token (HTTP 401)
    ├── PermissionDeniedError        only the workflow's owner may do this (HTTP 403)
    ├── TooManyRequestsError         over a per-user limit of the server: wait (HTTP 429)
    ├── ConflictError                the server's state forbids the request (HTTP 409)
    │   ├── TransitionError
    │   │   └── InvalidStateTransition
    │   │       └── TransitionRefused    a status change is not allowed; carries the status
    │   ├── WorkflowRunStateError    a workflow run is not in a status that allows this
    │   ├── WorkflowAlreadyExists    same workflow_args, different tasks
    │   ├── WorkflowAlreadyComplete  nothing left to run
    │   └── WorkflowNotResumable     the workflow cannot be resumed now
    ├── InvalidResponse              the server answered something unexpected
    │   └── ServerError              the server answered 5xx: report it, do not retry blindly
    ├── ServerUnavailableError       transport failed after retries: check the server is up
    ├── RunEndedEarly (RuntimeError) ``Workflow.run()`` ended E for a reason outside its tasks
    │   ├── RunTimedOutError         seconds_until_timeout passed
    │   └── DistributorNotAlive      a distributor process died during the run
    ├── DistributorStartupTimeout    a distributor did not start in time
    └── (Jobmon's other names, for ``except`` clauses: DistributorUnexpected,
         DistributorInterruptedError, RemoteExitInfoNotAvailable, ResumeSet,
         WorkflowTestError, UserTaskFunctionError)

    RunInterrupted (KeyboardInterrupt)  Ctrl-C stopped a run: it is S, its jobs are killed

    RunEndedEarlyWarning             a resume ended E for a reason outside its tasks (warning)
    ├── RunTimedOutWarning           seconds_until_timeout passed
    └── DistributorDiedWarning       a distributor process died during the run

Jobmon's exception names (:mod:`herdsman.core.exceptions`) are these classes or aliases of
them, so an ``except`` clause written for Jobmon catches what herdsman raises.

``Workflow.run()`` raises :class:`RunTimedOutError` (a ``RuntimeError``, as Jobmon's
``run()`` raises on a timeout) and :class:`DistributorNotAlive` once the run has ended, its
summary printed and every task's ``final_status`` recorded. ``resume_workflow_from_id`` and
``herdsman workflow resume`` return the status letter whatever ends the run and issue the
warnings instead; they are ``RuntimeWarning`` *and* ``RuntimeError`` subclasses, which
``warnings.simplefilter("error", RunEndedEarlyWarning)`` turns into exceptions.

Exceptions cross the HTTP boundary by name: the server's error handler writes ``{"error":
<class name>, "message": ..., "details": ...}`` and the client's requester raises the class of
that name again, so a user sees the same exception locally and remotely.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "AuthenticationError",
    "CallableReturnedInvalidObject",
    "ConfigError",
    "ConfigurationError",
    "ConflictError",
    "CyclicGraphError",
    "DistributorDiedWarning",
    "DistributorInterruptedError",
    "DistributorNotAlive",
    "DistributorStartupTimeout",
    "DistributorUnexpected",
    "DuplicateNodeArgsError",
    "EmptyWorkflowError",
    "HerdsmanError",
    "InvalidInputError",
    "InvalidMemoryFormat",
    "InvalidMemoryUnit",
    "InvalidRequest",
    "InvalidResourceError",
    "InvalidResponse",
    "InvalidStateTransition",
    "InvalidTaskNameError",
    "InvalidToolError",
    "InvalidToolVersionError",
    "NodeDependencyNotExistError",
    "NotFoundError",
    "PermissionDeniedError",
    "RemoteExitInfoNotAvailable",
    "RequestTooLargeError",
    "ResumeSet",
    "RunEndedEarly",
    "RunEndedEarlyWarning",
    "RunInterrupted",
    "RunTimedOutError",
    "RunTimedOutWarning",
    "ServerError",
    "ServerUnavailableError",
    "TooManyRequestsError",
    "TransitionError",
    "TransitionRefused",
    "UserTaskFunctionError",
    "WorkflowAlreadyComplete",
    "WorkflowAlreadyExists",
    "WorkflowNotResumable",
    "WorkflowRunStateError",
    "WorkflowTestError",
    "WorkflowValidationError",
    "error_class_by_name",
    "short_traceback",
]

P = ParamSpec("P")
R = TypeVar("R")


class HerdsmanError(Exception):
    """Base of every error herdsman raises on purpose."""

    http_status: int = 500

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}


class InvalidInputError(HerdsmanError, ValueError):
    """The request or the user's input is wrong; repeating it unchanged cannot succeed."""

    http_status = 422


InvalidRequest = InvalidInputError
"""Jobmon's name for a request the server cannot accept."""


class InvalidResourceError(InvalidInputError):
    """A compute-resource value (memory, runtime, cores, queue) cannot be used."""


class InvalidMemoryFormat(InvalidResourceError):
    """A memory value is neither a number of GiB nor a string such as ``"512M"``."""


class InvalidMemoryUnit(InvalidResourceError):
    """A memory value cannot be expressed in the unit asked for."""


class CallableReturnedInvalidObject(InvalidResourceError):
    """A task's ``compute_resources_callable`` raised or returned something other than a dict."""


class WorkflowValidationError(InvalidInputError):
    """The workflow is inconsistent: a cycle, an upstream not in it, duplicate tasks, bad args."""


class CyclicGraphError(WorkflowValidationError):
    """The tasks' dependencies form a cycle; ``details['cycle']`` names its tasks."""


class DuplicateNodeArgsError(WorkflowValidationError):
    """Two tasks of one template version have the same node args: they are the same node."""


class NodeDependencyNotExistError(WorkflowValidationError):
    """A task of the workflow depends on a task that was not added to it."""


class EmptyWorkflowError(WorkflowValidationError):
    """The workflow has no tasks, so there is nothing to bind or run."""


class InvalidToolError(WorkflowValidationError):
    """The tool name cannot be used."""


class InvalidToolVersionError(WorkflowValidationError):
    """The tool has no version with the id asked for."""


class InvalidTaskNameError(WorkflowValidationError):
    """An explicit task name that cluster schedulers refuse (a leading digit, a space, ...)."""


class ConfigurationError(InvalidInputError):
    """A setting is missing or malformed."""


ConfigError = ConfigurationError
"""Jobmon's name for a missing or malformed setting."""


class RequestTooLargeError(InvalidInputError):
    """The request body is larger than the server accepts; send it in smaller parts."""

    http_status = 413


class NotFoundError(HerdsmanError, LookupError):
    """The object named by the request does not exist."""

    http_status = 404


class AuthenticationError(HerdsmanError):
    """The request carries no credentials the server accepts (missing, expired, revoked)."""

    http_status = 401


class PermissionDeniedError(HerdsmanError):
    """The request changes a workflow its sender does not own; ask the owner to make it."""

    http_status = 403


class TooManyRequestsError(HerdsmanError):
    """A shared server's per-user limit refused the request (too many live runs, or requests
    too fast); the message names the limit and its setting. Wait, or ask the operator."""

    http_status = 429


class ConflictError(HerdsmanError):
    """The server's current state forbids the request."""

    http_status = 409


class TransitionError(ConflictError):
    """A status change failed."""


class InvalidStateTransition(TransitionError):
    """A status change the state machine does not allow."""


class TransitionRefused(InvalidStateTransition):
    """A status change the state machine does not allow; ``details['status']`` is current."""


class WorkflowRunStateError(ConflictError):
    """The workflow run is not in a status that allows the request."""


class WorkflowAlreadyExists(ConflictError):
    """A workflow with these workflow_args exists with a different set of tasks.

    Give the new workflow different ``workflow_args`` or resume the existing one.
    """


class WorkflowAlreadyComplete(ConflictError):
    """Every task of the workflow is done; there is nothing to run."""


class WorkflowNotResumable(ConflictError):
    """The workflow cannot be resumed in its present state."""


class InvalidResponse(HerdsmanError):
    """The server answered in a way the client did not expect."""


class ServerError(InvalidResponse):
    """The server failed while handling the request (HTTP 5xx)."""


class ServerUnavailableError(HerdsmanError):
    """The server could not be reached, even after retrying."""

    http_status = 503


class RunEndedEarly(HerdsmanError, RuntimeError):
    """``Workflow.run()`` ended E for a reason outside its tasks; the run can be resumed.

    Raised after the run has ended: its summary is printed and each task's ``final_status``
    is set. ``details`` holds ``workflow_id``, ``workflow_run_id`` and ``status`` ("E").
    """


class RunTimedOutError(RunEndedEarly):
    """``seconds_until_timeout`` passed before every task finished (Jobmon: RuntimeError)."""


class DistributorNotAlive(RunEndedEarly):
    """A distributor process died during the run, so nothing could launch its tasks."""


class DistributorStartupTimeout(HerdsmanError):
    """A distributor process did not say it was ready within distributor_startup_timeout."""


class DistributorUnexpected(HerdsmanError):
    """Something the distributor did not expect happened."""


class DistributorInterruptedError(HerdsmanError):
    """The distributor was sent a signal."""


class RemoteExitInfoNotAvailable(HerdsmanError):
    """The cluster could not say how a job ended."""


class ResumeSet(HerdsmanError):
    """Another process asked to resume the workflow this run holds."""


class WorkflowTestError(HerdsmanError):
    """A workflow run failed in a test."""


class UserTaskFunctionError(HerdsmanError):
    """A user's task function raised; the original exception is chained."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a workflow run, and the user confirmed; the message says what became of it.

    A ``KeyboardInterrupt``, so that scripts and shells treat it as the interrupt it is.
    """


class RunEndedEarlyWarning(RuntimeWarning, RuntimeError):
    """A resumed run ended E for a reason outside its tasks; the status letter was returned.

    Warnings rather than exceptions for ``resume_workflow_from_id``, which keeps one contract
    (it returns the status letter however the run ends); see the module docstring.
    """


class RunTimedOutWarning(RunEndedEarlyWarning):
    """The run ended because ``seconds_until_timeout`` passed before every task finished."""


class DistributorDiedWarning(RunEndedEarlyWarning):
    """The run ended because a distributor process died: nothing could launch its tasks."""


def error_class_by_name(name: str) -> type[HerdsmanError]:
    """The exception class a server error payload names, or ServerError for unknown names."""
    found = _BY_NAME.get(name)
    return found if found is not None else ServerError


def _subclasses(root: type[HerdsmanError]) -> list[type[HerdsmanError]]:
    found = [root]
    for child in root.__subclasses__():
        found.extend(_subclasses(child))
    return found


# Every class of the tree crosses the HTTP boundary by its name.
_BY_NAME: dict[str, type[HerdsmanError]] = {
    cls.__name__: cls for cls in _subclasses(HerdsmanError) if cls.__module__ == __name__
}


def short_traceback(function: Callable[P, R]) -> Callable[P, R]:
    """Raise herdsman's errors from a public function with a traceback that ends there.

    A refused request surfaces deep in the HTTP client (the requester, tenacity, httpx), and
    those frames say nothing to a scientist whose ``workflow.run()`` found the workflow
    complete. The error is raised again from this function's frame, without its chain, so the
    traceback is the caller's lines and the message. With debug logging on
    (``HERDSMAN_LOG_LEVEL=debug``, ``herdsman --debug``) the full traceback is kept.
    """

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return function(*args, **kwargs)
        except (HerdsmanError, RunInterrupted) as error:
            from herdsman.core.logs import debugging

            if debugging():
                raise
            raise error.with_traceback(None) from None

    return wrapper
