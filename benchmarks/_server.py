"""A throw-away herdsman server for benchmarks: a fresh database, a free port, its peak RSS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BenchServer", "bench_server", "peak_rss_mib"]


@dataclass(frozen=True)
class BenchServer:
    url: str
    pid: int

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
    """A server on ``database_url`` (default: SQLite in a temporary directory)."""
    with tempfile.TemporaryDirectory(prefix="herdsman-bench-") as tmp:
        url = database_url or f"sqlite:///{tmp}/herdsman.sqlite"
        ready = Path(tmp) / "ready.json"
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "herdsman.server",
                "--port",
                "0",
                "--database-url",
                url,
                "--ready-file",
                str(ready),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(Path(tmp) / "server.log", "wb"),  # noqa: SIM115
        )
        try:
            deadline = time.monotonic() + 60
            while not ready.exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    log = (Path(tmp) / "server.log").read_text()[-2000:]
                    raise RuntimeError(f"benchmark server did not start:\n{log}")
                time.sleep(0.05)
            yield BenchServer(url=json.loads(ready.read_text())["url"], pid=process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            os.environ.pop("HERDSMAN_SERVER_URL", None)
