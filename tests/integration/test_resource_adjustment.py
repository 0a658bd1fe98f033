"""Tasks killed for resources are queued again with new, stored requests (a real server).

Each test binds a one-task workflow on a cluster with three queues, queues the task through
the swarm, and plays the distributor and the worker by hand: claim the instance, report it
running, then report it killed for resources (Z), as the worker wrapper would. The server moves
the task to A; the swarm, stepped by hand, reads that from the feed, computes the new request,
stores it and queues the task with it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import create_engine, text

import herdsman
from herdsman import Tool
from herdsman.client.swarm.workflow_run import WorkflowRun
from herdsman.core.errors import InvalidResourceError, NotFoundError
from herdsman.core.requester import Requester
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import swarm as sschemas
from herdsman.core.schemas.queries import TaskDetailOut
from herdsman.core.schemas.worker import (
    InstanceErrorIn,
    InstanceRunningIn,
    InstanceRunningOut,
    InstanceStatusOut,
)

if TYPE_CHECKING:
    from tests.conftest import RunningServer

pytestmark = pytest.mark.integration

QUEUES = {
    "small": {"memory": [0.0, 2.0], "runtime": [1, 3600], "cores": [1, 4]},
    "medium": {"memory": [0.0, 8.0], "runtime": [1, 86_400], "cores": [1, 16]},
    "large": {"memory": [0.0, 32.0], "runtime": [1, 604_800], "cores": [1, 64]},
}
START = {"memory": "1G", "runtime": 100, "queue": "small"}


@pytest.fixture
def cluster(server: RunningServer) -> str:
    """A new cluster with queues small (the default), medium and large, written to the database.

    Its id is chosen explicitly: the built-in clusters were inserted with explicit ids, which
    PostgreSQL's sequence does not know about.
    """
    name = f"adjust-{server.engine}-{time.time_ns()}"
    engine = create_engine(server.database_url)
    try:
        with engine.begin() as connection:
            cluster_id = connection.execute(text("SELECT MAX(id) FROM cluster")).scalar_one() + 1
            connection.execute(
                text(
                    "INSERT INTO cluster (id, name, plugin, parameters) "
                    "VALUES (:id, :name, 'dummy', '{}')"
                ),
                {"id": cluster_id, "name": name},
            )
            for queue, limits in QUEUES.items():
                connection.execute(
                    text(
                        "INSERT INTO queue (cluster_id, name, is_default, limits) "
                        "VALUES (:cluster_id, :name, :is_default, :limits)"
                    ),
                    {
                        "cluster_id": cluster_id,
                        "name": queue,
                        "is_default": queue == "small",
                        "limits": json.dumps(limits),
                    },
                )
    finally:
        engine.dispose()
    return name


class OneTaskRun:
    """A bound one-task workflow, its running swarm (stepped by hand) and its task's history."""

    def __init__(
        self, requester: Requester, cluster: str, *, from_database: bool = False, **task: Any
    ) -> None:
        self.requester = requester
        tool = Tool(f"{cluster}-tool", requester=requester)
        tool.set_default_cluster_name(cluster)
        template = tool.get_task_template("fit", "fit {i}", node_args=["i"])
        workflow = tool.create_workflow(workflow_args=f"{cluster}-{time.time_ns()}")
        settings: dict[str, Any] = {"compute_resources": dict(START), "max_attempts": 10}
        self.task = template.create_task(i=0, **{**settings, **task})
        workflow.add_tasks([self.task])
        workflow_id = workflow.bind()
        assert self.task.task_id is not None
        self.task_id = self.task.task_id
        if from_database:
            self.swarm = WorkflowRun.from_workflow_id(workflow_id, requester=requester)
        else:
            self.swarm = WorkflowRun.from_workflow(workflow, requester=requester)
        for status in "IOR":
            requester.put(
                f"/workflow_runs/{self.swarm.workflow_run_id}/status",
                sschemas.RunStatusIn(status=status),
                sschemas.RunStatusOut,
            )

    def queue(self) -> dschemas.ClaimedInstance:
        """Let the swarm adjust and queue what is ready; claim the one instance it queued."""
        self.swarm.synchronize_state()
        self.swarm.process_commands()
        claimed = self.requester.post(
            f"/workflow_runs/{self.swarm.workflow_run_id}/claim",
            dschemas.ClaimIn(),
            dschemas.ClaimedOut,
        )
        (instance,) = claimed.instances
        return instance

    def kill_for_resources(self, instance: dschemas.ClaimedInstance) -> None:
        """The worker starts, then reports the cluster killed the job for memory."""
        path = f"/task_instances/{instance.task_instance_id}"
        running = InstanceRunningIn(
            host="node1", pid=1, herdsman_version=herdsman.__version__, next_report_seconds=60
        )
        self.requester.post(f"{path}/running", running, InstanceRunningOut)
        error = InstanceErrorIn(status="Z", message="killed: out of memory", exit_code=137)
        self.requester.post(f"{path}/error", error, InstanceStatusOut)

    def attempts(self, count: int) -> list[dict[str, Any]]:
        """Queue and kill ``count`` times, then queue once more; the requests claimed, in order."""
        requests = []
        for _ in range(count):
            instance = self.queue()
            requests.append({**instance.resources, "queue": instance.queue})
            self.kill_for_resources(instance)
        last = self.queue()
        requests.append({**last.resources, "queue": last.queue})
        return requests

    def detail(self) -> TaskDetailOut:
        return self.requester.get(f"/tasks/{self.task_id}", TaskDetailOut)


def memories(requests: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [(request["queue"], request["memory"]) for request in requests]


def test_a_number_scale_grows_the_request_and_stores_a_new_row(
    requester: Requester, cluster: str
) -> None:
    run = OneTaskRun(requester, cluster, resource_scales={"memory": 0.5, "runtime": 1.0})
    first_row = run.detail().resources.id
    requests = run.attempts(2)
    assert [(r["memory"], r["runtime"]) for r in requests] == [(1.0, 100), (1.5, 200), (2.0, 400)]
    detail = run.detail()
    assert detail.resources.kind == "adjusted" and detail.resources.id != first_row
    assert detail.resources.requested == {"memory": 2.0, "runtime": 400, "queue": "small"}
    assert detail.original_resources.kind == "original"  # what the user asked for stays


def test_a_callable_scale_gets_the_previous_value(requester: Requester, cluster: str) -> None:
    run = OneTaskRun(requester, cluster, resource_scales={"memory": lambda memory: memory + 0.25})
    assert memories(run.attempts(2)) == [("small", 1.0), ("small", 1.25), ("small", 1.5)]


def test_an_exhausted_iterator_keeps_its_last_value(requester: Requester, cluster: str) -> None:
    values: Iterator[str] = iter(["1536M", "2G"])
    run = OneTaskRun(requester, cluster, resource_scales={"memory": values})
    assert memories(run.attempts(3)) == [
        ("small", 1.0),
        ("small", 1.5),
        ("small", 2.0),
        ("small", 2.0),
    ]


def test_the_first_fallback_queue_that_takes_the_request_is_chosen(
    requester: Requester, cluster: str
) -> None:
    run = OneTaskRun(
        requester,
        cluster,
        resource_scales={"memory": 3.0},
        fallback_queues=["medium", "large"],
    )
    assert memories(run.attempts(2)) == [("small", 1.0), ("medium", 4.0), ("large", 16.0)]
    assert run.detail().resources.requested["queue"] == "large"


def test_a_request_no_queue_takes_is_clamped_to_the_last_queue_tried(
    requester: Requester, cluster: str
) -> None:
    run = OneTaskRun(
        requester,
        cluster,
        resource_scales={"memory": 99.0, "runtime": 0.0},
        fallback_queues=["medium", "large"],
    )
    assert memories(run.attempts(1)) == [("small", 1.0), ("large", 32.0)]
    without_fallbacks = OneTaskRun(requester, cluster, resource_scales={"memory": 99.0})
    assert memories(without_fallbacks.attempts(1)) == [("small", 1.0), ("small", 2.0)]


def test_a_run_loaded_from_the_database_uses_the_stored_scales_and_fallbacks(
    requester: Requester, cluster: str
) -> None:
    run = OneTaskRun(
        requester,
        cluster,
        from_database=True,
        resource_scales={"memory": 1.0},
        fallback_queues=["medium"],
    )
    assert memories(run.attempts(2)) == [("small", 1.0), ("small", 2.0), ("medium", 4.0)]


def test_a_resources_callable_gives_the_first_request(requester: Requester, cluster: str) -> None:
    run = OneTaskRun(
        requester, cluster, compute_resources_callable=lambda: {"memory": "4G", "queue": "medium"}
    )
    assert memories(run.attempts(1)) == [("medium", 4.0), ("medium", 6.0)]
    assert run.detail().resources.requested["runtime"] == 150  # merged over the resolved ones


# --- the routes themselves ------------------------------------------------------------------------


def test_adjusted_rows_are_one_per_request_of_an_attempt_and_read_back(
    requester: Requester, cluster: str
) -> None:
    run = OneTaskRun(requester, cluster)
    workflow_id = run.swarm.workflow_id
    item = sschemas.AdjustedResourcesItemIn(
        task_id=run.task_id, requested={"queue": "medium", "memory": 3.0}
    )
    other = item.model_copy(update={"requested": {"queue": "large", "memory": 20.0}})
    created = requester.post(
        f"/workflows/{workflow_id}/adjusted_resources",
        sschemas.AdjustedResourcesIn(items=[item, item, other]),
        sschemas.AdjustedResourcesOut,
    )
    first, second, third = created.task_resources_ids
    # The same request for the same attempt is one row (a retried request finds it); a
    # different request is a row of its own.
    assert first == second and len({first, third}) == 2
    read = requester.post(
        "/task_resources/query",
        sschemas.TaskResourcesQueryIn(task_resources_ids=[third, first], task_ids=[run.task_id]),
        sschemas.TaskResourcesOut,
    )
    current = run.detail().resources.id
    assert read.task_resources_ids == [current]
    by_id = {row.id: row for row in read.resources}
    assert [row.id for row in read.resources] == [third, first, current]
    assert by_id[first].kind == "adjusted" and by_id[first].cluster == cluster
    assert by_id[first].queue == "medium"
    assert by_id[first].requested == {"queue": "medium", "memory": 3.0}
    assert by_id[current].kind == "validated" and by_id[current].queue == "small"
    third_row = requester.post(
        "/task_resources/query",
        sschemas.TaskResourcesQueryIn(task_resources_ids=[third]),
        sschemas.TaskResourcesOut,
    ).resources[0]
    assert (third_row.queue, third_row.requested["memory"]) == ("large", 20.0)  # ids in order


def test_an_unknown_queue_or_task_is_refused_naming_it(requester: Requester, cluster: str) -> None:
    run = OneTaskRun(requester, cluster)
    path = f"/workflows/{run.swarm.workflow_id}/adjusted_resources"

    def post(*items: sschemas.AdjustedResourcesItemIn) -> sschemas.AdjustedResourcesOut:
        return requester.post(
            path, sschemas.AdjustedResourcesIn(items=list(items)), sschemas.AdjustedResourcesOut
        )

    good = sschemas.AdjustedResourcesItemIn(task_id=run.task_id, requested={"queue": "small"})
    unknown = f"queue 'gpu' does not exist in cluster '{cluster}'"
    with pytest.raises(InvalidResourceError, match=unknown):
        post(good, good.model_copy(update={"requested": {"queue": "gpu"}}))
    with pytest.raises(InvalidResourceError, match="names no queue"):
        post(good.model_copy(update={"requested": {"memory": 1.0}}))
    with pytest.raises(NotFoundError, match="not tasks of workflow"):
        post(good.model_copy(update={"task_id": run.task_id + 10_000}))
    with pytest.raises(NotFoundError, match="do not exist"):
        requester.post(
            "/task_resources/query",
            sschemas.TaskResourcesQueryIn(task_resources_ids=[2**40]),
            sschemas.TaskResourcesOut,
        )
    assert post().task_resources_ids == []


def test_adjustment_is_refused_for_no_row_when_a_later_item_is_bad(
    requester: Requester, cluster: str, server: RunningServer
) -> None:
    run = OneTaskRun(requester, cluster)
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as connection:
            before = connection.execute(text("SELECT COUNT(*) FROM task_resources")).scalar_one()
        good = sschemas.AdjustedResourcesItemIn(task_id=run.task_id, requested={"queue": "small"})
        bad = good.model_copy(update={"requested": {"queue": "nope"}})
        with pytest.raises(InvalidResourceError):
            requester.post(
                f"/workflows/{run.swarm.workflow_id}/adjusted_resources",
                sschemas.AdjustedResourcesIn(items=[good, bad]),
                sschemas.AdjustedResourcesOut,
            )
        with engine.connect() as connection:
            after = connection.execute(text("SELECT COUNT(*) FROM task_resources")).scalar_one()
    finally:
        engine.dispose()
    assert after == before
