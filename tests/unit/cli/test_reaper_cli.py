"""``herdsman server reaper``: options, the schema check, one pass, and a clean stop.

These use SQLite files in the test's directory and need no server. Reaping itself is tested
against real servers on every engine in ``tests/integration/test_reaper.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.unit.cli.conftest import run

from herdsman.core.config import ReaperSettings, Settings

STOP_TIMEOUT = 30.0


def test_once_on_an_idle_database_reaps_nothing(database_url: str) -> None:
    result = run("server", "reaper", "--once", "--database-url", database_url)

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "reaper: nothing to reap"


def test_once_uses_the_database_url_setting(database_url: str) -> None:
    result = run("server", "reaper", "--once", env={"HERDSMAN_DATABASE_URL": database_url})

    assert result.exit_code == 0, result.output
    assert "nothing to reap" in result.stdout


def test_a_database_without_the_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"

    result = run("server", "reaper", "--once", "--database-url", url)

    assert result.exit_code == 1
    assert "herdsman server db upgrade" in result.stderr
    assert "none (an empty database)" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("interval", ["0", "-1", "soon"])
def test_the_interval_must_be_a_positive_number(interval: str, database_url: str) -> None:
    result = run("server", "reaper", "--interval", interval, "--database-url", database_url)

    assert result.exit_code == 2
    assert "--interval" in result.stderr


def test_the_reaper_settings_have_defaults_and_read_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().reaper == ReaperSettings(enabled=True, interval=30.0)

    monkeypatch.setenv("HERDSMAN_REAPER__ENABLED", "false")
    monkeypatch.setenv("HERDSMAN_REAPER__INTERVAL", "2.5")

    assert Settings().reaper == ReaperSettings(enabled=False, interval=2.5)


def test_a_zero_interval_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERDSMAN_REAPER__INTERVAL", "0")

    result = run("server", "reaper", "--once")

    assert result.exit_code == 1
    assert "reaper.interval" in result.stderr


def test_the_loop_stops_cleanly_on_sigterm(
    database_url: str, herdsman_executable: str, tmp_path: Path
) -> None:
    out, err = tmp_path / "reaper.out", tmp_path / "reaper.err"
    command = [
        herdsman_executable,
        "server",
        "reaper",
        "--interval",
        "0.05",
        "--log-level",
        "debug",  # an idle pass is logged at debug
        "--database-url",
        database_url,
    ]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STOP_TIMEOUT
        # Passes have run once the loop logs one; then ask it to stop.
        while "reaper_pass" not in err.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, err.read_text()
            time.sleep(0.05)
        assert "reaper_pass" in err.read_text(), "no pass ran"
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=STOP_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    assert returncode == 0, err.read_text()
    assert "herdsman reaper on sqlite:///" in out.read_text()
    assert "reaper_stopped" in err.read_text()
