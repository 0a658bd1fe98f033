"""Whole runs through the real path: server process, database, distributor, worker processes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import query_rows

from herdsman import Tool
from herdsman.client.task import Task
from herdsman.client.workflow import Workflow
from herdsman.core.requester import Requester

pytestmark = pytest.mark.e2e


@pytest.fixture
def tool(requester: Requester, request: pytest.FixtureRequest) -> Tool:
    tool = Tool(f"e2e-{request.node.name}-{time.time()}", requester=requester)
    tool.set_default_cluster_name("multiprocess")
    return tool


def _workflow(tool: Tool, tasks: list[Task], **options: Any) -> Workflow:
    workflow = tool.create_workflow(workflow_args=f"{tool.name}-{len(tasks)}", **options)
    workflow.add_tasks(tasks)
    return workflow


def assert_upstreams_done_first(database_url: str, workflow: Workflow) -> None:
    """From the change feed: no task was queued before every upstream of it was done."""
    changes = query_rows(
        database_url,
        "SELECT seq, object_id, status FROM status_change "
        "WHERE workflow_id = :w AND kind = 'T' ORDER BY seq",
        w=workflow.workflow_id,
    )
    first_queued: dict[int, int] = {}
    done_at: dict[int, int] = {}
    for seq, task_id, status in changes:
        if status == "Q":
            first_queued.setdefault(task_id, seq)
        if status == "D":
            done_at[task_id] = seq
    for task in workflow.tasks.values():
        for upstream in task.upstream_tasks:
            assert done_at[upstream.task_id] < first_queued[task.task_id], (
                f"{task.name} was queued before {upstream.name} was done"
            )


def test_one_task(tool: Tool, server: Any) -> None:
    template = tool.get_task_template("one", "echo {word}", node_args=["word"])
    task = template.create_task(word="hello")
    workflow = _workflow(tool, [task])
    assert workflow.run() == "D"
    assert task.status == "D"


@pytest.mark.parametrize("shape", ["chain", "fork_join", "bushy"])
def test_dags_run_in_dependency_order(tool: Tool, server: Any, shape: str) -> None:
    step = tool.get_task_template("step", "true {label}", node_args=["label"])
    tasks: list[Task] = []
    if shape == "chain":
        a, b, c = (step.create_task(label=n) for n in "abc")
        b.add_upstream(a)
        c.add_upstream(b)
        tasks = [a, b, c]
    elif shape == "fork_join":
        a = step.create_task(label="a")
        bs = [step.create_task(label=f"b{i}", upstream_tasks=[a]) for i in range(3)]
        cs = [step.create_task(label=f"c{i}", upstream_tasks=[b]) for i, b in enumerate(bs)]
        d = step.create_task(label="d", upstream_tasks=cs)
        tasks = [a, *bs, *cs, d]
    else:
        roots = [step.create_task(label=f"r{i}") for i in range(4)]
        mids = [
            step.create_task(label=f"m{i}", upstream_tasks=roots[i % 4 : i % 4 + 2])
            for i in range(6)
        ]
        leaves = [step.create_task(label=f"l{i}", upstream_tasks=mids[i::3]) for i in range(3)]
        tasks = [*roots, *mids, *leaves, step.create_task(label="end", upstream_tasks=leaves)]
    workflow = _workflow(tool, tasks)
    assert workflow.run() == "D"
    assert {task.status for task in tasks} == {"D"}
    assert_upstreams_done_first(server.database_url, workflow)


def test_task_failing_once_is_retried(tool: Tool, server: Any, tmp_path: Path) -> None:
    marker = tmp_path / "tried"
    flaky = tool.get_task_template(
        "flaky", "test -e {marker} || {{ touch {marker}; exit 3; }}", node_args=["marker"]
    )
    task = flaky.create_task(marker=str(marker))
    workflow = _workflow(tool, [task])
    assert workflow.run() == "D"
    attempts = query_rows(
        server.database_url,
        "SELECT status, exit_code FROM task_instance WHERE task_id = :t ORDER BY id",
        t=task.task_id,
    )
    assert [tuple(row) for row in attempts] == [("E", 3), ("D", 0)]


def test_always_failing_task_is_fatal_and_blocks_only_its_branch(tool: Tool, server: Any) -> None:
    template = tool.get_task_template(
        "t", "{command} # {label}", node_args=["label"], op_args=["command"]
    )
    bad = template.create_task(label="bad", command="echo oops >&2; exit 7", max_attempts=3)
    after_bad = template.create_task(label="after-bad", command="true", upstream_tasks=[bad])
    good = template.create_task(label="good", command="true")
    after_good = template.create_task(label="after-good", command="true", upstream_tasks=[good])
    workflow = _workflow(tool, [bad, after_bad, good, after_good])
    assert workflow.run() == "E"
    assert (bad.status, good.status, after_good.status) == ("F", "D", "D")
    assert after_bad.status not in ("D", "F")
    attempts = query_rows(
        server.database_url,
        "SELECT status, exit_code FROM task_instance WHERE task_id = :t ORDER BY id",
        t=bad.task_id,
    )
    assert [tuple(row) for row in attempts] == [("E", 7)] * 3
    assert (
        query_rows(
            server.database_url,
            "SELECT id FROM task_instance WHERE task_id = :t",
            t=after_bad.task_id,
        )
        == []
    )
    errors = workflow.get_errors()
    assert list(errors) == [bad.task_id]
    assert len(errors[bad.task_id].errors) == 3
    assert "oops" in errors[bad.task_id].stderr_tail


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def _sleepers(tool: Tool, tmp_path: Path, count: int) -> list[Task]:
    sleeper = tool.get_task_template(
        "sleeper",
        "date +%s.%N > {out}.start; sleep 0.3; date +%s.%N > {out}.end",
        node_args=["out"],
    )
    return sleeper.create_tasks(out=[str(tmp_path / f"s{i}") for i in range(count)])


def _intervals(tmp_path: Path, count: int) -> list[tuple[float, float]]:
    return [
        (
            float((tmp_path / f"s{i}.start").read_text()),
            float((tmp_path / f"s{i}.end").read_text()),
        )
        for i in range(count)
    ]


@pytest.fixture
def six_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """More local workers than the limits under test, so only the limits can hold tasks back."""
    monkeypatch.setenv("HERDSMAN_MULTIPROCESS_WORKERS", "6")


def test_without_a_limit_sleepers_overlap(
    tool: Tool, server: Any, tmp_path: Path, six_workers: None
) -> None:
    """The control for the limit tests: the same tasks do run side by side when allowed to."""
    tasks = _sleepers(tool, tmp_path, 12)
    assert _workflow(tool, tasks).run() == "D"
    assert _max_overlap(_intervals(tmp_path, 12)) >= 3


def test_workflow_limit_is_never_exceeded(
    tool: Tool, server: Any, tmp_path: Path, six_workers: None
) -> None:
    tasks = _sleepers(tool, tmp_path, 20)
    workflow = _workflow(tool, tasks, max_concurrently_running=2)
    assert workflow.run() == "D"
    assert _max_overlap(_intervals(tmp_path, 20)) <= 2


def test_array_limit_is_never_exceeded(
    tool: Tool, server: Any, tmp_path: Path, six_workers: None
) -> None:
    tasks = _sleepers(tool, tmp_path, 12)
    workflow = _workflow(tool, tasks)
    workflow.set_task_template_max_concurrency_limit("sleeper", 2)
    assert workflow.run() == "D"
    assert _max_overlap(_intervals(tmp_path, 12)) <= 2
