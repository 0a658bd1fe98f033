"""What the CLI tests share: invoking ``herdsman`` in process, and a database with the schema."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from herdsman.cli.main import cli


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """``herdsman ARGS...`` in this process, with this environment plus ``env``."""
    return CliRunner().invoke(cli, list(args), env={**os.environ, **(env or {})})


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """A SQLite database with the current schema (``herdsman server db upgrade``)."""
    url = f"sqlite:///{tmp_path / 'herdsman.sqlite'}"
    result = run("server", "db", "upgrade", "--database-url", url)
    assert result.exit_code == 0, result.output
    return url
