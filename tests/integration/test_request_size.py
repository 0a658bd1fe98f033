"""The limit on request bodies against a real server: refused with 413 without holding the body,
and a bind that keeps every request under it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import psutil
import pytest
from tests.conftest import ProcessRegistry, start_server_process

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import HealthOut

if TYPE_CHECKING:
    from tests.conftest import RunningServer

pytestmark = pytest.mark.integration

MIB = 2**20
# The size that took an unlimited server from 124 to 1,346 MiB (issue 13).
HUGE_BODY = 161 * MIB
SMALL_LIMIT = 1 * MIB


def _assert_413(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text[:500]
    body = response.json()
    assert body["error"] == "RequestTooLargeError"
    assert "limits.max_request_bytes" in body["message"]


def test_a_huge_body_is_refused_without_the_server_holding_it(server: RunningServer) -> None:
    process = psutil.Process(server.pid)
    before = process.memory_info().rss
    body = b"[" + b"0," * (HUGE_BODY // 2) + b"0]"

    response = httpx.put(
        f"{server.url}/api/v1/nodes",
        content=body,
        headers={"content-type": "application/json"},
        timeout=120,
    )

    _assert_413(response)
    grown = process.memory_info().rss - before
    assert grown < 32 * MIB, f"the server grew by {grown / MIB:.0f} MiB"
    assert httpx.get(f"{server.url}/api/v1/health", timeout=30).status_code == 200


@pytest.fixture
def small_limit_server(
    fresh_database_url: str, processes: ProcessRegistry, tmp_path: Path
) -> Iterator[str]:
    """A server that accepts request bodies of at most 1 MiB; yields its URL."""
    process, info = start_server_process(
        processes,
        database_url=fresh_database_url,
        state_dir=tmp_path / "small-limit-server",
        extra_env={"HERDSMAN_LIMITS__MAX_REQUEST_BYTES": str(SMALL_LIMIT)},
    )
    try:
        yield info.url
    finally:
        processes.stop(process)


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"hash": "'
    for _ in range(total // size):
        yield b"0" * size
    yield b'"}'


def test_a_streamed_body_without_a_length_is_counted_and_refused(small_limit_server: str) -> None:
    response = httpx.put(
        f"{small_limit_server}/api/v1/dags",
        content=_chunks(3 * SMALL_LIMIT),
        headers={"content-type": "application/json"},
        timeout=60,
    )

    assert "content-length" not in response.request.headers
    _assert_413(response)
    with Requester(small_limit_server) as requester:
        assert requester.get("/health", HealthOut).limits.max_request_bytes == SMALL_LIMIT


def test_bind_splits_its_requests_to_stay_under_the_limit(
    small_limit_server: str, tmp_path: Path
) -> None:
    with Requester(small_limit_server, timeout=60) as requester:
        tool = Tool(f"split-bind-{time.time()}", requester=requester)
        tool.set_default_cluster_name("dummy")
        template = tool.get_task_template(
            "step", "echo {i} {payload} {note}", node_args=["i", "payload"], task_args=["note"]
        )
        workflow = tool.create_workflow(workflow_args="split", chunk_size=1_000)
        # 600 tasks of about 9 kB each in nodes and 18 kB in tasks: several MiB per request
        # of a chunk, far over the server's 1 MiB.
        tasks = [
            template.create_task(i=i, payload=f"{i}" + "p" * 9_000, note="n" * 9_000)
            for i in range(600)
        ]
        workflow.add_tasks(tasks)

        workflow_id = workflow.bind()

    assert all(task.task_id is not None for task in tasks)
    assert len({task.task_id for task in tasks}) == 600
    log = (tmp_path / "small-limit-server" / "server.log").read_text()
    assert "request_too_large" not in log
    assert workflow_id is not None
