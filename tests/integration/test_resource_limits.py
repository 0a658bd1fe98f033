"""Memory and runtime requests enforced by the wrapper, against a real server.

The server hands the wrapper the task's canonical requests; with ``enforce_limits`` (as the
local clusters ask) a command that outgrows one is killed and reported as Z, and the server
moves its task to A so the swarm retries it with more.
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import sys
import time
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from tests.integration.test_worker_cli import claimed_instance, run_worker

import herdsman
from herdsman.core.requester import Requester
from herdsman.core.schemas.queries import TaskDetailOut
from herdsman.core.schemas.worker import InstanceRunningIn, InstanceRunningOut
from herdsman.worker.wrapper import run_task_instance

if TYPE_CHECKING:
    from tests.conftest import RunningServer

pytestmark = pytest.mark.integration

# Holds about 300 MiB until killed; exits 0 on its own after ``seconds``.
ALLOCATE = (
    f"{shlex.quote(sys.executable)} -c "
    "'b = bytearray(300 * 2**20); import time; time.sleep({seconds})'"
)
SIGTERM_EXIT = 128 + 15
# The amount used depends on when a sample caught the allocation; the request's decimals on it.
MEMORY_MESSAGE = re.compile(
    r"the command used [0-9.]+ GiB, more than its memory request of 0\.10{0,2} GiB; "
    "killed so it can be retried with more memory"
)


def _name(server: RunningServer, what: str) -> str:
    return f"limits-{what}-{server.engine}-{time.time()}"


def _instance_record(server: RunningServer, task_instance_id: int) -> tuple[str, list[str], int]:
    """The instance's status, error messages and max RSS, as the database holds them."""
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as connection:
            status, max_rss = connection.execute(
                text("SELECT status, max_rss FROM task_instance WHERE id = :id"),
                {"id": task_instance_id},
            ).one()
            errors = connection.execute(
                text(
                    "SELECT description FROM task_instance_error_log "
                    "WHERE task_instance_id = :id ORDER BY id"
                ),
                {"id": task_instance_id},
            ).scalars()
            return status, list(errors), max_rss
    finally:
        engine.dispose()


def _run(requester: Requester, task_instance_id: int, *, enforce_limits: bool) -> int:
    return run_task_instance(
        requester,
        task_instance_id,
        heartbeat_interval=1.0,
        kill_grace_seconds=2.0,
        enforce_limits=enforce_limits,
    )


def test_the_running_reply_carries_the_canonical_requests(
    server: RunningServer, requester: Requester
) -> None:
    _, limited = claimed_instance(
        requester, _name(server, "reply"), "true", memory="512M", runtime="1m30s"
    )
    _, unlimited = claimed_instance(requester, _name(server, "reply-none"), "true")
    body = InstanceRunningIn(
        host=socket.gethostname(),
        pid=os.getpid(),
        herdsman_version=herdsman.__version__,
        next_report_seconds=60,
    )

    replies = [
        requester.post(f"/task_instances/{i.task_instance_id}/running", body, InstanceRunningOut)
        for i in (limited, unlimited)
    ]

    assert (replies[0].memory, replies[0].runtime) == (0.5, 90.0)
    assert (replies[1].memory, replies[1].runtime) == (None, None)


def test_a_command_above_its_memory_request_is_retried_with_more(
    server: RunningServer, requester: Requester
) -> None:
    _, instance = claimed_instance(
        requester, _name(server, "memory"), ALLOCATE.format(seconds=30), max_attempts=3, memory=0.1
    )

    done = run_worker(server, instance.task_instance_id, "--enforce-limits")

    assert done.returncode == SIGTERM_EXIT, done.stderr
    status, errors, max_rss = _instance_record(server, instance.task_instance_id)
    assert status == "Z"
    (message,) = errors
    assert MEMORY_MESSAGE.fullmatch(message), message
    assert max_rss > 0.1 * 1024**3
    assert requester.get(f"/tasks/{instance.task_id}", TaskDetailOut).status == "A"


def test_a_command_past_its_runtime_request_is_stopped_quickly(
    server: RunningServer, requester: Requester
) -> None:
    _, instance = claimed_instance(
        requester, _name(server, "runtime"), "sleep 30", max_attempts=3, runtime=1
    )

    began = time.monotonic()
    exit_code = _run(requester, instance.task_instance_id, enforce_limits=True)

    assert time.monotonic() - began < 20  # far from the 30 s it would have slept
    assert exit_code == SIGTERM_EXIT
    status, errors, _ = _instance_record(server, instance.task_instance_id)
    assert status == "Z"
    assert errors == [
        "the command ran for more than its runtime request of 1 s; "
        "killed so it can be retried with more time"
    ]
    assert requester.get(f"/tasks/{instance.task_id}", TaskDetailOut).status == "A"


def test_a_command_within_its_requests_is_done(server: RunningServer, requester: Requester) -> None:
    _, instance = claimed_instance(
        requester, _name(server, "within"), "sleep 0.5", memory=1, runtime=60
    )

    assert _run(requester, instance.task_instance_id, enforce_limits=True) == 0

    assert _instance_record(server, instance.task_instance_id)[:2] == ("D", [])
    assert requester.get(f"/tasks/{instance.task_id}", TaskDetailOut).status == "D"


def test_without_enforcement_nothing_is_killed(server: RunningServer, requester: Requester) -> None:
    _, instance = claimed_instance(
        requester,
        _name(server, "off"),
        ALLOCATE.format(seconds=1.5),
        memory=0.1,
        runtime=1,
    )

    assert _run(requester, instance.task_instance_id, enforce_limits=False) == 0

    status, errors, max_rss = _instance_record(server, instance.task_instance_id)
    assert (status, errors) == ("D", [])
    assert max_rss > 0.1 * 1024**3
