"""Settings: explicit arguments > environment > config file > defaults, validated on load."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from herdsman.core.config import Settings, load_settings, normalize_database_url
from herdsman.core.errors import ConfigurationError


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.yaml"
    monkeypatch.setenv("HERDSMAN_CONFIG_FILE", str(path))
    return path


def test_defaults_apply_without_file_or_environment(config_file: Path) -> None:
    settings = Settings()
    assert settings.server_url is None
    assert settings.http.timeout == 120.0
    assert settings.bind.chunk_size == 10_000


def test_file_beats_defaults_and_environment_beats_file(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("http:\n  timeout: 30\n  retries: 2\nlog_level: INFO\n")
    assert (Settings().http.timeout, Settings().http.retries) == (30.0, 2)
    assert Settings().log_level == "info"
    monkeypatch.setenv("HERDSMAN_HTTP__TIMEOUT", "45")
    settings = Settings()
    assert (settings.http.timeout, settings.http.retries) == (45.0, 2)


def test_explicit_arguments_beat_everything(
    config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text("server_url: http://from-file:1\n")
    monkeypatch.setenv("HERDSMAN_SERVER_URL", "http://from-env:2")
    assert Settings().server_url == "http://from-env:2"
    assert Settings(server_url="http://explicit:3/").server_url == "http://explicit:3"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("mysql://u@h/db", "mysql+pymysql://u@h/db"),
        ("mariadb://u@h/db", "mysql+pymysql://u@h/db"),
        ("sqlite:////tmp/x.sqlite", "sqlite:////tmp/x.sqlite"),
    ],
)
def test_database_urls_get_the_supported_driver(given: str, expected: str) -> None:
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize("url", ["oracle://u@h/db", "not a url"])
def test_unsupported_database_urls_are_refused_with_the_url(url: str) -> None:
    with pytest.raises(ValueError, match=repr(url).strip("'")):
        normalize_database_url(url)


def test_a_bad_value_names_the_setting(config_file: Path) -> None:
    with pytest.raises(ValidationError, match="server_url"):
        Settings(server_url="ftp://nowhere")
    config_file.write_text("bind:\n  chunk_size: 0\n")
    with pytest.raises(ValidationError, match="chunk_size"):
        Settings()


def test_the_embedded_database_lives_in_the_data_dir(tmp_path: Path, config_file: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.resolved_database_url() == f"sqlite:///{tmp_path / 'data' / 'herdsman.sqlite'}"


def test_load_settings_names_the_config_file_key_when_no_variable_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("http:\n  retries: 0\n")
    monkeypatch.setenv("HERDSMAN_CONFIG_FILE", str(config_file))

    with pytest.raises(ConfigurationError) as raised:
        load_settings()

    assert f"http.retries (in {config_file} or the arguments)" in str(raised.value)
