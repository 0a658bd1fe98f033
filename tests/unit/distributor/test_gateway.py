"""HttpDistributorGateway: each call hits its route with the right body, params and reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from pydantic import BaseModel

from herdsman.core.changes import ChangeFilter, ChangeKind
from herdsman.core.schemas.client import ClusterOut
from herdsman.core.schemas.distributor import (
    ClaimedOut,
    ClaimIn,
    FinishIn,
    KilledIn,
    LaunchedIn,
    LaunchedItem,
    SubmitFailedIn,
    TransitionsOut,
    TriagedIn,
    TriagedItem,
    TriageIn,
    TriageOut,
)
from herdsman.core.schemas.swarm import ChangesOut, RunStatusOut
from herdsman.core.statuses import TaskInstanceStatus
from herdsman.core.timing import MAX_FEED_WAIT_SECONDS
from herdsman.distributor.gateway import DistributorGateway, HttpDistributorGateway

M = TypeVar("M", bound=BaseModel)

CANNED: dict[type[BaseModel], dict[str, Any]] = {
    ClusterOut: {"id": 1, "name": "hpc", "plugin": "slurm", "parameters": {}, "queues": []},
    RunStatusOut: {"workflow_run_id": 5, "workflow_id": 2, "status": "R", "workflow_status": "R"},
    ChangesOut: {"last_seq": 0, "changes": []},
    ClaimedOut: {"workflow_run_id": 5, "workflow_id": 2, "instances": []},
    TransitionsOut: {"task_instance_ids": [1], "statuses": ["O"]},
    TriageOut: {
        "workflow_run_id": 5,
        "run_status": "R",
        "launched": [],
        "triaging": [],
        "kill": [],
        "live": 0,
    },
}


class RecordingRequester:
    """Stands in for the distributor's requester: records each call, answers a canned reply."""

    base_url = "http://recording.invalid"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any, type[BaseModel]]] = []

    def get(self, path: str, reply: type[M], params: dict[str, Any] | None = None) -> M:
        self.calls.append(("GET", path, params, reply))
        return reply.model_validate(CANNED[reply])

    def post(self, path: str, body: BaseModel | dict[str, Any] | None, reply: type[M]) -> M:
        self.calls.append(("POST", path, body, reply))
        return reply.model_validate(CANNED[reply])


ITEM = LaunchedItem(task_instance_id=1, distributor_id="job-1")
TRIAGED = TriagedItem(task_instance_id=3, status=TaskInstanceStatus.UNKNOWN_ERROR, message="gone")
CLAIM = ClaimIn(limit=10, claim_id="c1")
FAILED = SubmitFailedIn(task_instance_ids=[4], message="refused")
FOLLOWS = ChangeFilter.of({ChangeKind.INSTANCE: None})

CASES: list[tuple[Callable[[DistributorGateway], BaseModel], str, str, Any, type[BaseModel]]] = [
    (lambda g: g.get_cluster("hpc"), "GET", "/clusters/hpc", None, ClusterOut),
    (lambda g: g.get_run(5), "GET", "/workflow_runs/5", None, RunStatusOut),
    (
        lambda g: g.changes(2, 40, 3.0, FOLLOWS),
        "GET",
        "/workflows/2/changes",
        {"after": 40, "kinds": "I", "timeout": 3.0},
        ChangesOut,
    ),
    (lambda g: g.claim(5, CLAIM), "POST", "/workflow_runs/5/claim", CLAIM, ClaimedOut),
    (
        lambda g: g.launched([ITEM]),
        "POST",
        "/task_instances/launched",
        LaunchedIn(items=[ITEM]),
        TransitionsOut,
    ),
    (
        lambda g: g.submit_failed(FAILED),
        "POST",
        "/task_instances/submit_failed",
        FAILED,
        TransitionsOut,
    ),
    (
        lambda g: g.finish_without_running([1, 2]),
        "POST",
        "/task_instances/finish_without_running",
        FinishIn(task_instance_ids=[1, 2]),
        TransitionsOut,
    ),
    (
        lambda g: g.triage(5, judge_silence=False),
        "POST",
        "/workflow_runs/5/triage",
        TriageIn(judge_silence=False),
        TriageOut,
    ),
    (
        lambda g: g.triaged([TRIAGED]),
        "POST",
        "/task_instances/triaged",
        TriagedIn(items=[TRIAGED]),
        TransitionsOut,
    ),
    (
        lambda g: g.killed([7]),
        "POST",
        "/task_instances/killed",
        KilledIn(task_instance_ids=[7]),
        TransitionsOut,
    ),
]


@pytest.mark.parametrize(("call", "method", "path", "sent", "reply"), CASES)
def test_each_call_hits_its_route(
    call: Callable[[DistributorGateway], BaseModel],
    method: str,
    path: str,
    sent: Any,
    reply: type[BaseModel],
) -> None:
    requester = RecordingRequester()

    answer = call(HttpDistributorGateway(requester))

    assert requester.calls == [(method, path, sent, reply)]
    assert isinstance(answer, reply)


def test_a_long_poll_asks_for_no_more_than_the_server_grants() -> None:
    requester = RecordingRequester()

    HttpDistributorGateway(requester).changes(2, 0, 600.0, FOLLOWS)

    assert requester.calls[0][2]["timeout"] == MAX_FEED_WAIT_SECONDS
