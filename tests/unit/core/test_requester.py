"""The requester: errors raised without the retry machinery's chain; a dead server recovered."""

from __future__ import annotations

import httpx
import pytest

from herdsman.core.errors import ServerUnavailableError, WorkflowAlreadyComplete
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import HealthOut

HEALTH = {"status": "ok", "version": "0.1.0", "database": "sqlite"}


def requester_over(
    monkeypatch: pytest.MonkeyPatch,
    handlers: dict[str, httpx.MockTransport],
    **options: object,
) -> Requester:
    """A requester whose servers are mock transports, by base URL."""

    def new_client(self: Requester, base_url: str) -> httpx.Client:
        return httpx.Client(base_url=base_url + "/api/v1", transport=handlers[base_url])

    monkeypatch.setattr(Requester, "_new_client", new_client)
    return Requester("http://old:1", retries=2, **options)  # type: ignore[arg-type]


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def healthy(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=HEALTH)


def test_an_error_answer_is_raised_without_a_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    def complete(request: httpx.Request) -> httpx.Response:
        body = {"error": "WorkflowAlreadyComplete", "message": "nothing to run", "details": {}}
        return httpx.Response(409, json=body)

    requester = requester_over(monkeypatch, {"http://old:1": httpx.MockTransport(complete)})

    with pytest.raises(WorkflowAlreadyComplete) as raised:
        requester.get("/health", HealthOut)

    assert raised.value.__context__ is None and raised.value.__cause__ is None
    assert raised.value.details["http_status"] == 409


def test_a_dead_server_without_recovery_is_one_error_without_a_chain(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    requester = requester_over(monkeypatch, {"http://old:1": httpx.MockTransport(refused)})

    with pytest.raises(ServerUnavailableError) as raised:
        requester.get("/health", HealthOut)

    assert "after 2 attempts" in raised.value.message and "refused" in raised.value.message
    assert raised.value.__suppress_context__ and raised.value.__cause__ is None


def test_a_dead_server_is_recovered_and_the_request_sent_again_at_its_new_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def recover(dead: str) -> str:
        asked.append(dead)
        return "http://new:2"

    requester = requester_over(
        monkeypatch,
        {
            "http://old:1": httpx.MockTransport(refused),
            "http://new:2": httpx.MockTransport(healthy),
        },
        recover=recover,
    )

    assert requester.get("/health", HealthOut).database == "sqlite"
    assert asked == ["http://old:1"]
    assert requester.base_url == "http://new:2"
    assert requester.get("/health", HealthOut).version == "0.1.0"  # stays on the new server
    assert asked == ["http://old:1"]


def test_recovery_is_tried_a_few_times_only(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def recover(dead: str) -> str:
        asked.append(dead)
        return dead  # "restarted", but it still does not answer

    requester = requester_over(
        monkeypatch, {"http://old:1": httpx.MockTransport(refused)}, recover=recover
    )

    with pytest.raises(ServerUnavailableError):
        requester.get("/health", HealthOut)
    assert len(asked) == 3
