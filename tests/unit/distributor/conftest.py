"""Fakes for the distributor's unit tests: a scripted server and a recording plugin.

:class:`FakeDistributorServer` has the requester's ``get``/``post`` and answers the routes
the distributor calls (run status, change feed, claim, launched, submit_failed, and the dummy
plugin's finish_without_running) from scripted state, recording every call.
:class:`RecordingPlugin` implements the plugin protocol and records what it was given.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from herdsman.core.errors import NotFoundError
from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.schemas.distributor import ClaimedInstance
from herdsman.core.schemas.worker import Usage
from herdsman.distributor.plugin import SubmitBatch

M = TypeVar("M", bound=BaseModel)

RUN_ID = 8
WORKFLOW_ID = 7


def instance(
    task_instance_id: int, *, array_id: int = 1, queue: str = "default", **resources: Any
) -> ClaimedInstance:
    return ClaimedInstance(
        task_instance_id=task_instance_id,
        task_id=task_instance_id + 1000,
        array_id=array_id,
        name=f"task_{task_instance_id}",
        command=f"echo {task_instance_id}",
        queue=queue,
        resources=dict(resources),
    )


@dataclass
class Call:
    method: str
    path: str
    body: dict[str, Any]
    params: dict[str, Any]


@dataclass
class FakeDistributorServer:
    base_url: str = "http://fake-server.invalid"
    run_statuses: deque[str] = field(default_factory=lambda: deque(["R"]))
    queued: list[ClaimedInstance] = field(default_factory=list)
    changes: deque[dict[str, Any]] = field(default_factory=deque)  # ChangesOut payloads
    failures: dict[str, deque[Exception]] = field(default_factory=dict)  # path -> raise these
    on_feed_wait: Callable[[], None] | None = None  # runs while "waiting" on the feed
    calls: list[Call] = field(default_factory=list)
    last_seq: int = 0
    # TriageOut payload fields for successive triage calls; the last one repeats.
    triage_replies: deque[dict[str, Any]] = field(default_factory=deque)

    def fail(self, path: str, *errors: Exception) -> None:
        self.failures.setdefault(path, deque()).extend(errors)

    def paths(self, method: str | None = None) -> list[str]:
        return [c.path for c in self.calls if method is None or c.method == method]

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [c.body for c in self.calls if c.path == path]

    def get(self, path: str, reply: type[M], params: dict[str, Any] | None = None) -> M:
        return reply.model_validate(self._answer("GET", path, {}, params or {}))

    def post(self, path: str, body: BaseModel | dict[str, Any] | None, reply: type[M]) -> M:
        data = body.model_dump() if isinstance(body, BaseModel) else dict(body or {})
        return reply.model_validate(self._answer("POST", path, data, {}))

    def _answer(
        self, method: str, path: str, body: dict[str, Any], params: dict[str, Any]
    ) -> dict[str, Any]:
        self.calls.append(Call(method, path, body, params))
        pending = self.failures.get(path)
        if pending:
            raise pending.popleft()
        if path == f"/workflow_runs/{RUN_ID}":
            status = self.run_statuses[0]
            if len(self.run_statuses) > 1:
                self.run_statuses.popleft()
            return {
                "workflow_run_id": RUN_ID,
                "workflow_id": WORKFLOW_ID,
                "status": status,
                "workflow_status": "R",
            }
        if path == f"/workflows/{WORKFLOW_ID}/changes":
            if self.on_feed_wait is not None:
                self.on_feed_wait()
            if self.changes:
                page = self.changes.popleft()
                self.last_seq = page["last_seq"]
                return page
            time.sleep(min(float(params.get("timeout", 0)), 0.01))
            return {"last_seq": self.last_seq, "changes": []}
        if path == f"/workflow_runs/{RUN_ID}/claim":
            taken, self.queued = self.queued[: body["limit"]], self.queued[body["limit"] :]
            return {
                "workflow_run_id": RUN_ID,
                "workflow_id": WORKFLOW_ID,
                "instances": [i.model_dump() for i in taken],
            }
        if path == "/task_instances/launched":
            ids = [item["task_instance_id"] for item in body["items"]]
            return {"task_instance_ids": ids, "statuses": ["O"] * len(ids)}
        if path == "/task_instances/finish_without_running":
            ids = body["task_instance_ids"]
            return {"task_instance_ids": ids, "statuses": ["D"] * len(ids)}
        if path == f"/workflow_runs/{RUN_ID}/triage":
            reply: dict[str, Any] = {"launched": [], "triaging": [], "kill": [], "live": 0}
            if self.triage_replies:
                reply = {**reply, **self.triage_replies[0]}
                if len(self.triage_replies) > 1:
                    self.triage_replies.popleft()
            return {"workflow_run_id": RUN_ID, "run_status": self.run_statuses[0], **reply}
        if path in ("/task_instances/triaged", "/task_instances/killed"):
            items = body.get("items")
            ids = [i["task_instance_id"] for i in items] if items else body["task_instance_ids"]
            return {"task_instance_ids": ids, "statuses": ["E"] * len(ids)}
        if path == "/task_instances/submit_failed":
            ids = body["task_instance_ids"]
            return {"task_instance_ids": ids, "statuses": ["W"] * len(ids)}
        raise NotFoundError(f"the fake has no route {method} {path}")


@dataclass
class RecordingPlugin:
    """A plugin that accepts everything (ids ``job-<instance id>``) unless told to refuse."""

    batches: list[SubmitBatch] = field(default_factory=list)
    refuse: Exception | None = None
    wrong_count: bool = False
    events: list[str] = field(default_factory=list)
    alive: set[str] = field(default_factory=set)  # jobs the "cluster" still has
    terminated: list[str] = field(default_factory=list)
    exit_info: dict[str, tuple[ErrorStatus, str]] = field(default_factory=dict)
    usage: dict[str, Usage] = field(default_factory=dict)  # the "cluster's" accounting
    queries: int = 0  # calls of submitted_or_running

    def start(self) -> None:
        self.events.append("start")

    def stop(self) -> None:
        self.events.append("stop")

    def submit(self, batch: SubmitBatch) -> list[str]:
        self.batches.append(batch)
        if self.refuse is not None:
            raise self.refuse
        ids = [f"job-{i.task_instance_id}" for i in batch.instances]
        return ids[:-1] if self.wrong_count else ids

    def submitted_or_running(self, distributor_ids: Iterable[str]) -> set[str]:
        self.queries += 1
        return self.alive & set(distributor_ids)

    def terminate(self, distributor_ids: Iterable[str]) -> None:
        self.terminated.extend(distributor_ids)

    def remote_exit_info(self, distributor_id: str) -> tuple[ErrorStatus, str]:
        return self.exit_info.get(distributor_id, ("U", "unknown"))

    def remote_usage(self, distributor_id: str) -> Usage | None:
        return self.usage.get(distributor_id)

    def exit_code_status(self, exit_code: int) -> tuple[ErrorStatus, str]:
        return "E", f"exit code {exit_code}"


@pytest.fixture
def fake_server() -> FakeDistributorServer:
    return FakeDistributorServer()


@pytest.fixture
def plugin() -> RecordingPlugin:
    return RecordingPlugin()


@pytest.fixture
def make_instance() -> Callable[..., ClaimedInstance]:
    return instance
