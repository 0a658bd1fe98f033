"""``run()`` after ``bind()``: the workflow is sent again only when it changed since."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from tests.support.tokens import admin_token

from herdsman import Tool, WorkflowAlreadyExists
from herdsman.core.requester import Body, Requester

pytestmark = pytest.mark.e2e

# The routes a bind writes through (see herdsman.client.bind_requests).
BIND_PATHS = ("/nodes", "/dags", "/workflows", "/task_resources", "/task_template")


class CountingRequester(Requester):
    """A requester that counts the bind writes it sends, by route."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bind_writes: Counter[str] = Counter()

    def put(self, path: str, body: Body, reply: type[Any]) -> Any:
        self._count(path)
        return super().put(path, body, reply)

    def post(self, path: str, body: Body | None, reply: type[Any]) -> Any:
        self._count(path)
        return super().post(path, body, reply)

    def _count(self, path: str) -> None:
        if path.startswith(BIND_PATHS) and "/runs" not in path:
            # "/workflows/7/tasks" -> "/workflows/tasks": one key per route, not per workflow
            self.bind_writes["/".join(p for p in path.split("/") if not p.isdigit())] += 1

    def take(self) -> Counter[str]:
        found, self.bind_writes = self.bind_writes, Counter()
        return found


@pytest.fixture
def counting(server: Any) -> Iterator[CountingRequester]:
    with CountingRequester(server.url, token=admin_token(), timeout=60, retries=3) as client:
        yield client


def _tool(requester: Requester) -> Tool:
    tool = Tool(f"bind-once-{time.time()}", requester=requester)
    tool.set_default_cluster_name("dummy")
    return tool


def test_run_after_bind_sends_nothing(counting: CountingRequester) -> None:
    tool = _tool(counting)
    template = tool.get_task_template("step", "echo {i}", node_args=["i"])
    tasks = template.create_tasks(i=range(5))
    tasks[1].add_upstream(tasks[0])
    workflow = tool.create_workflow(workflow_args=f"once-{time.time()}")
    workflow.add_tasks(tasks)
    workflow_id = workflow.bind()
    assert counting.take()["/workflows/tasks"] == 1

    assert workflow.run(progress=False) == "D"
    assert counting.take() == Counter()
    assert workflow.workflow_id == workflow_id
    assert all(task.final_status == "D" for task in tasks)


def test_run_after_bind_and_change_binds_again(counting: CountingRequester) -> None:
    tool = _tool(counting)
    template = tool.get_task_template("step", "echo {i}", node_args=["i"])
    tasks = template.create_tasks(i=range(3))
    workflow = tool.create_workflow(workflow_args=f"changed-{time.time()}")
    workflow.add_tasks(tasks)
    workflow.bind()
    counting.take()

    # new resources and attributes keep the workflow's identity: bound again, then run
    tasks[0].update_compute_resources(memory="2G")
    tasks[1].add_attributes({"kind": "slow"})
    assert workflow.run(progress=False) == "D"
    sent = counting.take()
    assert sent["/workflows/tasks"] == 1
    assert sent["/workflows/bound"] == 1


def test_run_after_bind_and_new_task_is_refused(counting: CountingRequester) -> None:
    """A task or edge added after bind makes another workflow under the same workflow_args:
    the run binds again and the server refuses it, as a second bind() would."""
    tool = _tool(counting)
    template = tool.get_task_template("step", "echo {i}", node_args=["i"])
    workflow = tool.create_workflow(workflow_args=f"grown-{time.time()}")
    workflow.add_tasks(template.create_tasks(i=range(3)))
    workflow.bind()
    counting.take()

    workflow.add_task(template.create_task(i=3))
    with pytest.raises(WorkflowAlreadyExists, match=r"run it with run\(resume=True\)"):
        workflow.run(progress=False)
    assert counting.take()["/nodes"] == 1


@pytest.mark.parametrize(
    "change",
    ["resources", "attribute", "edge", "limit", "template default", "workflow default"],
)
def test_every_kind_of_change_is_seen(counting: CountingRequester, change: str) -> None:
    tool = _tool(counting)
    template = tool.get_task_template("step", "echo {i}", node_args=["i"])
    tasks = template.create_tasks(i=range(3))
    workflow = tool.create_workflow(workflow_args=f"{change}-{time.time()}")
    workflow.add_tasks(tasks)
    workflow.bind()
    counting.take()
    assert workflow.bind_if_changed() == workflow.workflow_id
    assert counting.take() == Counter()

    if change == "resources":
        tasks[0].compute_resources = {"memory": "1G"}
        workflow.bind_if_changed()
        counting.take()
        tasks[0].compute_resources["memory"] = "2G"  # a change in place is seen too
    elif change == "attribute":
        tasks[1].task_attributes = {"kind": "slow"}
    elif change == "edge":
        tasks[2].add_upstream(tasks[0])
    elif change == "limit":
        workflow.set_task_template_max_concurrency_limit("step", 1)
    elif change == "template default":
        template.set_default_max_attempts(5)
    else:
        workflow.set_default_compute_resources_from_dict("dummy", {"cores": 2})
    if change == "edge":
        with pytest.raises(WorkflowAlreadyExists):
            workflow.bind_if_changed()
        assert counting.take()["/dags"] == 1
    else:
        workflow.bind_if_changed()
        assert counting.take()["/workflows/bound"] == 1


def test_default_scales_are_stored_empty_and_read_back_as_the_defaults(
    counting: CountingRequester, server: Any
) -> None:
    from sqlalchemy import create_engine, text

    from herdsman.client.scaling import scale_request
    from herdsman.client.swarm.policies import StoredResourcePolicy

    tool = _tool(counting)
    template = tool.get_task_template("step", "echo {i}", node_args=["i"])
    plain, scaled = template.create_tasks(i=range(2))
    scaled.resource_scales = {"memory": 0.9}
    workflow = tool.create_workflow(workflow_args=f"scales-{time.time()}")
    workflow.add_tasks([plain, scaled])
    workflow.bind()
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT id, resource_scales FROM task WHERE workflow_id = :w"),
                {"w": workflow.workflow_id},
            ).all()
            stored = {int(task_id): scales for task_id, scales in rows}
    finally:
        engine.dispose()
    assert stored == {plain.task_id: "", scaled.task_id: '{"memory": 0.9}'}
    # A resume from the database scales the first task by the defaults (memory and runtime
    # by half again), the second by its own scales.
    policy = StoredResourcePolicy()
    for task_id, scales in stored.items():
        policy.add(task_id, scales, "")
    previous = {"memory": 2.0, "runtime": 100}
    assert scale_request(previous, policy.scales(plain.task_id)) == {"memory": 3.0, "runtime": 150}
    assert scale_request(previous, policy.scales(scaled.task_id))["memory"] == pytest.approx(
        3.8, abs=0.01
    )
