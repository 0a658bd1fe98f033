"""``herdsman server prune`` and ``herdsman workflow show --archive`` against a real server and
database, on every engine: finished workflows archived and removed row by row, everything
live or recent untouched, archives that read back."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from tests.conftest import ProcessRegistry, RunningServer, start_server_process
from tests.integration.report_workflows import (
    RunningWorkflow,
    reports_tool,
    run_failed_workflow,
    start_running_workflow,
)
from tests.support.tokens import admin_token

from herdsman import Tool
from herdsman.client.control import stop_workflow
from herdsman.client.workflow import Workflow
from herdsman.core.archive import iter_archive_rows
from herdsman.core.errors import ConflictError
from herdsman.core.requester import Requester

pytestmark = pytest.mark.integration

OLD_DAYS = 100

# Per table: the SQL counting a workflow's rows in it (:w its id).
WORKFLOW_ROWS = {
    "workflow": "SELECT count(*) FROM workflow WHERE id = :w",
    "workflow_attribute": "SELECT count(*) FROM workflow_attribute WHERE workflow_id = :w",
    "workflow_run": "SELECT count(*) FROM workflow_run WHERE workflow_id = :w",
    # "array" is a reserved word on PostgreSQL; quoted by the dialect in workflow_rows
    "array": "SELECT count(*) FROM {array} WHERE workflow_id = :w",
    "task": "SELECT count(*) FROM task WHERE workflow_id = :w",
    "task_arg": "SELECT count(*) FROM task_arg WHERE task_id IN "
    "(SELECT id FROM task WHERE workflow_id = :w)",
    "task_attribute": "SELECT count(*) FROM task_attribute WHERE task_id IN "
    "(SELECT id FROM task WHERE workflow_id = :w)",
    "task_instance": "SELECT count(*) FROM task_instance WHERE workflow_run_id IN "
    "(SELECT id FROM workflow_run WHERE workflow_id = :w)",
    "task_instance_error_log": "SELECT count(*) FROM task_instance_error_log "
    "WHERE workflow_id = :w",
    "status_change": "SELECT count(*) FROM status_change WHERE workflow_id = :w",
    "audit": "SELECT count(*) FROM audit WHERE workflow_id = :w",
    "task_status_count": "SELECT count(*) FROM task_status_count WHERE workflow_id = :w",
    "task_status_history": "SELECT count(*) FROM task_status_history WHERE workflow_id = :w",
    "error_group_count": "SELECT count(*) FROM error_group_count WHERE workflow_id = :w",
    "error_task_count": "SELECT count(*) FROM error_task_count WHERE workflow_id = :w",
    "usage_total": "SELECT count(*) FROM usage_total WHERE workflow_id = :w",
}


def sql(database_url: str, statement: str, **params: Any) -> list[Any]:
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def workflow_rows(database_url: str, workflow_id: int) -> dict[str, int]:
    engine = create_engine(database_url)
    array = engine.dialect.identifier_preparer.quote_identifier("array")
    try:
        with engine.connect() as connection:
            return {
                table: int(
                    connection.execute(
                        text(query.replace("{array}", array)), {"w": workflow_id}
                    ).scalar_one()
                )
                for table, query in WORKFLOW_ROWS.items()
            }
    finally:
        engine.dispose()


def age(database_url: str, workflow_id: int, days: int = OLD_DAYS) -> None:
    """Make the workflow look as if it ended ``days`` ago."""
    rows = sql(database_url, "SELECT status_date FROM workflow WHERE id = :w", w=workflow_id)
    ended = rows[0][0]
    if isinstance(ended, str):  # SQLite hands back text
        ended = dt.datetime.fromisoformat(ended)
    sql(
        database_url,
        "UPDATE workflow SET status_date = :d WHERE id = :w",
        d=ended - dt.timedelta(days=days),
        w=workflow_id,
    )


def dummy_workflow(tool: Tool, workflow_args: str, width: int) -> Workflow:
    """Two layers of ``width`` tasks on the dummy cluster, with attributes and task args."""
    step = tool.get_task_template(
        "step", "echo {layer} {i} {release}", node_args=["layer", "i"], task_args=["release"]
    )
    workflow = tool.create_workflow(
        workflow_args=workflow_args, name=workflow_args, workflow_attributes={"team": "demo"}
    )
    first = step.create_tasks(layer=0, i=range(width), release="r1")
    second = step.create_tasks(layer=1, i=range(width), release="r1")
    for up, down in zip(first, second, strict=True):
        down.add_upstream(up)
        down.add_attributes({"kind": "second"})
    workflow.add_tasks([*first, *second])
    assert workflow.run(progress=False) == "D"
    return workflow


@dataclass(frozen=True)
class Setting:
    old: int  # done, ended long ago; its DAG is shared with ``recent``
    failed: int  # failed (errors, retries), ended long ago; a DAG of its own
    recent: int  # done just now
    guarded: int  # done long ago, but a run of it is live
    running: RunningWorkflow  # running (status R), its date aged too
    dags: dict[int, int]  # workflow id -> its DAG's id


@pytest.fixture(scope="module")
def setting(
    server: RunningServer,
    processes: ProcessRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Setting]:
    url = server.database_url
    stamp = f"{server.engine}-{time.time()}"
    with Requester(server.url, token=admin_token(), timeout=60, retries=3) as requester:
        tool = Tool(f"prune-{stamp}", requester=requester)
        tool.set_default_cluster_name("dummy")
        old = dummy_workflow(tool, f"old-{stamp}", 20)
        recent = dummy_workflow(tool, f"recent-{stamp}", 20)  # same tasks: the same DAG
        guarded = dummy_workflow(tool, f"guarded-{stamp}", 7)
        failed = run_failed_workflow(
            reports_tool(requester, tmp_path_factory.mktemp("failed"), f"prune-failed-{stamp}")
        )
        env = {key: value for key, value in os.environ.items() if not key.startswith("HERDSMAN_")}
        env.update(HERDSMAN_TOKEN=admin_token())
        running = start_running_workflow(
            processes, server.url, tmp_path_factory.mktemp("running"), f"prune-run-{stamp}", env
        )
        ids = [old.workflow_id, failed.workflow_id, guarded.workflow_id, running.workflow_id]
        for workflow_id in ids:
            assert workflow_id is not None
            age(url, workflow_id)
        # A finished workflow whose (latest) run a resume is bringing back to life; its
        # report-by time a day ahead, so the reaper leaves it live.
        (run_id,) = sql(
            url, "SELECT max(id) FROM workflow_run WHERE workflow_id = :w", w=guarded.workflow_id
        )[0]
        sql(
            url,
            "UPDATE workflow_run SET status = 'R', heartbeat_date = :d WHERE id = :r",
            d=dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(days=1),
            r=run_id,
        )
        dags = {
            workflow_id: int(
                sql(url, "SELECT dag_id FROM workflow WHERE id = :w", w=workflow_id)[0][0]
            )
            for workflow_id in [*ids, recent.workflow_id]
        }
        try:
            yield Setting(
                old=old.workflow_id or 0,
                failed=failed.workflow_id,
                recent=recent.workflow_id or 0,
                guarded=guarded.workflow_id or 0,
                running=running,
                dags=dags,
            )
        finally:
            with contextlib.suppress(ConflictError):
                stop_workflow(requester, running.workflow_id)
            with contextlib.suppress(subprocess.TimeoutExpired):
                running.process.wait(timeout=60)
            processes.stop(running.process)


def herdsman(executable: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERDSMAN_")}
    env.update(
        HERDSMAN_DATA_DIR=str(tmp_path / "data"),
        HERDSMAN_CONFIG_FILE=str(tmp_path / "config.yaml"),
    )
    done = subprocess.run([executable, *args], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"herdsman {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def test_prune_archives_and_removes_only_old_finished_workflows(
    setting: Setting, server: RunningServer, herdsman_executable: str, tmp_path: Path
) -> None:
    url = server.database_url
    before = {
        workflow_id: workflow_rows(url, workflow_id)
        for workflow_id in (
            setting.old,
            setting.failed,
            setting.recent,
            setting.guarded,
            setting.running.workflow_id,
        )
    }
    assert before[setting.old]["audit"] > 0 and before[setting.old]["task_attribute"] == 20
    assert before[setting.failed]["task_instance_error_log"] > 0
    edges = {
        dag: int(sql(url, "SELECT count(*) FROM edge WHERE dag_id = :d", d=dag)[0][0])
        for dag in set(setting.dags.values())
    }
    assert setting.dags[setting.old] == setting.dags[setting.recent]
    archives = tmp_path / "archives"
    common = ("server", "prune", "--database-url", url, "--older-than", "30")

    dry = herdsman(herdsman_executable, *common, "--dry-run", tmp_path=tmp_path).stdout
    assert f"workflow {setting.old}:" in dry and f"workflow {setting.failed}:" in dry
    for kept in (setting.recent, setting.guarded, setting.running.workflow_id):
        assert f"workflow {kept}:" not in dry
    assert "2 workflows" in dry
    assert workflow_rows(url, setting.old) == before[setting.old]

    # Small chunks, so that every table is emptied over several transactions.
    out = herdsman(
        herdsman_executable,
        *common,
        "--archive-dir",
        str(archives),
        "--chunk-size",
        "7",
        tmp_path=tmp_path,
    ).stdout
    assert "prune: 2 workflows removed" in out, out
    assert sorted(path.name for path in archives.iterdir()) == sorted(
        f"workflow-{i}.jsonl.gz" for i in (setting.old, setting.failed)
    )

    # Every row of the pruned workflows is gone ...
    for workflow_id in (setting.old, setting.failed):
        assert set(workflow_rows(url, workflow_id).values()) == {0}, workflow_id
    # ... the failed one's DAG too; the old one's DAG lives on for the recent workflow.
    failed_dag = setting.dags[setting.failed]
    assert sql(url, "SELECT count(*) FROM dag WHERE id = :d", d=failed_dag)[0][0] == 0
    assert sql(url, "SELECT count(*) FROM edge WHERE dag_id = :d", d=failed_dag)[0][0] == 0
    shared = setting.dags[setting.old]
    assert sql(url, "SELECT count(*) FROM edge WHERE dag_id = :d", d=shared)[0][0] == edges[shared]
    # What is recent, running, or held by a live run is untouched.
    for kept in (setting.recent, setting.guarded, setting.running.workflow_id):
        assert workflow_rows(url, kept) == before[kept], kept

    # The archives read back with the counts the database had.
    for workflow_id in (setting.old, setting.failed):
        path = archives / f"workflow-{workflow_id}.jsonl.gz"
        shown = json.loads(
            herdsman(
                herdsman_executable,
                "workflow",
                "show",
                "--archive",
                str(path),
                "--json",
                tmp_path=tmp_path,
            ).stdout
        )
        assert shown["summary"]["id"] == workflow_id
        assert shown["summary"]["tasks"] == before[workflow_id]["task"]
        for table, count in before[workflow_id].items():
            assert shown["rows"].get(table, 0) == count, table
        table = herdsman(
            herdsman_executable, "workflow", "show", "--archive", str(path), tmp_path=tmp_path
        ).stdout
        assert str(workflow_id) in table and "task_instance" in table
    summary = json.loads(
        herdsman(
            herdsman_executable,
            "workflow",
            "show",
            "--archive",
            str(archives / f"workflow-{setting.failed}.jsonl.gz"),
            "--json",
            tmp_path=tmp_path,
        ).stdout
    )["summary"]
    assert summary["status"] == "F" and summary["fatal"] >= 1 and summary["retries"] >= 1
    rows = list(iter_archive_rows(archives / f"workflow-{setting.old}.jsonl.gz"))
    assert {table for table, _ in rows} >= {"workflow", "task", "edge", "dag", "node_arg"}
    assert next(row for table, row in rows if table == "workflow")["id"] == setting.old

    # A second pass finds nothing more to do.
    again = herdsman(
        herdsman_executable, *common, "--archive-dir", str(archives), tmp_path=tmp_path
    ).stdout
    assert "prune: 0 workflows removed" in again

    # Trimming change feeds keeps the workflows, and the feeds of anything live.
    trimmed = herdsman(
        herdsman_executable,
        *common,
        "--no-archive",
        "--feeds-older-than",
        "0",
        tmp_path=tmp_path,
    ).stdout
    # The database is shared with other tests: theirs may be trimmed too.
    assert re.search(r"change feeds of \d+ workflows? trimmed", trimmed), trimmed
    assert workflow_rows(url, setting.recent) == {**before[setting.recent], "status_change": 0}
    for kept in (setting.guarded, setting.running.workflow_id):
        assert workflow_rows(url, kept) == before[kept], kept


def test_server_applies_retention_by_itself(
    fresh_database_url: str,
    processes: ProcessRegistry,
    tmp_path: Path,
) -> None:
    """With retention.enabled, a server archives and removes what ended long enough ago."""
    archives = tmp_path / "archives"
    process, info = start_server_process(
        processes,
        database_url=fresh_database_url,
        state_dir=tmp_path / "server",
        extra_env={
            "HERDSMAN_RETENTION__ENABLED": "true",
            "HERDSMAN_RETENTION__INTERVAL": "0.5",
            "HERDSMAN_RETENTION__OLDER_THAN_DAYS": "30",
            "HERDSMAN_RETENTION__ARCHIVE_DIR": str(archives),
        },
    )
    try:
        with Requester(info.url, token=admin_token(), timeout=60, retries=3) as requester:
            tool = Tool(f"retention-{time.time()}", requester=requester)
            tool.set_default_cluster_name("dummy")
            old = dummy_workflow(tool, "old", 5)
            recent = dummy_workflow(tool, "recent", 6)
        assert old.workflow_id is not None and recent.workflow_id is not None
        age(fresh_database_url, old.workflow_id)
        archive = archives / f"workflow-{old.workflow_id}.jsonl.gz"
        deadline = time.monotonic() + 120
        while workflow_rows(fresh_database_url, old.workflow_id)["workflow"]:
            assert time.monotonic() < deadline, "the server did not prune the old workflow"
            time.sleep(0.2)
        assert set(workflow_rows(fresh_database_url, old.workflow_id).values()) == {0}
        assert archive.exists()
        assert workflow_rows(fresh_database_url, recent.workflow_id)["task"] == 12
        assert not (archives / f"workflow-{recent.workflow_id}.jsonl.gz").exists()
    finally:
        processes.stop(process)
