"""The report routes and the owner's updates, on every engine: the same answers everywhere.

One failed workflow per engine (with done tasks), built once for the module; the CLI tests
(``test_cli_commands.py``) cover the commands themselves, on SQLite.
"""

from __future__ import annotations

import getpass
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import RunningServer
from tests.e2e.conftest import query_rows
from tests.integration.report_workflows import FailedWorkflow, reports_tool, run_failed_workflow
from tests.support.tokens import user_token

from herdsman.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from herdsman.core.requester import Requester
from herdsman.core.schemas import queries
from herdsman.core.schemas.control import OwnerUpdateOut, TaskUpdateIn, WorkflowResetIn
from herdsman.core.schemas.queries import TasksPageOut
from herdsman.core.schemas.swarm import RunStatusOut

pytestmark = pytest.mark.integration

GIB = 1024**3


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[Requester]:
    with Requester(server.url, timeout=60, retries=3) as requester:
        yield requester


@pytest.fixture(scope="module")
def failed_wf(client: Requester, tmp_path_factory: pytest.TempPathFactory) -> FailedWorkflow:
    tool = reports_tool(client, tmp_path_factory.mktemp("reports"), "report-routes")
    return run_failed_workflow(tool, models_mib=(64, 96, 128))


def _summaries(client: Requester, **params: Any) -> list[queries.WorkflowSummaryOut]:
    return client.get("/workflow_summaries", queries.WorkflowSummariesOut, params=params).workflows


def test_summaries_count_tasks_by_state(client: Requester, failed_wf: FailedWorkflow) -> None:
    (failed,) = _summaries(client, workflow_id=[failed_wf.workflow_id])
    assert (failed.id, failed.status, failed.tasks, failed.done, failed.pending) == (
        failed_wf.workflow_id,
        "F",
        7,
        4,
        1,
    )
    assert (failed.fatal, failed.running, failed.retries) == (2, 0, 1)
    assert failed.elapsed_seconds is not None and failed.elapsed_seconds > 0
    assert _summaries(client, workflow_id=[failed_wf.workflow_id], user="someone-else") == []
    mine = _summaries(client, user=getpass.getuser(), limit=10_000)
    assert failed_wf.workflow_id in {row.id for row in mine}


def test_usage_statistics_match_the_recorded_attempts(
    client: Requester, server: RunningServer, failed_wf: FailedWorkflow
) -> None:
    rows = query_rows(
        server.database_url,
        "SELECT ti.wall_time, ti.max_rss FROM task_instance ti "
        "JOIN task t ON t.id = ti.task_id WHERE ti.status = 'D' AND t.id IN (:a, :b, :c)",
        a=failed_wf.model_ids[0],
        b=failed_wf.model_ids[1],
        c=failed_wf.model_ids[2],
    )
    assert len(rows) == 3
    found = client.get(
        "/resource_usage",
        queries.ResourceUsageOut,
        params={"task_template": "model", "workflow_id": [failed_wf.workflow_id]},
    )
    (entry,) = found.templates
    assert (entry.task_template, entry.cluster, entry.attempts) == ("model", "sequential", 3)
    for stats, values in (
        (entry.runtime, sorted(float(row[0]) for row in rows)),
        (entry.memory, sorted(row[1] / GIB for row in rows)),
    ):
        assert stats is not None
        low, middle, high = values
        assert stats.count == 3
        assert (stats.min, stats.median, stats.max) == pytest.approx((low, middle, high))
        assert stats.mean == pytest.approx(statistics.fmean(values))
        # Linear interpolation at position 0.95 x 2 = 1.9: 90 % of the way from the 2nd value.
        assert stats.p95 == pytest.approx(middle + 0.9 * (high - middle))


def test_attempts_neighbours_logs_and_errors(client: Requester, failed_wf: FailedWorkflow) -> None:
    attempts = client.get(f"/tasks/{failed_wf.flaky_id}/attempts", queries.TaskAttemptsOut)
    assert [(a.status, a.exit_code, a.error) for a in attempts.attempts] == [
        ("E", 3, "exit code 3"),
        ("E", 3, "exit code 3"),
    ]
    neighbours = client.get(f"/tasks/{failed_wf.flaky_id}/dependencies", queries.DependenciesOut)
    assert [(n.id, n.status) for n in neighbours.upstream] == [(failed_wf.prepare_id, "D")]
    assert [(n.id, n.status) for n in neighbours.downstream] == [(failed_wf.after_id, "G")]

    logs = client.get(
        f"/workflows/{failed_wf.workflow_id}/log_paths",
        queries.LogPathsOut,
        params={"task_template": "flaky", "limit": 1},
    )
    assert logs.count == 2
    (newest,) = logs.instances
    assert newest.task_instance_id == attempts.attempts[-1].id
    assert newest.stderr_path is not None
    assert Path(newest.stderr_path).read_text() == "boom\n"

    errors = client.get(
        f"/workflows/{failed_wf.workflow_id}/error_messages", queries.ErrorMessagesOut
    )
    assert errors.count == 3
    assert sorted(e.task_id for e in errors.errors) == sorted(
        [failed_wf.crash_id, failed_wf.flaky_id, failed_wf.flaky_id]
    )
    assert [e.error_time for e in errors.errors] == sorted(
        (e.error_time for e in errors.errors), reverse=True
    )

    with pytest.raises(NotFoundError, match="no task template is called 'nope'"):
        client.get("/resource_usage", queries.ResourceUsageOut, params={"task_template": "nope"})
    with pytest.raises(NotFoundError, match="task 987654321 does not exist"):
        client.get("/tasks/987654321/attempts", queries.TaskAttemptsOut)


def _feed(database_url: str, workflow_id: int) -> list[tuple[str, int, str]]:
    return [
        (kind, int(object_id), status)
        for kind, object_id, status in query_rows(
            database_url,
            "SELECT kind, object_id, status FROM status_change WHERE workflow_id = :w ORDER BY seq",
            w=workflow_id,
        )
    ]


def test_owner_updates_are_guarded_recorded_and_idempotent(
    client: Requester, server: RunningServer, failed_wf: FailedWorkflow
) -> None:
    failed = failed_wf.workflow_id
    reset_path = f"/workflows/{failed}/reset"
    with Requester(server.url, token=user_token("intruder")) as intruder:
        with pytest.raises(PermissionDeniedError, match=f"only the owner of workflow {failed}"):
            intruder.post(reset_path, WorkflowResetIn(), OwnerUpdateOut)
        with pytest.raises(PermissionDeniedError, match=f"only the owner of workflow {failed}"):
            intruder.post(f"/workflows/{failed}/stop", None, RunStatusOut)
    with pytest.raises(ConflictError, match=f"workflow {failed} is not running"):
        client.post(f"/workflows/{failed}/stop", None, RunStatusOut)

    before = len(_feed(server.database_url, failed))
    reset = client.post(reset_path, WorkflowResetIn(partial=True), OwnerUpdateOut)
    assert reset.changed_task_ids == sorted([failed_wf.flaky_id, failed_wf.crash_id])
    assert reset.workflow_status == "F"
    assert sorted(_feed(server.database_url, failed)[before:]) == sorted(
        [("T", failed_wf.flaky_id, "G"), ("T", failed_wf.crash_id, "G")]
    )
    again = client.post(reset_path, WorkflowResetIn(partial=True), OwnerUpdateOut)
    assert again.changed_task_ids == []
    assert len(_feed(server.database_url, failed)) == before + 2

    updates = f"/workflows/{failed}/task_updates"
    with pytest.raises(NotFoundError, match=f"workflow {failed} has no task 987654321$"):
        client.post(
            updates,
            TaskUpdateIn(task_ids=[failed_wf.flaky_id, 987654321], status="D"),
            OwnerUpdateOut,
        )

    def update(task_ids: list[int], status: str, recursive: bool = False) -> OwnerUpdateOut:
        body = TaskUpdateIn(task_ids=task_ids, status=status, recursive=recursive)
        return client.post(updates, body, OwnerUpdateOut)

    prepare, flaky, after = failed_wf.prepare_id, failed_wf.flaky_id, failed_wf.after_id
    assert update([after], "D", recursive=True).changed_task_ids == sorted([flaky, after])
    # Resetting the first task resets the whole chain below it, and only that.
    assert update([prepare], "G").changed_task_ids == sorted([prepare, flaky, after])
    model = client.get(f"/tasks/{failed_wf.model_ids[0]}/attempts", queries.TaskAttemptsOut)
    assert model.status == "D"
    # Done, recursively: the last task and everything upstream of it; with crash done too,
    # every task is done and so is the failed workflow.
    last = update([after, failed_wf.crash_id], "D", recursive=True)
    assert last.changed_task_ids == sorted([prepare, flaky, after, failed_wf.crash_id])
    assert last.workflow_status == "D"
    tasks = client.get(f"/workflows/{failed}/tasks", TasksPageOut).tasks
    assert {task.status for task in tasks} == {"D"}
    assert [c for c in _feed(server.database_url, failed) if c[0] == "T"][-4:] == [
        ("T", task_id, "D") for task_id in sorted([prepare, flaky, after, failed_wf.crash_id])
    ]
    # Declaring tasks of a done workflow done is refused; setting one back to registering
    # reopens the workflow as failed (Jobmon's rule), so that a resume runs it.
    with pytest.raises(ConflictError, match=f"workflow {failed} is done"):
        update([prepare], "D")
    reopened = update([failed_wf.crash_id], "G")
    assert (reopened.changed_task_ids, reopened.workflow_status) == ([failed_wf.crash_id], "F")
