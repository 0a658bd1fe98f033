"""``herdsman-worker``: arguments, the server URL rule, and a run through ``main``."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from herdsman.worker.cli import main

if TYPE_CHECKING:
    from .conftest import FakeWorkerServer


@pytest.fixture(autouse=True)
def restore_signal_handlers() -> Iterator[None]:
    """main() installs handlers that forward signals; put pytest's back afterwards."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


def test_without_a_server_url_the_worker_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--task-instance-id", "1"]) == 2

    assert "HERDSMAN_SERVER_URL" in capsys.readouterr().err


def test_a_bad_heartbeat_interval_is_refused() -> None:
    assert main(["--task-instance-id", "1", "--heartbeat-interval", "0"]) == 2


def test_the_server_url_comes_from_the_environment(
    fake_server: FakeWorkerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_server.add(3, "exit 4")
    urls: list[str] = []

    def fake_requester(url: str, **_options: object) -> contextlib.AbstractContextManager[object]:
        urls.append(url)
        return contextlib.nullcontext(fake_server)

    monkeypatch.setattr("herdsman.core.requester.Requester", fake_requester)
    monkeypatch.setenv("HERDSMAN_SERVER_URL", "http://cluster-head:8000/")

    exit_code = main(["--task-instance-id", "3", "--heartbeat-interval", "0.2"])

    assert exit_code == 4
    assert urls == ["http://cluster-head:8000"]
    assert fake_server.last(3, "error")["exit_code"] == 4


def test_an_unreachable_server_is_a_wrapper_error() -> None:
    # Nothing listens on port 9 (discard) of localhost in the test environment.
    exit_code = main(["--task-instance-id", "1", "--server-url", "http://127.0.0.1:9"])

    assert exit_code == 1


def test_the_module_runs() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "herdsman.worker", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0
    assert "--task-instance-id" in done.stdout


def _serve(fake_server: FakeWorkerServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make main()'s requester the fake server."""

    def fake_requester(_url: str, **_options: object) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext(fake_server)

    monkeypatch.setattr("herdsman.core.requester.Requester", fake_requester)


def test_enforce_limits_kills_a_command_past_its_runtime(
    fake_server: FakeWorkerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_server.add(3, "sleep 30", runtime=1)
    _serve(fake_server, monkeypatch)

    exit_code = main(
        ["--task-instance-id", "3", "--server-url", "http://head:8000", "--enforce-limits"]
    )

    assert exit_code == 128 + 15
    assert fake_server.last(3, "error")["status"] == "Z"


def test_limits_are_not_enforced_by_default(
    fake_server: FakeWorkerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On a cluster the scheduler enforces requests; the worker leaves the command alone.
    fake_server.add(3, "sleep 1.5", runtime=1)
    _serve(fake_server, monkeypatch)

    exit_code = main(["--task-instance-id", "3", "--server-url", "http://head:8000"])

    assert exit_code == 0
    assert fake_server.kinds(3)[-1] == "done"
