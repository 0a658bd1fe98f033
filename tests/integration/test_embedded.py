"""The embedded default server: started on demand, reused, shared by racing clients, stoppable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from herdsman.client.embedded import (
    default_requester,
    embedded_server_status,
    ensure_server_url,
    probe_health,
    stop_embedded_server,
)
from herdsman.core.config import Settings
from herdsman.core.errors import ServerUnavailableError
from herdsman.core.schemas.client import HealthOut

# Starts (or reuses) the embedded server of the data_dir in HERDSMAN_DATA_DIR, prints its URL
# on a line of its own (log lines may come before it).
CLIENT_SCRIPT = textwrap.dedent(
    """
    from herdsman.client.embedded import ensure_server_url
    from herdsman.core.config import Settings
    print("URL", ensure_server_url(Settings()))
    """
)


def _server_processes(data_dir: Path) -> list[psutil.Process]:
    """Live (not zombie) server processes whose command line names ``data_dir``."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if (
            "herdsman.server" in cmdline
            and str(data_dir) in cmdline
            and process.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(process)
    return found


def _is_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _start_in_another_process() -> str:
    """Start the embedded server from a separate client process, as a user's script would."""
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return _printed_url(result.stdout)


def _printed_url(stdout: str) -> str:
    urls = [line.split(" ", 1)[1] for line in stdout.splitlines() if line.startswith("URL ")]
    assert len(urls) == 1, stdout
    return urls[0]


def _herdsman(executable: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [executable, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_ensure_server_url_starts_a_server_and_then_reuses_it(embedded_data_dir: Path) -> None:
    settings = Settings()
    assert settings.data_dir == embedded_data_dir
    assert embedded_server_status(settings) is None

    url = ensure_server_url(settings)

    status = embedded_server_status(settings)
    assert status is not None
    assert status.running
    assert status.url == url
    assert url.startswith("http://127.0.0.1:")
    assert status.database_url == settings.resolved_database_url()
    health = probe_health(url)
    assert health is not None
    assert health.database == "sqlite"
    assert (embedded_data_dir / "herdsman.sqlite").is_file()
    assert (embedded_data_dir / "server.log").is_file()
    saved = json.loads((embedded_data_dir / "server.json").read_text())
    assert saved["pid"] == status.pid
    assert {"url", "pid", "database_url", "started"} <= set(saved)

    again = ensure_server_url(Settings())

    assert again == url
    second = embedded_server_status(settings)
    assert second is not None
    assert second.pid == status.pid
    assert [p.pid for p in _server_processes(embedded_data_dir)] == [status.pid]


def test_configured_server_url_is_used_as_is(embedded_data_dir: Path) -> None:
    settings = Settings(server_url="http://herdsman.example.org:8080/")

    assert ensure_server_url(settings) == "http://herdsman.example.org:8080"
    assert not (embedded_data_dir / "server.json").exists()
    assert _server_processes(embedded_data_dir) == []


def test_two_clients_starting_at_once_share_one_server(embedded_data_dir: Path) -> None:
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT_SCRIPT],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = []
    try:
        for client in clients:
            stdout, stderr = client.communicate(timeout=120)
            assert client.returncode == 0, stderr
            outputs.append(_printed_url(stdout))
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.wait()

    assert outputs[0] == outputs[1]
    assert outputs[0].startswith("http://127.0.0.1:")
    servers = _server_processes(embedded_data_dir)
    assert len(servers) == 1, [p.cmdline() for p in servers]


def test_stale_server_file_is_replaced_by_a_new_server(embedded_data_dir: Path) -> None:
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(finished.stdout)
    embedded_data_dir.mkdir(parents=True)
    stale = {"url": "http://127.0.0.1:9", "pid": dead_pid, "database_url": "x", "started": ""}
    (embedded_data_dir / "server.json").write_text(json.dumps(stale))

    url = ensure_server_url(Settings())

    status = embedded_server_status(Settings())
    assert status is not None
    assert status.running
    assert status.url == url != stale["url"]
    assert status.pid != dead_pid


def test_server_that_dies_at_start_reports_its_log(
    embedded_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERDSMAN_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/nothing")

    with pytest.raises(ServerUnavailableError) as raised:
        ensure_server_url(Settings())

    message = str(raised.value)
    assert "exited" in message
    assert "server.log" in message
    assert "OperationalError" in message  # from the log's last lines
    assert _server_processes(embedded_data_dir) == []
    assert not (embedded_data_dir / "server.json").exists()


def test_default_requester_talks_to_the_embedded_server(embedded_data_dir: Path) -> None:
    with default_requester() as requester:
        health = requester.get("/health", HealthOut)

    assert health.database == "sqlite"
    assert len(_server_processes(embedded_data_dir)) == 1


def test_stop_without_a_server_is_false(embedded_data_dir: Path) -> None:
    assert stop_embedded_server(Settings()) is False


def test_cli_status_and_stop(embedded_data_dir: Path, herdsman_executable: str) -> None:
    url = _start_in_another_process()
    status = embedded_server_status(Settings())
    assert status is not None
    assert status.running

    shown = _herdsman(herdsman_executable, "server", "status")

    assert shown.returncode == 0, shown.stderr
    assert url in shown.stdout
    assert str(status.pid) in shown.stdout
    assert "running: yes" in shown.stdout

    stopped = _herdsman(herdsman_executable, "server", "stop")

    assert stopped.returncode == 0, stopped.stderr
    assert "stopped" in stopped.stdout
    assert _is_gone(status.pid)
    assert _server_processes(embedded_data_dir) == []
    assert not (embedded_data_dir / "server.json").exists()
    assert probe_health(url) is None

    after = _herdsman(herdsman_executable, "server", "status")

    assert after.returncode == 1
    assert "no embedded server" in after.stdout


def _start_with_stderr() -> tuple[str, str]:
    result = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return _printed_url(result.stdout), result.stderr


def test_the_first_start_says_where_the_server_runs_and_how_to_stop_it_once(
    embedded_data_dir: Path, herdsman_executable: str
) -> None:
    url, said = _start_with_stderr()
    assert f"herdsman: started a local server at {url}" in said
    assert str(embedded_data_dir) in said and "`herdsman server stop`" in said

    _, again = _start_with_stderr()  # reused: nothing to say
    assert "started a local server" not in again

    assert _herdsman(herdsman_executable, "server", "stop").returncode == 0
    _, restarted = _start_with_stderr()  # a later start in the same data_dir: said once already
    assert "started a local server" not in restarted


def test_a_killed_embedded_server_is_started_again_on_the_same_port_and_database(
    embedded_data_dir: Path,
) -> None:
    from herdsman import Tool

    with default_requester() as requester:
        tool_id = Tool("survivor", requester=requester).id
        before = embedded_server_status(Settings())
        assert before is not None
        psutil.Process(before.pid).kill()
        psutil.Process(before.pid).wait(timeout=10)

        assert Tool("survivor", requester=requester).id == tool_id  # same database

        after = embedded_server_status(Settings())
    assert after is not None and after.running
    assert after.pid != before.pid
    assert after.url == before.url == requester.base_url  # same port: every process finds it
    assert [p.pid for p in _server_processes(embedded_data_dir)] == [after.pid]


def test_status_says_where_the_data_is_and_the_version_whether_or_not_a_server_runs(
    embedded_data_dir: Path, herdsman_executable: str
) -> None:
    never = _herdsman(herdsman_executable, "server", "status")
    assert never.returncode == 1
    assert "no embedded server is running" in never.stdout
    assert f"data_dir: {embedded_data_dir}" in never.stdout
    assert "herdsman: 0.1.0 (this client)" in never.stdout

    url = _start_in_another_process()
    running = _herdsman(herdsman_executable, "server", "status")
    assert running.returncode == 0
    assert f"embedded server: {url}" in running.stdout
    assert "running: yes (herdsman 0.1.0 on sqlite)" in running.stdout
    assert f"log: {embedded_data_dir / 'server.log'}" in running.stdout

    assert _herdsman(herdsman_executable, "server", "stop").returncode == 0
    stopped = _herdsman(herdsman_executable, "server", "status")
    assert stopped.returncode == 1
    assert "no embedded server is running" in stopped.stdout
    assert f"database: sqlite:///{embedded_data_dir / 'herdsman.sqlite'}" in stopped.stdout
