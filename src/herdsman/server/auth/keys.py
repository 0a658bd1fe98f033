"""The server's signing key: random bytes in a file only the server's owner can read.

Whoever reads the key can sign tokens for any user, so a key file that the group or others can
read is refused rather than used: the operator must fix its mode (``chmod 600``).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from herdsman.core.errors import ConfigurationError

__all__ = ["KEY_BYTES", "load_or_create_key"]

KEY_BYTES = 32


def load_or_create_key(path: Path) -> bytes:
    """The key stored in ``path``; a new random key is written there (mode 0600) if none is."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another server process wrote it first
        return _read_key(path)
    with os.fdopen(descriptor, "wb") as stream:
        stream.write(key.hex().encode())
    return key


def _read_key(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            f"the server's key file {path} can be read by other users (mode "
            f"{stat.filemode(mode)}); anyone who reads it can act as any user. "
            f"Run 'chmod 600 {path}' and start the server again"
        )
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < KEY_BYTES:
        raise ConfigurationError(
            f"the server's key file {path} does not hold a key of {KEY_BYTES} hex-encoded "
            "bytes; remove it to have a new one made (every token issued so far stops working)"
        )
    return key
