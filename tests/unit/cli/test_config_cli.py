"""``herdsman config show/set/unset`` and the CLI's error reporting, through click's runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from click.testing import Result
from tests.unit.cli.conftest import run

from herdsman import __version__
from herdsman.cli.config import known_keys
from herdsman.core.config import config_file_path
from herdsman.core.errors import ConfigurationError


def shown_settings(result: Result) -> dict[str, object]:
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(result.stdout)
    assert isinstance(data, dict)
    return data


@pytest.fixture
def config_file() -> Path:
    """The config file the isolated settings point at (it does not exist yet)."""
    path = config_file_path()
    assert not path.exists()
    return path


def test_show_prints_defaults_and_the_config_file(config_file: Path) -> None:
    result = run("config", "show")

    settings = shown_settings(result)
    assert result.stdout.startswith(f"# config file: {config_file} (not found")
    assert settings["server_url"] is None
    assert settings["http"] == {"timeout": 120.0, "retries": 5, "ca_bundle": None}
    assert settings["token"] == "**********"  # set by the test fixtures, never shown
    assert settings["server"] == {
        "host": "127.0.0.1",
        "port": 0,
        "workers": 1,
        "feed_recheck_seconds": 0.25,
        "pool_size": 10,
        "pool_overflow": 20,
        "max_active_runs_per_user": 0,
        "requests_per_second_per_user": 0.0,
        "request_burst": 100,
        "timing_dir": None,
    }
    assert settings["log_level"] == "warning"
    assert settings["data_dir"] == os.environ["HERDSMAN_DATA_DIR"]


def test_set_writes_a_nested_key_and_show_reflects_it(config_file: Path) -> None:
    result = run("config", "set", "http.timeout", "30")

    assert result.exit_code == 0, result.output
    assert yaml.safe_load(config_file.read_text()) == {"http": {"timeout": 30}}
    settings = shown_settings(run("config", "show"))
    assert settings["http"] == {"timeout": 30.0, "retries": 5, "ca_bundle": None}
    assert f"# config file: {config_file}\n" in run("config", "show").stdout


def test_set_keeps_other_keys(config_file: Path) -> None:
    assert run("config", "set", "http.retries", "2").exit_code == 0
    assert run("config", "set", "server_url", "http://herdsman.example.org:9000/").exit_code == 0
    assert run("config", "set", "http.timeout", "7.5").exit_code == 0

    assert yaml.safe_load(config_file.read_text()) == {
        "http": {"retries": 2, "timeout": 7.5},
        "server_url": "http://herdsman.example.org:9000/",
    }
    settings = shown_settings(run("config", "show"))
    assert settings["server_url"] == "http://herdsman.example.org:9000"


def test_set_refuses_an_unknown_key(config_file: Path) -> None:
    result = run("config", "set", "http.timout", "30")

    assert result.exit_code == 1
    assert "unknown setting 'http.timout'" in result.stderr
    assert "http.timeout" in result.stderr  # the known keys are listed
    assert "Traceback" not in result.output
    assert not config_file.exists()


@pytest.mark.parametrize(
    ("key", "value", "complaint"),
    [
        ("http.timeout", "-1", "http.timeout"),
        ("http.retries", "many", "http.retries"),
        ("server_url", "ftp://nowhere", "server_url"),
        ("database_url", "oracle://db", "unsupported engine"),
        ("log_level", "loud", "log_level"),
        ("server.port", "70000", "server.port"),
    ],
)
def test_set_refuses_an_invalid_value_and_leaves_the_file(
    config_file: Path, key: str, value: str, complaint: str
) -> None:
    assert run("config", "set", "http.retries", "2").exit_code == 0
    before = config_file.read_text()

    result = run("config", "set", "--", key, value)  # "--": values may start with "-"

    assert result.exit_code == 1
    assert complaint in result.stderr
    assert "hint:" in result.stderr
    assert config_file.read_text() == before


def test_set_accepts_text_that_looks_like_another_type(config_file: Path) -> None:
    result = run("config", "set", "server.host", "2024")

    assert result.exit_code == 0, result.output
    assert yaml.safe_load(config_file.read_text()) == {"server": {"host": "2024"}}
    assert shown_settings(run("config", "show"))["server"]["host"] == "2024"


def test_set_notes_an_overriding_environment_variable(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERDSMAN_HTTP__TIMEOUT", "9")

    result = run("config", "set", "http.timeout", "30")

    assert result.exit_code == 0
    assert "HERDSMAN_HTTP__TIMEOUT overrides" in result.stdout
    assert shown_settings(run("config", "show"))["http"] == {
        "timeout": 9.0,
        "retries": 5,
        "ca_bundle": None,
    }


def test_unset_removes_a_key(config_file: Path) -> None:
    assert run("config", "set", "http.timeout", "30").exit_code == 0
    assert run("config", "set", "log_level", "info").exit_code == 0

    assert run("config", "unset", "http.timeout").exit_code == 0

    assert yaml.safe_load(config_file.read_text()) == {"http": {}, "log_level": "info"}
    assert "is not set" in run("config", "unset", "http.timeout").stdout


def test_known_keys_are_dotted() -> None:
    keys = known_keys()

    assert {"server_url", "database_url", "data_dir", "log_level"} <= set(keys)
    assert {"server.host", "server.port", "http.timeout", "http.retries"} <= set(keys)
    assert "http" not in keys


def test_a_broken_config_file_is_one_line_error(config_file: Path) -> None:
    config_file.write_text("http: [unclosed\n")

    result = run("config", "show")

    assert result.exit_code == 1
    assert "error:" in result.stderr
    assert "Traceback" not in result.output


def test_debug_shows_the_exception(config_file: Path) -> None:
    result = run("--debug", "config", "set", "no.such.key", "1")

    assert result.exit_code == 1
    assert isinstance(result.exception, ConfigurationError)


def test_a_bad_database_url_option_is_a_usage_error() -> None:
    result = run("server", "db", "upgrade", "--database-url", "not-a-url")

    assert result.exit_code == 2
    assert "is not a URL" in result.stderr


def test_version() -> None:
    result = run("--version")

    assert result.exit_code == 0
    assert __version__ in result.stdout
