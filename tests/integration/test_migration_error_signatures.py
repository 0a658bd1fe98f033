"""Migration 0006 fills in what older rows lack: each error's workflow, signature and exit
class, and each attempt's request, the way the server records them now."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from tests.conftest import ProcessRegistry, start_server_process

from herdsman import Tool
from herdsman.core.error_signature import error_signature
from herdsman.core.requester import Requester
from herdsman.server.database.engine import make_database
from herdsman.server.database.migrate import alembic_config, upgrade

pytestmark = pytest.mark.integration

_COLUMNS = (
    "SELECT l.workflow_id, l.signature, l.exit_class, ti.requested_memory, "
    "ti.requested_runtime, ti.requested_cores FROM task_instance_error_log l "
    "JOIN task_instance ti ON ti.id = l.task_instance_id ORDER BY l.id"
)


def _rows(url: str) -> list[tuple[object, ...]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(_COLUMNS))]
    finally:
        engine.dispose()


def test_downgrade_and_upgrade_refill_signatures_and_requests(
    fresh_database_url: str, processes: ProcessRegistry, tmp_path: Path
) -> None:
    process, info = start_server_process(
        processes, database_url=fresh_database_url, state_dir=tmp_path / "server"
    )
    try:
        with Requester(info.url, timeout=60, retries=3) as requester:
            tool = Tool(f"migration-{time.time()}", requester=requester)
            tool.set_default_cluster_name("sequential")
            template = tool.get_task_template(
                "fail", "echo 'cannot read /data/{n}.csv' >&2; exit 4", node_args=["n"]
            )
            tasks = [
                template.create_task(
                    n=n,
                    max_attempts=1,
                    compute_resources={"memory": "256M", "runtime": 600, "cores": 2},
                )
                for n in (1, 2)
            ]
            workflow = tool.create_workflow(workflow_args=tool.name)
            workflow.add_tasks(tasks)
            assert workflow.run() == "E"
    finally:
        processes.stop(process)
    recorded = _rows(fresh_database_url)
    expected = error_signature("exit code 4", "cannot read /data/1.csv\n").digest
    assert recorded == [(workflow.workflow_id, expected, "command error", 256 << 20, 600.0, 2)] * 2

    database = make_database(fresh_database_url)
    try:
        config = alembic_config(fresh_database_url)
        with database.write_engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")
        upgrade(database)
    finally:
        database.dispose()

    assert _rows(fresh_database_url) == recorded
