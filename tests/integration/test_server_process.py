"""A real server process on each engine: start-up, health, API surface, errors, migrations."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import create_engine, inspect, text
from tests.support.tokens import bearer

from herdsman.core.errors import InvalidInputError, NotFoundError
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import ClusterOut, DagOut, HealthOut, IdOut
from herdsman.server.runner import ServerInfo, read_ready_file

if TYPE_CHECKING:
    from tests.conftest import ProcessRegistry, RunningServer

# SQLAlchemy calls MariaDB's dialect "mysql", which is what the health route reports.
DIALECT_OF_ENGINE = {"sqlite": "sqlite", "postgresql": "postgresql", "mariadb": "mysql"}
LOCAL_CLUSTERS = ("sequential", "multiprocess", "dummy")
SEEDED_CLUSTERS = (*LOCAL_CLUSTERS, "slurm")


def test_health_names_the_engine(server: RunningServer, requester: Requester) -> None:
    health = requester.get("/health", HealthOut)

    assert health.status == "ok"
    assert health.database == DIALECT_OF_ENGINE[server.engine]


def test_openapi_lists_the_routes(server: RunningServer) -> None:
    response = httpx.get(f"{server.url}/api/v1/openapi.json", timeout=30)

    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/v1/health",
        "/api/v1/clusters/{name}",
        "/api/v1/tools",
        "/api/v1/nodes",
        "/api/v1/workflows",
        "/api/v1/workflows/{workflow_id}/tasks",
        "/api/v1/tasks/{task_id}",
    ):
        assert path in paths


@pytest.mark.parametrize("name", LOCAL_CLUSTERS)
def test_local_clusters_are_seeded_with_a_default_queue(requester: Requester, name: str) -> None:
    cluster = requester.get(f"/clusters/{name}", ClusterOut)

    assert cluster.name == name
    assert cluster.plugin == name
    assert [queue.is_default for queue in cluster.queues] == [True]


def test_unknown_cluster_is_404_listing_known_clusters(
    server: RunningServer, requester: Requester
) -> None:
    response = httpx.get(
        f"{server.url}/api/v1/clusters/no-such-cluster", headers=bearer(), timeout=30
    )

    assert response.status_code == 404
    body = response.json()
    assert body["error"] == "NotFoundError"
    for name in LOCAL_CLUSTERS:
        assert name in body["message"]
    with pytest.raises(NotFoundError, match="no-such-cluster"):
        requester.get("/clusters/no-such-cluster", ClusterOut)


# (path, body, the field the answer must name); all PUT. Kept to the smallest bind routes,
# whose schemas are the most stable.
MALFORMED_REQUESTS: dict[str, tuple[str, Any, str]] = {
    "bad hash": ("/dags", {"hash": "NOT-A-HASH"}, "hash"),
    "short hash": ("/dags", {"hash": "ab" * 31}, "hash"),
    "missing field": ("/task_templates", {"name": "t"}, "tool_version_id"),
    "wrong type": ("/task_templates", {"tool_version_id": "one", "name": "t"}, "tool_version_id"),
    "unknown field": ("/tools", {"name": "t", "colour": "red"}, "colour"),
    "empty name": ("/tools", {"name": ""}, "name"),
}


@pytest.mark.parametrize("case", list(MALFORMED_REQUESTS))
def test_malformed_request_is_422_naming_the_field(server: RunningServer, case: str) -> None:
    path, body, field = MALFORMED_REQUESTS[case]

    response = httpx.put(f"{server.url}/api/v1{path}", json=body, headers=bearer(), timeout=30)

    assert response.status_code == 422, response.text
    answer = response.json()
    assert answer["error"] == "InvalidInputError"
    assert field in answer["message"]
    assert field in answer["details"]["fields"]


@pytest.mark.parametrize("path", ["/nodes", "/dags", "/tools", "/workflows"])
def test_body_that_is_not_json_is_422(server: RunningServer, path: str) -> None:
    response = httpx.put(
        f"{server.url}/api/v1{path}",
        content=b"{not json",
        headers={"content-type": "application/json", **bearer()},
        timeout=30,
    )

    assert response.status_code == 422, response.text
    assert response.json()["error"] == "InvalidInputError"


def test_requester_raises_invalid_input_for_a_bad_hash(requester: Requester) -> None:
    with pytest.raises(InvalidInputError, match="hash"):
        requester.put("/dags", {"hash": "XYZ"}, DagOut)


def test_reference_to_a_missing_row_is_404_not_500(requester: Requester) -> None:
    body = {"tool_version_id": 987_654, "name": "orphan"}
    with pytest.raises(NotFoundError, match="tool_version_id"):
        requester.put("/task_templates", body, IdOut)


def _schema_snapshot(database_url: str) -> tuple[list[str], list[str], int]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            tables = sorted(inspect(connection).get_table_names())
            versions = list(
                connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
            )
            clusters = connection.execute(text("SELECT COUNT(*) FROM cluster")).scalar_one()
    finally:
        engine.dispose()
    return tables, versions, clusters


def _herdsman(executable: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [executable, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_db_upgrade_twice_is_a_no_op(fresh_database_url: str, herdsman_executable: str) -> None:
    first = _herdsman(
        herdsman_executable, "server", "db", "upgrade", "--database-url", fresh_database_url
    )
    assert first.returncode == 0, first.stderr
    after_first = _schema_snapshot(fresh_database_url)

    second = _herdsman(
        herdsman_executable, "server", "db", "upgrade", "--database-url", fresh_database_url
    )

    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    assert _schema_snapshot(fresh_database_url) == after_first
    tables, versions, clusters = after_first
    assert {"workflow", "task", "task_instance", "cluster"} <= set(tables)
    assert len(versions) == 1
    assert clusters == len(SEEDED_CLUSTERS)


def test_db_upgrade_while_the_server_runs(
    server: RunningServer, requester: Requester, herdsman_executable: str
) -> None:
    before = _schema_snapshot(server.database_url)

    result = _herdsman(
        herdsman_executable, "server", "db", "upgrade", "--database-url", server.database_url
    )

    assert result.returncode == 0, result.stderr
    assert _schema_snapshot(server.database_url) == before
    assert requester.get("/health", HealthOut).status == "ok"


def test_cli_status_checks_a_configured_server(
    server: RunningServer, herdsman_executable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERDSMAN_SERVER_URL", server.url)

    result = _herdsman(herdsman_executable, "server", "status")

    assert result.returncode == 0, result.stderr
    assert server.url in result.stdout
    assert DIALECT_OF_ENGINE[server.engine] in result.stdout


# --- not per engine: the process itself --------------------------------------------------


def test_cli_status_reports_an_unreachable_configured_server(
    herdsman_executable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERDSMAN_SERVER_URL", "http://127.0.0.1:9")

    result = _herdsman(herdsman_executable, "server", "status")

    assert result.returncode == 1
    assert "does not answer" in result.stdout


def test_server_start_prints_its_url_and_stops_on_sigterm(
    tmp_path: Path, processes: ProcessRegistry, herdsman_executable: str
) -> None:
    ready_file = tmp_path / "ready.json"
    database_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    process = processes.spawn(
        [
            herdsman_executable,
            "server",
            "start",
            "--port",
            "0",
            "--database-url",
            database_url,
            "--ready-file",
            str(ready_file),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        info = _wait_for_ready_file(ready_file, process)
        assert info.pid == process.pid
        assert info.database_url == database_url
        health = httpx.get(f"{info.url}/api/v1/health", timeout=30)
        assert health.json()["database"] == "sqlite"

        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        processes.stop(process)

    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert f"listening on {info.url}" in stdout.decode()
    assert f"web GUI: {info.url}/ " in stdout.decode()
    assert not ready_file.exists(), "a stopped server must remove its ready file"


def test_server_that_cannot_reach_its_database_exits_without_ready_file(tmp_path: Path) -> None:
    ready_file = tmp_path / "ready.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "herdsman.server",
            "--port",
            "0",
            "--database-url",
            "postgresql://nobody@127.0.0.1:9/nothing",
            "--ready-file",
            str(ready_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode != 0
    assert "OperationalError" in result.stderr
    assert not ready_file.exists()


def _wait_for_ready_file(path: Path, process: subprocess.Popen[bytes]) -> ServerInfo:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1].decode()
        info = read_ready_file(path)
        if info is not None:
            return info
        time.sleep(0.05)
    pytest.fail("the server wrote no ready file within 60 s")
