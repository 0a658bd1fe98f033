from __future__ import annotations

import os
from pathlib import Path

import pytest

from herdsman.core.errors import ConfigurationError
from herdsman.server.auth.keys import KEY_BYTES, load_or_create_key


def test_a_new_key_is_random_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "server.key"
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(path) == key
    assert load_or_create_key(tmp_path / "other.key") != key


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660])
def test_a_key_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "server.key"
    load_or_create_key(path)
    os.chmod(path, mode)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_or_create_key(path)


def test_a_damaged_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "server.key"
    path.write_text("not hex")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigurationError, match="remove it"):
        load_or_create_key(path)
