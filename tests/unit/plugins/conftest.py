"""A fake herdsman server for the plugin tests: in memory, and over HTTP for pool processes.

:class:`FakeServer` answers the worker routes (running, heartbeat, done, error, and their
batches), the distributor's claim / launched / finish_without_running, and nothing else. It has the
requester's ``get``/``post``, so in-process plugins (dummy, sequential) use it directly; the
``fake_http_server`` fixture also serves it on a local port, because the multiprocess plugin's
pool processes build requesters of their own from ``base_url``. Errors travel as the real
server sends them, so the real :class:`Requester` raises the same classes.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

import herdsman
from herdsman.core.errors import HerdsmanError, NotFoundError
from herdsman.core.schemas import API_PREFIX
from herdsman.core.schemas.distributor import ClaimedInstance
from herdsman.distributor.plugin import SubmitBatch

M = TypeVar("M", bound=BaseModel)

SERVER_VERSION = herdsman.__version__
_WORKER_PATH = re.compile(r"^/task_instances/(\d+)/(running|heartbeat|done|error)$")


@dataclass
class FakeInstance:
    task_instance_id: int
    command: str
    status: str = "Q"
    name: str = "task"
    array_id: int = 1
    queue: str = "default"
    resources: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    at: float  # time.monotonic() when it arrived
    task_instance_id: int | None
    kind: str
    body: dict[str, Any]


class FakeServer:
    """In-memory server state; thread-safe (HTTP requests arrive on several threads)."""

    def __init__(self, workflow_run_id: int = 8) -> None:
        self.workflow_run_id = workflow_run_id
        self.base_url = "http://fake-server.invalid"
        self.instances: dict[int, FakeInstance] = {}
        self.reports: list[Report] = []
        self.batch_sizes: list[int] = []  # reports per request of /task_instances/reports
        self.batch_delay = 0.0  # seconds each batch takes, to let the next one fill up
        self._lock = threading.Condition()

    def add(self, task_instance_id: int, command: str, **fields: Any) -> FakeInstance:
        with self._lock:
            instance = FakeInstance(task_instance_id, command, **fields)
            self.instances[task_instance_id] = instance
            return instance

    def set_status(self, task_instance_id: int, status: str) -> None:
        with self._lock:
            self.instances[task_instance_id].status = status

    def kinds(self, task_instance_id: int) -> list[str]:
        with self._lock:
            return [r.kind for r in self.reports if r.task_instance_id == task_instance_id]

    def first(self, task_instance_id: int, kind: str) -> Report:
        with self._lock:
            for report in self.reports:
                if report.task_instance_id == task_instance_id and report.kind == kind:
                    return report
        raise AssertionError(f"no {kind} report for {task_instance_id}")

    def wait_for(self, task_instance_id: int, kind: str, timeout: float = 30.0) -> Report:
        """Block until instance ``task_instance_id`` sent a ``kind`` report."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for report in self.reports:
                    if report.task_instance_id == task_instance_id and report.kind == kind:
                        return report
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no {kind} report for {task_instance_id} within {timeout} s: "
                        f"{[(r.task_instance_id, r.kind) for r in self.reports]}"
                    )
                self._lock.wait(remaining)

    # --- the requester interface ------------------------------------------------------------

    def get(self, path: str, reply: type[M], params: dict[str, Any] | None = None) -> M:
        return reply.model_validate(self.handle("GET", path, None))

    def post(self, path: str, body: BaseModel | dict[str, Any] | None, reply: type[M]) -> M:
        data = body.model_dump() if isinstance(body, BaseModel) else dict(body or {})
        return reply.model_validate(self.handle("POST", path, data))

    # --- routes -----------------------------------------------------------------------------

    def handle(self, method: str, path: str, data: dict[str, Any] | None) -> dict[str, Any]:
        with self._lock:
            try:
                return self._route(method, path, data or {})
            finally:
                self._lock.notify_all()

    def _route(self, method: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
        match = _WORKER_PATH.match(path)
        if method == "POST" and match is not None:
            task_instance_id, kind = int(match[1]), match[2]
            self.reports.append(Report(time.monotonic(), task_instance_id, kind, data))
            return self._worker(self._instance(task_instance_id), kind, data)
        if method == "POST" and path == "/task_instances/reports":
            self.batch_sizes.append(len(data["reports"]))
            self._lock.wait(self.batch_delay)  # releases the lock: other requests go on
            return {"reports": [self._batched(report) for report in data["reports"]]}
        if method == "POST" and path == "/task_instances/finish_without_running":
            self.reports.append(Report(time.monotonic(), None, "finish", data))
            ids = data["task_instance_ids"]
            for task_instance_id in ids:
                self._instance(task_instance_id).status = "D"
            return {"task_instance_ids": ids, "statuses": ["D"] * len(ids)}
        if method == "POST" and path == f"/workflow_runs/{self.workflow_run_id}/claim":
            queued = [i for i in self.instances.values() if i.status == "Q"][: data["limit"]]
            for instance in queued:
                instance.status = "I"
            return {
                "workflow_run_id": self.workflow_run_id,
                "workflow_id": 7,
                "instances": [_claimed(instance) for instance in queued],
            }
        if method == "POST" and path == "/task_instances/launched":
            self.reports.append(Report(time.monotonic(), None, "launched", data))
            ids = [item["task_instance_id"] for item in data["items"]]
            for task_instance_id in ids:
                instance = self._instance(task_instance_id)
                if instance.status == "I":
                    instance.status = "O"
            return {"task_instance_ids": ids, "statuses": [self.instances[i].status for i in ids]}
        raise NotFoundError(f"the fake server has no route {method} {path}")

    def _batched(self, report: dict[str, Any]) -> dict[str, Any]:
        task_instance_id = report["task_instance_id"]
        kind = next(k for k in ("running", "heartbeat", "done", "error") if report.get(k))
        self.reports.append(Report(time.monotonic(), task_instance_id, kind, report[kind]))
        try:
            answer = self._worker(self._instance(task_instance_id), kind, report[kind])
        except HerdsmanError as error:
            refusal = {"error": type(error).__name__, "message": error.message}
            return {"task_instance_id": task_instance_id, "refused": refusal}
        if kind == "running":
            return {
                "task_instance_id": task_instance_id,
                "status": answer["status"],
                "running": answer,
            }
        return answer

    def _instance(self, task_instance_id: int) -> FakeInstance:
        instance = self.instances.get(task_instance_id)
        if instance is None:
            raise NotFoundError(f"task instance {task_instance_id} does not exist")
        return instance

    def _worker(self, instance: FakeInstance, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        if kind == "running":
            if instance.status in ("I", "O"):
                instance.status = "R"
            return {
                "status": instance.status,
                "task_instance_id": instance.task_instance_id,
                "task_id": instance.task_instance_id + 1000,
                "workflow_id": 7,
                "workflow_run_id": self.workflow_run_id,
                "name": instance.name,
                "command": instance.command,
                "stdout_dir": None,
                "stderr_dir": None,
                "memory": instance.resources.get("memory"),
                "runtime": instance.resources.get("runtime"),
            }
        if kind in ("done", "error") and instance.status == "R":
            instance.status = "D" if kind == "done" else data["status"]
        return {"task_instance_id": instance.task_instance_id, "status": instance.status}


def _claimed(instance: FakeInstance) -> dict[str, Any]:
    return {
        "task_instance_id": instance.task_instance_id,
        "task_id": instance.task_instance_id + 1000,
        "array_id": instance.array_id,
        "name": instance.name,
        "command": instance.command,
        "queue": instance.queue,
        "resources": instance.resources,
    }


def _handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def _answer(self, method: str) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0].removeprefix(API_PREFIX)
            try:
                status, payload = 200, fake.handle(method, path, json.loads(raw) if raw else None)
            except HerdsmanError as error:
                status = error.http_status
                payload = {"error": type(error).__name__, "message": error.message}
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@pytest.fixture
def fake_server() -> FakeServer:
    return FakeServer()


def serve_http(fake: FakeServer, port: int = 0) -> ThreadingHTTPServer:
    """Serve ``fake`` over HTTP on ``port`` (0: any free one) from a thread; sets its base_url.

    The caller shuts the returned server down (``shutdown()``, then ``server_close()``).
    """
    httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler(fake))
    httpd.daemon_threads = True
    fake.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def fake_http_server(fake_server: FakeServer) -> Iterator[FakeServer]:
    """``fake_server``, also served over HTTP at its ``base_url``."""
    httpd = serve_http(fake_server)
    try:
        yield fake_server
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def make_batch(fake_server: FakeServer) -> Callable[..., SubmitBatch]:
    """Builds a submit batch of instances already added to ``fake_server``."""

    def make(*task_instance_ids: int) -> SubmitBatch:
        instances = tuple(
            ClaimedInstance.model_validate(_claimed(fake_server.instances[i]))
            for i in task_instance_ids
        )
        first = instances[0]
        return SubmitBatch(
            workflow_id=7,
            workflow_run_id=fake_server.workflow_run_id,
            array_id=first.array_id,
            queue=first.queue,
            resources={},
            instances=instances,
        )

    return make
