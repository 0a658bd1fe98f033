"""The ready file a server writes once it accepts connections: its URL, pid and database.

Apart from the runner so that clients reading it (the embedded-server logic, the ``herdsman``
command) do not import the server's web stack: every command would otherwise start slower.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ServerInfo", "read_ready_file", "write_ready_file"]


@dataclass(frozen=True)
class ServerInfo:
    """What a running server announces in its ready file."""

    url: str
    pid: int
    database_url: str
    started: str  # ISO 8601, UTC
    token: str = ""  # the owner's bearer token, for an embedded server


def write_ready_file(path: Path, info: ServerInfo) -> None:
    """Write ``info`` as JSON to ``path`` atomically: readers see no file or the whole file.

    The file carries the owner's token and may carry a database password, so only its owner
    can read it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(dataclasses.asdict(info), stream)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_ready_file(path: Path) -> ServerInfo | None:
    """The announcement in ``path``, or None when there is none or it cannot be understood."""
    try:
        data = json.loads(path.read_text())
        info = ServerInfo(
            url=data["url"],
            pid=data["pid"],
            database_url=data["database_url"],
            started=data.get("started", ""),
            token=data.get("token", ""),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(info.url, str) or not isinstance(info.pid, int):
        return None
    return info
