"""herdsman's exceptions, arranged by what the caller does next.

::

    HerdsmanError
    ├── InvalidInputError            fix the input and try again (HTTP 422/400)
    │   ├── InvalidResourceError     a memory/runtime/queue value is not understood or too big
    │   ├── WorkflowValidationError  the DAG or its tasks are inconsistent (a cycle…)
    │   ├── ConfigurationError       a setting is missing or malformed
    │   └── RequestTooLargeError     the request body is over the server's limit (HTTP 413)
    ├── NotFoundError                the id or name does not exist on the server (HTTP 404)
    ├── AuthenticationError          no valid credentials: sign in or fix the token (HTTP 401)
    ├── PermissionDeniedError        only the workflow's owner may do this (HTTP 403)
    ├── ConflictError                the server's state forbids the request (HTTP 409)
    │   ├── TransitionRefused        a status change is not allowed; carries the current status
    │   ├── WorkflowAlreadyExists    same workflow_args, different tasks
    │   └── WorkflowAlreadyComplete  nothing left to run
    ├── ServerError                  the server answered 5xx: report it, do not retry blindly
    └── ServerUnavailableError       transport failed after retries: check the server is up

    RunInterrupted (KeyboardInterrupt)  Ctrl-C stopped a run: it is S, its jobs are killed

    RunEndedEarlyWarning             a run returned E for a reason outside its tasks (warning)
    ├── RunTimedOutWarning           seconds_until_timeout passed
    └── DistributorDiedWarning       a distributor process died during the run

The warnings are issued by ``Workflow.run()``, which returns the status letter whatever ends
the run. They are ``RuntimeWarning`` *and* ``RuntimeError`` subclasses: a script that wants
Jobmon's behaviour (its ``run()`` raises ``RuntimeError`` on a timeout and
``DistributorNotAlive`` when the distributor dies) turns them into exceptions with
``warnings.simplefilter("error", RunEndedEarlyWarning)`` and catches ``RuntimeError``.

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
    "ConfigurationError",
    "ConflictError",
    "DistributorDiedWarning",
    "HerdsmanError",
    "InvalidInputError",
    "InvalidResourceError",
    "NotFoundError",
    "PermissionDeniedError",
    "RequestTooLargeError",
    "RunEndedEarlyWarning",
    "RunInterrupted",
    "RunTimedOutWarning",
    "ServerError",
    "ServerUnavailableError",
    "TransitionRefused",
    "WorkflowAlreadyComplete",
    "WorkflowAlreadyExists",
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


class InvalidResourceError(InvalidInputError):
    """A compute-resource value (memory, runtime, cores, queue) cannot be used."""


class WorkflowValidationError(InvalidInputError):
    """The workflow is inconsistent: a cycle, an upstream not in it, duplicate tasks, bad args."""


class ConfigurationError(InvalidInputError):
    """A setting is missing or malformed."""


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


class ConflictError(HerdsmanError):
    """The server's current state forbids the request."""

    http_status = 409


class TransitionRefused(ConflictError):
    """A status change the state machine does not allow; ``details['status']`` is current."""


class WorkflowAlreadyExists(ConflictError):
    """A workflow with these workflow_args exists with a different set of tasks.

    Give the new workflow different ``workflow_args`` or resume the existing one.
    """


class WorkflowAlreadyComplete(ConflictError):
    """Every task of the workflow is done; there is nothing to run."""


class ServerError(HerdsmanError):
    """The server failed while handling the request (HTTP 5xx)."""


class ServerUnavailableError(HerdsmanError):
    """The server could not be reached, even after retrying."""

    http_status = 503


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped a workflow run, and the user confirmed; the message says what became of it.

    A ``KeyboardInterrupt``, so that scripts and shells treat it as the interrupt it is.
    """


class RunEndedEarlyWarning(RuntimeWarning, RuntimeError):
    """A workflow run ended E for a reason outside its tasks; ``run()`` still returned "E".

    Warnings rather than exceptions, so that ``run()`` keeps one contract (it returns the
    status letter however the run ends); see the module docstring for turning them into
    errors.
    """


class RunTimedOutWarning(RunEndedEarlyWarning):
    """The run ended because ``seconds_until_timeout`` passed before every task finished."""


class DistributorDiedWarning(RunEndedEarlyWarning):
    """The run ended because a distributor process died: nothing could launch its tasks."""


def error_class_by_name(name: str) -> type[HerdsmanError]:
    """The exception class a server error payload names, or ServerError for unknown names."""
    found = _BY_NAME.get(name)
    return found if found is not None else ServerError


_BY_NAME: dict[str, type[HerdsmanError]] = {
    cls.__name__: cls
    for cls in (
        HerdsmanError,
        InvalidInputError,
        InvalidResourceError,
        WorkflowValidationError,
        ConfigurationError,
        RequestTooLargeError,
        NotFoundError,
        AuthenticationError,
        PermissionDeniedError,
        ConflictError,
        TransitionRefused,
        WorkflowAlreadyExists,
        WorkflowAlreadyComplete,
        ServerError,
        ServerUnavailableError,
    )
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
