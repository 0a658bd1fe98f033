"""The app's ASGI middleware, driven with ASGI messages: body limit and unexpected errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from herdsman.server.api.middleware import LimitRequestBody, UnexpectedErrors

App = Callable[[Scope, Receive, Send], Awaitable[None]]

LIMIT = 1000


def _scope(headers: dict[str, str] | None = None) -> Scope:
    return {
        "type": "http",
        "method": "PUT",
        "path": "/api/v1/nodes",
        "headers": [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }


class _Exchange:
    """One request through an ASGI app: the body in chunks, and what came back."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._messages: list[Message] = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ] or [{"type": "http.request", "body": b"", "more_body": False}]
        self.read = 0  # chunks the server took
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.read < len(self._messages):
            self.read += 1
            return self._messages[self.read - 1]
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    def run(self, app: App, scope: Scope) -> _Exchange:
        asyncio.run(app(scope, self.receive, self.send))
        return self

    @property
    def status(self) -> int:
        (start,) = [m for m in self.sent if m["type"] == "http.response.start"]
        status: int = start["status"]
        return status

    @property
    def body(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent if "body" in m))


async def _echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, as a route does, and answers its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def _bad_request_on_any_error(scope: Scope, receive: Receive, send: Send) -> None:
    """Like FastAPI: a failure while reading the body becomes a 400 of its own."""
    try:
        await _echo_length(scope, receive, send)
    except Exception:
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def test_a_body_within_the_limit_passes_unchanged() -> None:
    app = LimitRequestBody(_echo_length, max_bytes=LIMIT)

    exchange = _Exchange([b"x" * 600, b"x" * 400]).run(app, _scope())

    assert exchange.status == 200
    assert exchange.body == 1000


def test_a_declared_length_over_the_limit_is_refused_before_the_app_reads() -> None:
    def never_called(scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        raise AssertionError("the app must not see the request")

    app = LimitRequestBody(never_called, max_bytes=LIMIT)
    chunks = [b"x" * 500] * 5

    exchange = _Exchange(chunks).run(app, _scope({"content-length": "2500"}))

    assert exchange.status == 413
    assert exchange.body["error"] == "RequestTooLargeError"
    assert "2500 bytes" in exchange.body["message"]
    assert exchange.read == len(chunks)  # drained, so the client can read the answer


@pytest.mark.parametrize("inner", [_echo_length, _bad_request_on_any_error])
def test_a_streamed_body_is_cut_at_the_limit_whatever_the_app_answers(inner: App) -> None:
    app = LimitRequestBody(inner, max_bytes=LIMIT)

    exchange = _Exchange([b"x" * 400] * 4).run(app, _scope())

    assert exchange.status == 413
    assert exchange.body["details"] == {"max_request_bytes": LIMIT}
    assert len([m for m in exchange.sent if m["type"] == "http.response.start"]) == 1


def test_draining_stops_at_its_own_limit() -> None:
    app = LimitRequestBody(_echo_length, max_bytes=LIMIT, drain_bytes=2 * LIMIT)
    chunks = [b"x" * 500] * 100

    exchange = _Exchange(chunks).run(app, _scope())

    assert exchange.status == 413
    assert exchange.read < 10


def test_a_client_expecting_100_continue_is_answered_without_reading() -> None:
    app = LimitRequestBody(_echo_length, max_bytes=LIMIT)
    headers = {"content-length": "5000", "expect": "100-continue"}

    exchange = _Exchange([b"x" * 5000]).run(app, _scope(headers))

    assert exchange.status == 413
    assert exchange.read == 0


def test_an_unexpected_error_is_a_500_in_the_error_shape_and_logged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from herdsman.core.logs import configure_logging

    configure_logging("error")

    async def broken(scope: Scope, receive: Receive, send: Send) -> None:
        secret = "do-not-log-me"  # noqa: F841  (a local the traceback must not show)
        raise RuntimeError("boom")

    exchange = _Exchange([]).run(UnexpectedErrors(broken), _scope())

    assert exchange.status == 500
    body = exchange.body
    assert body["error"] == "ServerError"
    reference = body["details"]["reference"]
    assert reference in body["message"] and "boom" not in body["message"]
    log = capsys.readouterr().err
    assert "unexpected_error" in log and reference in log and "RuntimeError: boom" in log
    assert "do-not-log-me" not in log


def test_an_error_after_the_answer_started_is_left_to_the_server() -> None:
    async def half_answered(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _Exchange([]).run(UnexpectedErrors(half_answered), _scope())
