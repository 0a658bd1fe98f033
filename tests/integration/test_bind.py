"""Binding workflows against a real server process, on every database engine."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from herdsman import Tool, WorkflowAlreadyExists, WorkflowValidationError
from herdsman.client.task import Task
from herdsman.client.workflow import Workflow
from herdsman.core.errors import (
    InvalidInputError,
    InvalidResourceError,
    NotFoundError,
)
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import IdsOut, TaskTemplateVersionIn, TaskTemplateVersionOut
from herdsman.core.schemas.queries import EdgesOut, TaskDetailOut, TasksPageOut, WorkflowDetailOut
from herdsman.server.database import models

pytestmark = pytest.mark.integration


@pytest.fixture
def tool(requester: Requester, request: pytest.FixtureRequest) -> Tool:
    tool = Tool(f"bind-{request.node.name}", requester=requester)
    tool.set_default_cluster_name("dummy")
    return tool


def count_rows(database_url: str, model: type[models.Base], **where: Any) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            query = select(func.count()).select_from(model)
            for column, value in where.items():
                query = query.where(getattr(model, column) == value)
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def three_template_workflow(tool: Tool, workflow_args: str) -> tuple[Workflow, list[Task]]:
    """prepare[location] -> fit[location, model] -> summarize, with attributes and resources."""
    prepare = tool.get_task_template(
        "prepare",
        "prep --location {location} --release {release} {verbose}",
        node_args=["location"],
        task_args=["release"],
        op_args=["verbose"],
        default_compute_resources={"memory": "1G", "cores": 1},
    )
    fit = tool.get_task_template("fit", "fit {location} {model}", node_args=["location", "model"])
    summarize = tool.get_task_template(
        "summarize", "summarize --release {release}", task_args=["release"]
    )
    workflow = tool.create_workflow(
        name="three templates",
        workflow_args=workflow_args,
        workflow_attributes={"project": "demo", "owner": "lab"},
        default_compute_resources_set={"dummy": {"runtime": "1h"}},
    )
    prepared = prepare.create_tasks(location=["a", "b"], release=7, verbose="-v")
    fits = []
    for location_task in prepared:
        location = location_task.node_args["location"]
        fits += fit.create_tasks(
            location=location,
            model=["linear", "forest"],
            upstream_tasks=[location_task],
            compute_resources={"memory": "2G", "runtime": "00:30:00"},
            task_attributes={"kind": "fit"},
            max_attempts=5,
        )
    final = summarize.create_task(release=7, upstream_tasks=fits, name="summarize-all")
    tasks = [*prepared, *fits, final]
    workflow.add_tasks(tasks)
    return workflow, tasks


def test_three_template_workflow_binds_and_is_readable(tool: Tool, requester: Requester) -> None:
    workflow, tasks = three_template_workflow(tool, "three-1")
    workflow_id = workflow.bind()

    assert all(task.task_id is not None and task.status == "G" for task in tasks)
    detail = requester.get(f"/workflows/{workflow_id}", WorkflowDetailOut)
    assert detail.num_tasks == 7
    assert detail.bound
    assert detail.attributes == {"project": "demo", "owner": "lab"}
    assert detail.task_status_counts == {"G": 7}

    page = requester.get(f"/workflows/{workflow_id}/tasks", TasksPageOut)
    assert {t.name for t in page.tasks} == {task.name for task in tasks}
    commands = {t.command for t in page.tasks}
    assert "prep --location a --release 7 -v" in commands
    assert "fit b forest" in commands

    edges = requester.get(f"/workflows/{workflow_id}/edges", EdgesOut)
    expected = {(up.task_id, task.task_id) for task in tasks for up in task.upstream_tasks}
    assert edges.count == len(expected) == 8
    assert set(map(tuple, edges.edges)) == expected

    fit_task = next(t for t in tasks if t.name == "fit_location-a_model-linear")
    shown = requester.get(f"/tasks/{fit_task.task_id}", TaskDetailOut)
    assert shown.node_args == {"location": "a", "model": "linear"}
    assert shown.attributes == {"kind": "fit"}
    assert shown.max_attempts == 5
    assert shown.original_resources.requested == {"memory": "2G", "runtime": "00:30:00"}
    assert shown.resources.requested == {"memory": 2.0, "runtime": 1800, "queue": "default"}
    assert shown.upstream_task_ids == [tasks[0].task_id]
    prepared = requester.get(f"/tasks/{tasks[0].task_id}", TaskDetailOut)
    assert prepared.resources.requested == {
        "memory": 1.0,
        "cores": 1,
        "runtime": 3600,
        "queue": "default",
    }
    summary = requester.get(f"/tasks/{tasks[-1].task_id}", TaskDetailOut)
    assert summary.name == "summarize-all"
    assert summary.task_args == {"release": "7"}
    assert summary.resources.requested == {"runtime": 3600, "queue": "default"}
    assert sorted(summary.upstream_task_ids) == sorted(t.task_id for t in tasks[2:6])


def test_binding_again_returns_the_same_ids(tool: Tool, server: Any) -> None:
    first, first_tasks = three_template_workflow(tool, "three-again")
    first_id = first.bind()
    second, second_tasks = three_template_workflow(tool, "three-again")
    assert second.bind() == first_id
    assert [t.task_id for t in second_tasks] == [t.task_id for t in first_tasks]
    assert [t.node_id for t in second_tasks] == [t.node_id for t in first_tasks]
    assert count_rows(server.database_url, models.Task, workflow_id=first_id) == 7


def test_same_args_other_tasks_raises_workflow_already_exists(tool: Tool) -> None:
    workflow, _ = three_template_workflow(tool, "three-conflict")
    workflow.bind()
    other, _ = three_template_workflow(tool, "three-conflict")
    extra = tool.get_task_template(
        "prepare",
        "prep --location {location} --release {release} {verbose}",
        node_args=["location"],
        task_args=["release"],
        op_args=["verbose"],
    )
    other.add_task(extra.create_task(location="c", release=7, verbose="-v"))
    with pytest.raises(WorkflowAlreadyExists, match="with 7 tasks where the script has 8; run it"):
        other.bind()


def test_changed_dependencies_are_a_different_workflow(tool: Tool) -> None:
    template = tool.get_task_template("step", "step {i}", node_args=["i"])
    chain = template.create_tasks(i=[1, 2])
    chain[1].add_upstream(chain[0])
    workflow = tool.create_workflow(workflow_args="deps")
    workflow.add_tasks(chain)
    workflow.bind()

    loose = template.create_tasks(i=[1, 2])
    again = tool.create_workflow(workflow_args="deps")
    again.add_tasks(loose)
    with pytest.raises(WorkflowAlreadyExists):
        again.bind()


def _bad_workflows(tool: Tool) -> Iterator[tuple[str, Workflow, type[Exception], str]]:
    template = tool.get_task_template("t", "run {i}", node_args=["i"])

    cycle = tool.create_workflow(workflow_args="bad-cycle")
    a, b, c = template.create_tasks(i=[1, 2, 3])
    b.add_upstream(a)
    c.add_upstream(b)
    a.add_upstream(c)
    cycle.add_tasks([a, b, c])
    yield "cycle", cycle, WorkflowValidationError, "cycle: t_i-"

    missing = tool.create_workflow(workflow_args="bad-missing")
    x, y = template.create_tasks(i=[1, 2])
    y.add_upstream(x)
    missing.add_task(y)
    yield "missing upstream", missing, WorkflowValidationError, "not in the workflow"

    cluster = tool.create_workflow(workflow_args="bad-cluster")
    cluster.add_task(template.create_task(i=1, cluster_name="no-such-cluster"))
    yield "unknown cluster", cluster, InvalidResourceError, "no-such-cluster"

    limits = tool.create_workflow(workflow_args="bad-limits")
    limits.add_task(template.create_task(i=1, compute_resources={"cores": 5000}))
    yield "over limits", limits, InvalidResourceError, "cores from 1 to 1024"

    memory = tool.create_workflow(workflow_args="bad-memory")
    memory.add_task(template.create_task(i=1, compute_resources={"memory": "lots"}))
    yield "bad memory", memory, InvalidResourceError, "'lots'"


def test_bad_workflows_fail_before_anything_is_written(tool: Tool, server: Any) -> None:
    for label, workflow, error, message in _bad_workflows(tool):
        with pytest.raises(error, match=message):
            workflow.bind()
        assert workflow.workflow_id is None, label
    engine = create_engine(server.database_url)
    with engine.connect() as connection:
        bad = connection.execute(
            text("SELECT count(*) FROM workflow WHERE workflow_args LIKE 'bad-%'")
        ).scalar_one()
    engine.dispose()
    assert bad == 0


def test_template_argument_errors_name_the_arguments(tool: Tool) -> None:
    template = tool.get_task_template("args", "x {a} {b}", node_args=["a"], task_args=["b"])
    with pytest.raises(WorkflowValidationError, match=r"missing \['b'\]"):
        template.create_task(a=1)
    with pytest.raises(WorkflowValidationError, match=r"unexpected \['c'\]"):
        template.create_task(a=1, b=2, c=3)


def test_duplicate_tasks_are_refused(tool: Tool) -> None:
    template = tool.get_task_template("dup", "x {a}", node_args=["a"])
    workflow = tool.create_workflow(workflow_args="dup")
    workflow.add_task(template.create_task(a=1))
    with pytest.raises(WorkflowValidationError, match="duplicate task"):
        workflow.add_task(template.create_task(a="1"))


class FailingRequester(Requester):
    """Fails the n-th task chunk, as a client killed mid-bind would leave things."""

    def __init__(self, base_url: str, fail_on_chunk: int) -> None:
        super().__init__(base_url, retries=1)
        self.task_chunks = 0
        self.fail_on_chunk = fail_on_chunk

    def put(self, path: str, body: Any, reply: Any) -> Any:
        if path.endswith("/tasks"):
            self.task_chunks += 1
            if self.task_chunks == self.fail_on_chunk:
                raise ConnectionError("client died")
        return super().put(path, body, reply)


def _wide_workflow(tool: Tool, n: int) -> Workflow:
    template = tool.get_task_template("wide", "echo {i}", node_args=["i"])
    gather = tool.get_task_template("gather", "gather {n}", node_args=["n"])
    tasks = template.create_tasks(i=range(n))
    workflow = tool.create_workflow(workflow_args=f"wide-{n}", chunk_size=100)
    workflow.add_tasks(tasks)
    workflow.add_task(gather.create_task(n=n, upstream_tasks=tasks))
    return workflow


def test_interrupted_bind_is_finished_by_binding_again(server: Any) -> None:
    broken = Tool("interrupted", requester=FailingRequester(server.url, fail_on_chunk=3))
    broken.set_default_cluster_name("dummy")
    with pytest.raises(ConnectionError):
        _wide_workflow(broken, 1000).bind()
    partial = count_rows(server.database_url, models.Task)
    engine = create_engine(server.database_url)
    with engine.connect() as connection:
        bound = connection.execute(
            text("SELECT bound_date FROM workflow WHERE workflow_args = 'wide-1000'")
        ).scalar_one()
    engine.dispose()
    assert bound is None and partial > 0

    tool = Tool("interrupted", requester=Requester(server.url))
    tool.set_default_cluster_name("dummy")
    workflow = _wide_workflow(tool, 1000)
    workflow_id = workflow.bind()
    assert count_rows(server.database_url, models.Task, workflow_id=workflow_id) == 1001
    assert len({task.task_id for task in workflow.tasks.values()}) == 1001


def test_concurrent_binds_of_one_workflow_agree(server: Any) -> None:
    results: dict[int, list[int | None]] = {}
    errors: list[BaseException] = []

    def bind(index: int) -> None:
        try:
            tool = Tool("concurrent", requester=Requester(server.url))
            tool.set_default_cluster_name("dummy")
            workflow = _wide_workflow(tool, 2000)
            workflow.bind()
            results[index] = [task.task_id for task in workflow.tasks.values()]
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=bind, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results[0] == results[1] == results[2]
    assert count_rows(server.database_url, models.Edge) >= 2000


def test_bulk_routes_are_idempotent_and_validate_columns(tool: Tool, requester: Requester) -> None:
    version = requester.put(
        "/task_template_versions",
        TaskTemplateVersionIn(
            task_template_id=_template_id(tool, requester),
            command_template="x {a}",
            node_args=["a"],
            task_args=[],
            op_args=[],
        ),
        TaskTemplateVersionOut,
    )
    body = {
        "task_template_version_id": version.id,
        "arg_ids": [version.arg_ids["a"]],
        "node_args_hashes": [11, 12],
        "values": [["1"], ["2"]],
    }
    first = requester.put("/nodes", body, IdsOut)
    second = requester.put("/nodes", body, IdsOut)
    assert first.ids == second.ids and len(set(first.ids)) == 2

    with pytest.raises(InvalidInputError, match="columns must have one entry per row"):
        requester.put("/nodes", {**body, "values": [["1"]]}, IdsOut)
    with pytest.raises(InvalidInputError, match="node_args_hashes"):
        requester.put("/nodes", {**body, "node_args_hashes": ["x", 1]}, IdsOut)
    with pytest.raises(NotFoundError, match="task_template_version_id"):
        requester.put("/nodes", {**body, "task_template_version_id": 10**9}, IdsOut)


def _template_id(tool: Tool, requester: Requester) -> int:
    from herdsman.core.schemas.client import IdOut, TaskTemplateIn

    return requester.put(
        "/task_templates",
        TaskTemplateIn(tool_version_id=tool.active_tool_version_id, name="raw"),
        IdOut,
    ).id


def test_a_resume_may_add_and_remove_tasks(tool: Tool, requester: Requester, server: Any) -> None:
    def steps(tool: Tool, count: int) -> Workflow:
        step = tool.get_task_template("step", "echo {n}", node_args=["n"])
        workflow = tool.create_workflow(workflow_args=f"{tool.name}-steps")
        workflow.add_tasks(step.create_tasks(n=range(count)))
        return workflow

    def kept(workflow_id: int) -> tuple[int, int, int]:
        """Tasks in the workflow (listed, counted) and all stored, removed ones too."""
        listed = requester.get(f"/workflows/{workflow_id}/tasks", TasksPageOut).count
        detail = requester.get(f"/workflows/{workflow_id}", WorkflowDetailOut)
        stored = count_rows(server.database_url, models.Task, workflow_id=workflow_id)
        return listed, sum(detail.task_status_counts.values()), stored

    workflow_id = steps(tool, 3).bind()

    # Without resume the workflow is refused, saying what differs.
    with pytest.raises(
        WorkflowAlreadyExists,
        match=r"with 3 tasks where the script has 2 \(at least 1 task removed",
    ):
        steps(tool, 2).bind()
    assert kept(workflow_id) == (3, 3, 3)
    # A resume takes the script's tasks: the one it lacks is removed, and kept for the record.
    assert steps(tool, 2).bind(resume=True) == workflow_id
    assert kept(workflow_id) == (2, 2, 3)
    # Binding the same script again changes nothing.
    assert steps(tool, 2).bind(resume=True) == workflow_id
    assert kept(workflow_id) == (2, 2, 3)
    # The removed task comes back when a resume's script has it again; adding is fine too.
    with pytest.raises(WorkflowAlreadyExists, match="with 2 tasks where the script has 4"):
        steps(tool, 4).bind()
    assert steps(tool, 4).bind(resume=True) == workflow_id
    assert kept(workflow_id) == (4, 4, 4)
