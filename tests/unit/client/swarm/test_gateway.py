"""HttpSwarmGateway: each call hits its route with the right body, params and reply model."""

from __future__ import annotations

from typing import Any, TypeVar, cast

import pytest
from pydantic import BaseModel
from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman.client.swarm.gateway import MAX_POLL_SECONDS, HttpSwarmGateway, SwarmGateway
from herdsman.core.changes import ChangeFilter, ChangeKind
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import ClusterOut
from herdsman.core.schemas.swarm import (
    AdjustedResourcesIn,
    AdjustedResourcesItemIn,
    AdjustedResourcesOut,
    ChangesOut,
    QueueTasksIn,
    RunHeartbeatIn,
    RunHeartbeatOut,
    RunStatusIn,
    RunStatusOut,
    SwarmEdgesOut,
    SwarmTasksOut,
    TaskResourcesOut,
    TaskResourcesQueryIn,
    TaskStatusesOut,
    WorkflowRunIn,
    WorkflowRunOut,
)

M = TypeVar("M", bound=BaseModel)

CANNED: dict[type[BaseModel], dict[str, Any]] = {
    WorkflowRunOut: {"workflow_run_id": 5, "workflow_id": 2, "status": "B", "last_seq": 9},
    RunStatusOut: {"workflow_run_id": 5, "workflow_id": 2, "status": "R", "workflow_status": "R"},
    RunHeartbeatOut: {
        "status": "R",
        "concurrency": {"max_concurrently_running": 3, "array_limits": {"1": 2}},
    },
    TaskStatusesOut: {"task_ids": [1], "statuses": ["Q"]},
    ChangesOut: {"last_seq": 0, "changes": []},
    SwarmTasksOut: {"tasks": [], "next_task_id": None},
    SwarmEdgesOut: {"edges": [[1, 2]], "next_offset": None},
    ClusterOut: {"id": 1, "name": "slurm", "plugin": "slurm", "parameters": {}, "queues": []},
    TaskResourcesOut: {"resources": [], "task_resources_ids": []},
    AdjustedResourcesOut: {"task_resources_ids": [7]},
}


class RecordingRequester:
    """Stands in for Requester: records each call and answers a canned reply."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []

    def get(self, path: str, reply: type[M], params: dict[str, Any] | None = None) -> M:
        self.calls.append(("GET", path, params))
        return reply.model_validate(CANNED[reply])

    def put(self, path: str, body: BaseModel | dict[str, Any], reply: type[M]) -> M:
        self.calls.append(("PUT", path, body))
        return reply.model_validate(CANNED[reply])

    def post(self, path: str, body: BaseModel | dict[str, Any] | None, reply: type[M]) -> M:
        self.calls.append(("POST", path, body))
        return reply.model_validate(CANNED[reply])


@pytest.fixture
def requester() -> RecordingRequester:
    return RecordingRequester()


@pytest.fixture
def gateway(requester: RecordingRequester) -> HttpSwarmGateway:
    return HttpSwarmGateway(cast(Requester, requester))


def test_create_run_posts_who_runs_it(gateway: HttpSwarmGateway, requester: Any) -> None:
    reply = gateway.create_run(2, resume=True, reset_running_jobs=False)
    assert reply.last_seq == 9
    ((method, path, body),) = requester.calls
    assert (method, path) == ("POST", "/workflows/2/runs")
    assert isinstance(body, WorkflowRunIn)
    assert body.resume and not body.reset_running_jobs
    assert body.pid is not None and body.herdsman_version


def test_run_status_and_heartbeat(gateway: HttpSwarmGateway, requester: Any) -> None:
    assert gateway.get_run(5).status == "R"
    gateway.set_run_status(5, "D", "all done")
    beat = gateway.heartbeat(5, 93.0)
    assert beat.concurrency.array_limits == {1: 2}
    assert [(m, p) for m, p, _ in requester.calls] == [
        ("GET", "/workflow_runs/5"),
        ("PUT", "/workflow_runs/5/status"),
        ("POST", "/workflow_runs/5/heartbeat"),
    ]
    assert requester.calls[1][2] == RunStatusIn(status="D", message="all done")
    assert requester.calls[2][2] == RunHeartbeatIn(next_report_seconds=93.0)


def test_queue_tasks_posts_one_batch(gateway: HttpSwarmGateway, requester: Any) -> None:
    gateway.queue_tasks(5, (1,))
    assert requester.calls == [("POST", "/workflow_runs/5/queue", QueueTasksIn(task_ids=[1]))]


def test_queue_tasks_sends_the_batchs_resources(gateway: HttpSwarmGateway, requester: Any) -> None:
    gateway.queue_tasks(5, (1, 2), 9)
    body = QueueTasksIn(task_ids=[1, 2], task_resources_ids=[9, 9])
    assert requester.calls == [("POST", "/workflow_runs/5/queue", body)]


def test_resource_routes(gateway: HttpSwarmGateway, requester: Any) -> None:
    assert gateway.get_cluster("slurm").name == "slurm"
    gateway.read_resources([3, 4], [10])
    item = AdjustedResourcesItemIn(task_id=10, requested={"queue": "all.q", "memory": 2.0})
    assert gateway.create_adjusted_resources(2, [item]).task_resources_ids == [7]
    assert requester.calls == [
        ("GET", "/clusters/slurm", None),
        (
            "POST",
            "/task_resources/query",
            TaskResourcesQueryIn(task_resources_ids=[3, 4], task_ids=[10]),
        ),
        ("POST", "/workflows/2/adjusted_resources", AdjustedResourcesIn(items=[item])),
    ]


def test_changes_caps_the_long_poll_below_the_http_timeout(
    gateway: HttpSwarmGateway, requester: Any
) -> None:
    gateway.changes(2, after=41, timeout=500.0)
    gateway.changes(2, after=41, timeout=-1.0, kinds=ChangeFilter.of({ChangeKind.TASK: None}))
    # Without a filter the gateway asks for every task and run change ("TR"), spelled the way
    # ChangeFilter writes it.
    every_task_and_run = ChangeFilter.parse("TR").spec
    assert requester.calls == [
        (
            "GET",
            "/workflows/2/changes",
            {"after": 41, "timeout": MAX_POLL_SECONDS, "kinds": every_task_and_run},
        ),
        ("GET", "/workflows/2/changes", {"after": 41, "timeout": 0.0, "kinds": "T"}),
    ]


def test_pages_of_tasks_and_edges(gateway: HttpSwarmGateway, requester: Any) -> None:
    gateway.tasks_page(2, after_task_id=10, limit=100)
    assert gateway.edges_page(2, offset=500, limit=500).edges == [(1, 2)]
    assert requester.calls == [
        ("GET", "/workflows/2/swarm_tasks", {"after_task_id": 10, "limit": 100}),
        ("GET", "/workflows/2/swarm_edges", {"offset": 500, "limit": 500}),
    ]


def test_both_gateways_implement_the_protocol(gateway: HttpSwarmGateway) -> None:
    implementations: list[SwarmGateway] = [gateway, InMemorySwarmGateway()]
    for implementation in implementations:
        for name in (
            "create_run",
            "get_run",
            "set_run_status",
            "heartbeat",
            "queue_tasks",
            "changes",
            "tasks_page",
            "edges_page",
            "get_cluster",
            "read_resources",
            "create_adjusted_resources",
        ):
            assert callable(getattr(implementation, name))
