"""The report routes and the owner's updates, on every engine: the same answers everywhere.

One done and one failed workflow per engine, built once for the module; the CLI tests
(``test_cli_commands.py``) cover the commands themselves on SQLite.
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
from tests.integration.report_workflows import FinishedWorkflows, run_finished_workflows

from herdsman.core.errors import ConflictError, NotFoundError, PermissionDeniedError
from herdsman.core.requester import Requester
from herdsman.core.schemas import reports
from herdsman.core.schemas.control import (
    OwnerRequestIn,
    OwnerUpdateOut,
    TaskUpdateIn,
    WorkflowResetIn,
)
from herdsman.core.schemas.gui import TasksPageOut
from herdsman.core.schemas.swarm import RunStatusOut

pytestmark = pytest.mark.integration

GIB = 1024**3


@pytest.fixture(scope="module")
def client(server: RunningServer) -> Iterator[Requester]:
    with Requester(server.url, timeout=60, retries=3) as requester:
        yield requester


@pytest.fixture(scope="module")
def finished(client: Requester, tmp_path_factory: pytest.TempPathFactory) -> FinishedWorkflows:
    return run_finished_workflows(client, tmp_path_factory.mktemp("reports"), "report-routes")


def _summaries(client: Requester, **params: Any) -> list[reports.WorkflowSummaryOut]:
    return client.get("/workflow_summaries", reports.WorkflowSummariesOut, params=params).workflows


def test_summaries_count_tasks_by_state(client: Requester, finished: FinishedWorkflows) -> None:
    found = _summaries(client, workflow_id=[finished.done_id, finished.failed_id])
    assert [row.id for row in found] == [finished.failed_id, finished.done_id]
    failed, done = found
    assert (done.status, done.tasks, done.done, done.pending, done.fatal) == ("D", 3, 3, 0, 0)
    assert (failed.status, failed.tasks, failed.done, failed.pending) == ("F", 5, 2, 1)
    assert (failed.fatal, failed.running, failed.retries) == (2, 0, 1)
    assert failed.elapsed_seconds is not None and failed.elapsed_seconds > 0
    assert _summaries(client, workflow_id=[finished.done_id], user="someone-else") == []
    assert finished.done_id in {row.id for row in _summaries(client, user=getpass.getuser())}


def test_usage_statistics_match_the_recorded_attempts(
    client: Requester, server: RunningServer, finished: FinishedWorkflows
) -> None:
    rows = query_rows(
        server.database_url,
        "SELECT ti.wall_time, ti.max_rss FROM task_instance ti "
        "JOIN task t ON t.id = ti.task_id "
        "WHERE ti.status = 'D' AND t.workflow_id IN (:d, :f) AND t.id IN (:a, :b, :c)",
        d=finished.done_id,
        f=finished.failed_id,
        a=finished.done_model_ids[0],
        b=finished.done_model_ids[1],
        c=finished.failed_model_id,
    )
    assert len(rows) == 3
    found = client.get(
        "/resource_usage",
        reports.ResourceUsageOut,
        params={"task_template": "model", "workflow_id": [finished.done_id, finished.failed_id]},
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
        # Linear interpolation: 95 % of the way from the 2nd to the 3rd of three values.
        assert stats.p95 == pytest.approx(middle + 0.9 * (high - middle))


def test_attempts_neighbours_logs_and_errors(
    client: Requester, finished: FinishedWorkflows
) -> None:
    attempts = client.get(f"/tasks/{finished.flaky_id}/attempts", reports.TaskAttemptsOut)
    assert [(a.status, a.exit_code, a.error) for a in attempts.attempts] == [
        ("E", 3, "exit code 3"),
        ("E", 3, "exit code 3"),
    ]
    neighbours = client.get(f"/tasks/{finished.flaky_id}/dependencies", reports.DependenciesOut)
    assert [(n.id, n.status) for n in neighbours.upstream] == [(finished.failed_prepare_id, "D")]
    assert [(n.id, n.status) for n in neighbours.downstream] == [(finished.after_id, "G")]

    logs = client.get(
        f"/workflows/{finished.failed_id}/log_paths",
        reports.LogPathsOut,
        params={"task_template": "flaky", "limit": 1},
    )
    assert logs.count == 2
    (newest,) = logs.instances
    assert newest.task_instance_id == attempts.attempts[-1].id
    assert newest.stderr_path is not None
    assert Path(newest.stderr_path).read_text() == "boom\n"

    errors = client.get(f"/workflows/{finished.failed_id}/error_messages", reports.ErrorMessagesOut)
    assert errors.count == 3
    assert sorted(e.task_id for e in errors.errors) == sorted(
        [finished.crash_id, finished.flaky_id, finished.flaky_id]
    )
    assert [e.error_time for e in errors.errors] == sorted(
        (e.error_time for e in errors.errors), reverse=True
    )

    with pytest.raises(NotFoundError, match="no task template is called 'nope'"):
        client.get("/resource_usage", reports.ResourceUsageOut, params={"task_template": "nope"})
    with pytest.raises(NotFoundError, match="task 987654321 does not exist"):
        client.get("/tasks/987654321/attempts", reports.TaskAttemptsOut)


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
    client: Requester, server: RunningServer, finished: FinishedWorkflows
) -> None:
    owner = getpass.getuser()
    failed = finished.failed_id
    reset_path = f"/workflows/{failed}/reset"
    with pytest.raises(PermissionDeniedError, match=f"only the owner of workflow {failed}"):
        client.post(reset_path, WorkflowResetIn(user="intruder"), OwnerUpdateOut)
    with pytest.raises(ConflictError, match=f"workflow {finished.done_id} is not running"):
        client.post(f"/workflows/{finished.done_id}/stop", OwnerRequestIn(user=owner), RunStatusOut)
    with pytest.raises(ConflictError, match=f"workflow {finished.done_id} is done"):
        client.post(
            f"/workflows/{finished.done_id}/task_updates",
            TaskUpdateIn(user=owner, task_ids=[finished.done_prepare_id], status="G"),
            OwnerUpdateOut,
        )

    before = len(_feed(server.database_url, failed))
    reset = client.post(reset_path, WorkflowResetIn(user=owner, partial=True), OwnerUpdateOut)
    assert reset.changed_task_ids == sorted([finished.flaky_id, finished.crash_id])
    assert reset.workflow_status == "F"
    assert sorted(_feed(server.database_url, failed)[before:]) == sorted(
        [("T", finished.flaky_id, "G"), ("T", finished.crash_id, "G")]
    )
    again = client.post(reset_path, WorkflowResetIn(user=owner, partial=True), OwnerUpdateOut)
    assert again.changed_task_ids == []
    assert len(_feed(server.database_url, failed)) == before + 2

    updates = f"/workflows/{failed}/task_updates"
    other = finished.done_prepare_id  # a task of the done workflow
    with pytest.raises(NotFoundError, match=f"workflow {failed} has no task {other}$"):
        client.post(
            updates,
            TaskUpdateIn(user=owner, task_ids=[finished.done_prepare_id], status="D"),
            OwnerUpdateOut,
        )

    def update(task_ids: list[int], status: str, recursive: bool = False) -> OwnerUpdateOut:
        body = TaskUpdateIn(user=owner, task_ids=task_ids, status=status, recursive=recursive)
        return client.post(updates, body, OwnerUpdateOut)

    prepare, flaky, after = finished.failed_prepare_id, finished.flaky_id, finished.after_id
    assert update([after], "D").changed_task_ids == [after]
    # Resetting the first task resets the whole chain below it, and only that.
    assert update([prepare], "G").changed_task_ids == sorted([prepare, flaky, after])
    model = client.get(f"/tasks/{finished.failed_model_id}/attempts", reports.TaskAttemptsOut)
    assert model.status == "D"
    # Done, recursively: the last task and everything upstream of it; with crash done too,
    # every task is done and so is the failed workflow.
    last = update([after, finished.crash_id], "D", recursive=True)
    assert last.changed_task_ids == sorted([prepare, flaky, after, finished.crash_id])
    assert last.workflow_status == "D"
    tasks = client.get(f"/workflows/{failed}/tasks", TasksPageOut).tasks
    assert {task.status for task in tasks} == {"D"}
    assert [c for c in _feed(server.database_url, failed) if c[0] == "T"][-4:] == [
        ("T", task_id, "D") for task_id in sorted([prepare, flaky, after, finished.crash_id])
    ]
