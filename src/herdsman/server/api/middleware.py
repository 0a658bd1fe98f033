"""ASGI middleware of the app: a limit on request bodies, and a 500 in the error shape.

Both are plain ASGI (no ``BaseHTTPMiddleware``): they must see the body as it streams in and
the response before it starts, and must not buffer either.
"""

from __future__ import annotations

import secrets
from typing import Any

import structlog
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from herdsman.core.errors import RequestTooLargeError, ServerError

__all__ = ["LimitRequestBody", "UnexpectedErrors", "error_body"]

logger = structlog.get_logger(__name__)


def error_body(error: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    """The body of every error answer (see :mod:`herdsman.server.api.app`)."""
    return {"error": error, "message": message, "details": details}


class UnexpectedErrors:
    """Answers an exception no handler took with a 500 in the error shape, and logs it.

    The traceback goes to the server's log under a short reference, which the answer names, so
    a user's report can be matched to it; the answer itself carries no internals.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            reference = secrets.token_hex(4)
            method, path = scope.get("method", ""), scope.get("path", "")
            logger.exception("unexpected_error", method=method, path=path, reference=reference)
            if started:  # too late for an answer of our own; the server closes the connection
                raise
            message = (
                f"the server failed while handling {method} {path}; this is a bug in herdsman "
                f"or a problem of its database, logged on the server as {reference}"
            )
            body = error_body(ServerError.__name__, message, {"reference": reference})
            await JSONResponse(body, status_code=500)(scope, receive, send)


class _BodyTooLarge(Exception):
    """Raised from ``receive`` when the body passes the limit: reading stops there."""


class LimitRequestBody:
    """Refuses a request whose body is larger than ``max_bytes`` with 413, in the error shape.

    A declared ``Content-Length`` over the limit is refused before the body is read; otherwise
    the bytes are counted as they arrive (a chunked body declares no length), and reading
    stops at the limit: the app never holds more than ``max_bytes`` of one body. Whatever the
    app answered to the body cut short is replaced by the 413.

    Before answering, the rest of the body is read and dropped, up to ``drain_bytes`` (it
    costs the server no memory): a client that sends its whole body before it reads the
    answer, as most do, then gets the 413 instead of a broken connection. A client that asked
    ``Expect: 100-continue`` is answered at once and sends no body at all.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, drain_bytes: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes if drain_bytes is not None else 4 * max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        declared = _declared_length(headers.get(b"content-length"))
        if declared is not None and declared > self.max_bytes:
            await self._refuse(scope, receive, send, headers, declared, 0)
            return
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body cut short; the 413 replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded or started:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send, headers, None, received)

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[bytes, bytes],
        declared: int | None,
        received: int,
    ) -> None:
        if headers.get(b"expect", b"").lower() != b"100-continue":
            await self._drain(receive, received)
        size = f"{declared} bytes" if declared is not None else f"more than {self.max_bytes} bytes"
        message = (
            f"the request body is {size}; this server accepts at most {self.max_bytes} "
            "(setting limits.max_request_bytes): send it in smaller parts"
        )
        logger.warning(
            "request_too_large",
            method=scope.get("method"),
            path=scope.get("path"),
            declared=declared,
            limit=self.max_bytes,
        )
        body = error_body(
            RequestTooLargeError.__name__, message, {"max_request_bytes": self.max_bytes}
        )
        await JSONResponse(body, status_code=413, headers={"connection": "close"})(
            scope, receive, send
        )

    async def _drain(self, receive: Receive, received: int) -> None:
        """Read and drop what is left of the body, up to ``drain_bytes`` in all."""
        while received <= self.drain_bytes:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            received += len(message.get("body", b""))
            if not message.get("more_body", False):
                return


def _declared_length(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None  # the server's HTTP parser refuses such a request anyway
