"""A throw-away embedded herdsman server for benchmarks: a fresh data directory, its peak RSS.

The server is started exactly the way a user's first client starts it (the embedded default,
SQLite in the data directory), so the figures are those of the zero-set-up path.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from herdsman.client.embedded import (
    embedded_server_status,
    ensure_server,
    stop_embedded_server,
)
from herdsman.core.config import Settings

__all__ = ["BenchServer", "bench_server", "peak_rss_mib"]


@dataclass(frozen=True)
class BenchServer:
    url: str
    token: str | None
    pid: int
    database_url: str

    def environment(self) -> dict[str, str]:
        """Settings for a benchmark's child process: this server, with its owner's token."""
        token = {"HERDSMAN_TOKEN": self.token} if self.token is not None else {}
        return {"HERDSMAN_SERVER_URL": self.url, **token}

    def peak_rss_mib(self) -> float:
        return peak_rss_mib(self.pid)


def peak_rss_mib(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


@contextmanager
def bench_server(database_url: str | None = None) -> Iterator[BenchServer]:
    """The embedded server of a new, temporary data directory; stopped afterwards.

    ``database_url``: the database it serves (None: SQLite in the data directory)."""
    with tempfile.TemporaryDirectory(prefix="herdsman-bench-") as tmp:
        settings = Settings(data_dir=Path(tmp), server_url=None, database_url=database_url)
        address = ensure_server(settings)
        status = embedded_server_status(settings)
        if status is None:
            raise RuntimeError(f"the embedded server in {tmp} did not record itself")
        try:
            yield BenchServer(
                url=address.url,
                token=address.token,
                pid=status.pid,
                database_url=settings.resolved_database_url(),
            )
        finally:
            stop_embedded_server(settings)
