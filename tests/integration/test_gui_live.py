"""Live pages over server-sent events, against a real server process, without a browser.

A stream is opened with the sign-in cookie as a browser's EventSource would, a task's status
is changed through the JSON API as its owner, and the stream must bring the new counts.
"""

from __future__ import annotations

import getpass
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, Queue

import httpx
import pytest
from tests.conftest import ProcessRegistry, RunningServer, start_server_process
from tests.support.tokens import user_token

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.server.gui.session import COOKIE

pytestmark = pytest.mark.integration

OWNER = getpass.getuser()
DEADLINE_SECONDS = 30.0


def bound_workflow(server: RunningServer, label: str) -> tuple[int, list[int]]:
    """A bound workflow of two tasks, both registering, never run."""
    stamp = time.time_ns()
    with Requester(server.url, token=user_token(OWNER), timeout=60, retries=3) as owner:
        tool = Tool(f"live-{label}-{stamp}", requester=owner)
        tool.set_default_cluster_name("multiprocess")
        step = tool.get_task_template("step", "echo {n}", node_args=["n"])
        first = step.create_task(n=1)
        second = step.create_task(n=2, upstream_tasks=[first])
        workflow = tool.create_workflow(workflow_args=f"live-{stamp}", name=f"live-{label}")
        workflow.add_tasks([first, second])
        workflow_id = workflow.bind()
    assert first.task_id is not None and second.task_id is not None
    return workflow_id, [first.task_id, second.task_id]


class EventReader:
    """Reads a server-sent event stream on a thread, so the test can wait with a deadline."""

    def __init__(self, url: str, path: str, token: str) -> None:
        self.events: Queue[tuple[str, str]] = Queue()
        self.status: Queue[int] = Queue()
        self.ended = threading.Event()
        self._client = httpx.Client(base_url=url, timeout=httpx.Timeout(60, read=None))
        self._client.cookies.set(COOKIE, token)
        self._path = path
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self._path) as answer:
                self.status.put(answer.status_code)
                event, data = "message", []
                for line in answer.iter_lines():
                    if line.startswith("event:"):
                        event = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        data.append(line.removeprefix("data:").removeprefix(" "))
                    elif not line and data:
                        self.events.put((event, "\n".join(data)))
                        event, data = "message", []
        except (httpx.HTTPError, RuntimeError):
            return  # closed by the test
        finally:
            self.ended.set()

    def next_matching(self, wanted: re.Pattern[str]) -> str:
        """The first update whose data match ``wanted``, waiting up to the deadline."""
        deadline = time.monotonic() + DEADLINE_SECONDS
        seen: list[str] = []
        while time.monotonic() < deadline:
            try:
                event, data = self.events.get(timeout=max(0.0, deadline - time.monotonic()))
            except Empty:
                break
            assert event == "update", event
            if wanted.search(data):
                return data
            seen.append(data[:300])
        pytest.fail(f"no update matching {wanted.pattern} in {DEADLINE_SECONDS:.0f} s: {seen}")

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def reader_factory(server: RunningServer) -> Iterator[list[EventReader]]:
    readers: list[EventReader] = []
    yield readers
    for reader in readers:
        reader.close()


def _done_count(html: str, element_id: str, tag: str) -> int:
    """How many tasks the bar inside the element ``<tag id="element_id...">`` shows as done."""
    match = re.search(rf'<{tag} id="{element_id}.*?</{tag}>', html, re.S)
    assert match is not None, f"no {element_id} in {html[:500]}"
    done = re.search(r'data-bucket="done" data-count="(\d+)"', match.group(0))
    return int(done.group(1)) if done else 0


def test_workflow_stream_brings_a_status_change(
    server: RunningServer, reader_factory: list[EventReader]
) -> None:
    workflow_id, task_ids = bound_workflow(server, "workflow")
    token = user_token(OWNER)
    reader = EventReader(server.url, f"/workflows/{workflow_id}/live", token)
    reader_factory.append(reader)
    assert reader.status.get(timeout=DEADLINE_SECONDS) == 200
    first = reader.next_matching(re.compile('id="workflow-header"'))
    assert 'hx-swap-oob="true"' in first
    assert _done_count(first, "workflow-header", "dl") == 0
    assert 'id="templates-table" hx-swap-oob="true"' in first

    answer = httpx.post(
        f"{server.url}/api/v1/workflows/{workflow_id}/task_updates",
        json={"task_ids": [task_ids[0]], "status": "D"},
        headers={"authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["changed_task_ids"] == [task_ids[0]]

    update = reader.next_matching(re.compile(r'data-bucket="done" data-count="1"'))
    assert _done_count(update, "workflow-header", "dl") == 1
    assert _done_count(update, "templates-table", "table") == 1


def test_task_and_workflows_streams_bring_a_status_change(
    server: RunningServer, reader_factory: list[EventReader]
) -> None:
    workflow_id, task_ids = bound_workflow(server, "task")
    token = user_token(OWNER)
    task_reader = EventReader(server.url, f"/tasks/{task_ids[0]}/live", token)
    rows_reader = EventReader(server.url, f"/live?id={workflow_id}", token)
    reader_factory.extend([task_reader, rows_reader])
    assert task_reader.next_matching(re.compile(r'id="task-title"[^>]*data-status="G"'))
    rows = rows_reader.next_matching(re.compile(r"workflow-\d+"))
    assert _done_count(rows, "workflow-", "tr") == 0

    answer = httpx.post(
        f"{server.url}/api/v1/workflows/{workflow_id}/task_updates",
        json={"task_ids": [task_ids[0]], "status": "D"},
        headers={"authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text

    title = task_reader.next_matching(re.compile(r'id="task-title"[^>]*data-status="D"'))
    assert 'id="attempts-table" hx-swap-oob="true"' in title
    row = rows_reader.next_matching(re.compile(r'data-bucket="done" data-count="1"'))
    assert f'id="workflow-{workflow_id}" hx-swap-oob="true"' in row


def test_streams_refuse_whom_the_page_refuses(server: RunningServer) -> None:
    workflow_id, task_ids = bound_workflow(server, "refused")
    with httpx.Client(base_url=server.url, timeout=60, follow_redirects=False) as anonymous:
        for path in (f"/workflows/{workflow_id}/live", f"/tasks/{task_ids[0]}/live", "/live"):
            answer = anonymous.get(path)
            assert answer.status_code == 303, (path, answer.status_code)
            assert answer.headers["location"].startswith("/sign-in")
    with httpx.Client(base_url=server.url, timeout=60) as owner:
        owner.cookies.set(COOKIE, user_token(OWNER))
        assert owner.get("/workflows/999999999/live").status_code == 404
        assert owner.get("/tasks/999999999/live").status_code == 404


def test_a_stopping_server_ends_open_streams_instead_of_waiting_for_them(
    processes: ProcessRegistry, fresh_database_url: str, engine: str, tmp_path: Path
) -> None:
    process, info = start_server_process(
        processes, database_url=fresh_database_url, state_dir=tmp_path / "server"
    )
    own = RunningServer(
        url=info.url, database_url=fresh_database_url, engine=engine, pid=process.pid
    )
    workflow_id, _ = bound_workflow(own, "stopping")
    readers = [
        EventReader(own.url, f"/workflows/{workflow_id}/live", user_token(OWNER)) for _ in range(2)
    ]
    try:
        for reader in readers:
            reader.next_matching(re.compile('id="workflow-header"'))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises it
        for reader in readers:
            assert reader.ended.wait(timeout=DEADLINE_SECONDS)
    finally:
        for reader in readers:
            reader.close()
    log = (tmp_path / "server" / "server.log").read_text(errors="replace")
    # uvicorn says so when open requests outlast its graceful shutdown and it cancels them.
    assert "timeout graceful shutdown exceeded" not in log, log[-2000:]
