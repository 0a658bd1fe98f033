"""The error answers each route declares in the OpenAPI document.

Every error answer has the body :class:`~herdsman.core.schemas.errors.ErrorBodyOut`. Each router
declares what any of its routes may answer (:data:`CALLER_ERRORS`: no or bad credentials, not
allowed, a body too large or invalid, an unexpected failure); each route adds what its own work
may answer with :func:`errors` (404 where it looks an id or a name up, 409 where the server's
state or a concurrent writer can refuse it).
"""

from __future__ import annotations

from typing import Any

from herdsman.core.schemas.errors import ErrorBodyOut

__all__ = ["CALLER_ERRORS", "METERED_ERRORS", "PUBLIC_ERRORS", "Responses", "errors"]

Responses = dict[int | str, dict[str, Any]]

_MEANING = {
    401: "No valid credentials were sent.",
    403: "The caller may not do this.",
    404: "An id or a name in the request does not exist.",
    409: "The server's current state (or a concurrent request) refuses the request; "
    "a refused status change names the current status in details.status.",
    413: "The request body is larger than the server accepts (limits.max_request_bytes).",
    422: "The request is malformed or a value is out of range; the message names the field.",
    429: "A per-user limit of the server refused the request; the message names the limit "
    "and its setting.",
    500: "The server failed; the message names the reference of the error in the server's log.",
}


def errors(*statuses: int) -> Responses:
    """OpenAPI ``responses`` for these error statuses, each with the error body."""
    return {status: {"model": ErrorBodyOut, "description": _MEANING[status]} for status in statuses}


PUBLIC_ERRORS = errors(422, 500)
"""What a route anyone may call can answer besides its own errors."""

CALLER_ERRORS = errors(401, 403, 413, 422, 500)
"""What every route that needs credentials can answer besides its own errors."""

METERED_ERRORS = errors(401, 403, 413, 422, 429, 500)
"""What a route people call can answer: also 429, where the per-user request rate applies
(see :mod:`herdsman.server.api.guard`)."""
