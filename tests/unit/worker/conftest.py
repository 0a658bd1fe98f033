"""A fake of the server's worker routes, answering from memory like the real ones.

:class:`FakeWorkerServer` has the requester's ``post`` method, so the wrapper runs against it
unchanged while real shell commands run. It keeps each instance's status the way the server
does (running moves it to R; a K set by the test is answered to heartbeats; done/error end it)
and records every report, so tests assert on what the wrapper sent.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

import herdsman
from herdsman.core.errors import ConflictError, NotFoundError, ServerUnavailableError
from herdsman.core.schemas.worker import InstanceRunningOut, InstanceStatusOut

M = TypeVar("M", bound=BaseModel)

# The server's version, fixed when the tests start: a test may change the worker's.
SERVER_VERSION = herdsman.__version__
_PATH = re.compile(r"^/task_instances/(\d+)/(running|heartbeat|done|error)$")


@dataclass
class FakeInstance:
    task_instance_id: int
    command: str
    name: str = "task"
    status: str = "O"
    stdout_dir: str | None = None
    stderr_dir: str | None = None
    memory: float | None = None  # the task's requests, as the server sends them
    runtime: float | None = None


@dataclass
class FakeWorkerServer:
    instances: dict[int, FakeInstance] = field(default_factory=dict)
    reports: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    unreachable: set[str] = field(default_factory=set)  # report kinds that fail in transport
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, task_instance_id: int, command: str, **fields: Any) -> FakeInstance:
        instance = FakeInstance(task_instance_id, command, **fields)
        self.instances[task_instance_id] = instance
        return instance

    def kinds(self, task_instance_id: int) -> list[str]:
        return [kind for tid, kind, _ in self.reports if tid == task_instance_id]

    def last(self, task_instance_id: int, kind: str) -> dict[str, Any]:
        bodies = [b for tid, k, b in self.reports if tid == task_instance_id and k == kind]
        assert bodies, f"no {kind} report for {task_instance_id}: {self.reports}"
        return bodies[-1]

    def post(self, path: str, body: BaseModel | dict[str, Any] | None, reply: type[M]) -> M:
        match = _PATH.match(path)
        assert match is not None, f"unexpected request POST {path}"
        task_instance_id, kind = int(match[1]), match[2]
        data = body.model_dump() if isinstance(body, BaseModel) else dict(body or {})
        with self.lock:
            self.reports.append((task_instance_id, kind, data))
            if kind in self.unreachable:
                raise ServerUnavailableError(f"POST {path}: connection refused")
            instance = self.instances.get(task_instance_id)
            if instance is None:
                raise NotFoundError(f"task instance {task_instance_id} does not exist")
            answer = self._answer(instance, kind, data)
        return reply.model_validate(answer)

    def _answer(self, instance: FakeInstance, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        status_only = InstanceStatusOut(
            task_instance_id=instance.task_instance_id, status=instance.status
        )
        if kind == "running":
            if data["herdsman_version"] != SERVER_VERSION:
                raise ConflictError(
                    f"worker version {data['herdsman_version']} differs from the server's"
                )
            if instance.status in ("I", "O"):
                instance.status = "R"
            return InstanceRunningOut(
                status=instance.status,
                task_instance_id=instance.task_instance_id,
                task_id=instance.task_instance_id + 1000,
                workflow_id=7,
                workflow_run_id=8,
                name=instance.name,
                command=instance.command,
                stdout_dir=instance.stdout_dir,
                stderr_dir=instance.stderr_dir,
                memory=instance.memory,
                runtime=instance.runtime,
            ).model_dump()
        if kind in ("done", "error") and instance.status == "R":
            instance.status = "D" if kind == "done" else data["status"]
            status_only.status = instance.status
        return status_only.model_dump()


@pytest.fixture
def fake_server() -> FakeWorkerServer:
    return FakeWorkerServer()
