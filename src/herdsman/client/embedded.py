"""The embedded default server: zero set-up on a laptop.

When no ``server_url`` is configured, clients share one local server process bound to
127.0.0.1 and serving SQLite in the user's data directory. Its state lives in ``data_dir``:

``server.json``  the running server's ready file (url, pid, database_url, started, and the
                 owner's token), written by the server itself once it accepts connections
                 (:mod:`herdsman.server.runner`); only its owner can read it
``server.key``   the server's signing key (mode 0600)
``server.log``   the server's stdout and stderr, appended across starts
``server.lock``  serialises starting and stopping

Every decision to reuse, start or stop the server is made while holding the exclusive lock,
so two clients starting at the same moment end up with one server: the second waits for the
lock, then finds the first one's healthy server and reuses it. A server counts as running only
when its process is alive *and* its health route answers; a stale ``server.json`` (a crash, a
reboot, a reused pid) is replaced by a fresh start.

The server is started in its own session so it outlives the client that started it (later
clients reuse it) and is not hit by a Ctrl-C meant for the client.

Binding to 127.0.0.1 does not keep the other users of a shared login node out; the token does.
Every request carries the owner's token from ``server.json``, which no other user can read, so
the server refuses everyone else (see docs/security.md).
clients reuse it) and is not hit by a Ctrl-C meant for the client. The first start in a data
directory says so on stderr, with where the server runs and how to stop it.

If the server dies while a run is in progress, the run's requests find it gone: the requester
of :func:`default_requester` (and of a distributor started by that run) then calls
:class:`EmbeddedRecovery`, which starts it again -- on the same port when it is free, so that
every process of the run finds it at the URL it knows -- on the same database. Requests are
idempotent, so the run carries on where it was; only one of the processes that noticed starts
the server (the lock), the others find it running.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import filelock
import httpx
import psutil
import pydantic
import structlog

from herdsman.core.config import Settings, load_settings
from herdsman.core.errors import ServerUnavailableError
from herdsman.core.ready_file import ServerInfo, read_ready_file
from herdsman.core.requester import Requester
from herdsman.core.schemas import API_PREFIX
from herdsman.core.schemas.client import HealthOut

__all__ = [
    "EmbeddedRecovery",
    "EmbeddedServerStatus",
    "ServerAddress",
    "default_requester",
    "embedded_server_status",
    "ensure_server",
    "ensure_server_url",
    "probe_health",
    "stop_embedded_server",
]

logger = structlog.get_logger(__name__)

SERVER_FILE = "server.json"
LOG_FILE = "server.log"
LOCK_FILE = "server.lock"
LOCK_TIMEOUT_SECONDS = 60.0
START_TIMEOUT_SECONDS = 60.0
LOG_TAIL_LINES = 20
_POLL_SECONDS = 0.05

# Servers this process started. Keeping the Popen objects lets us reap them once they exit
# (no zombies in a long-lived client) and keeps Python from warning that they still run when
# an object is garbage-collected.
_children: list[subprocess.Popen[bytes]] = []


@dataclass(frozen=True)
class EmbeddedServerStatus:
    """What ``server.json`` says, and whether that server really answers."""

    url: str
    pid: int
    database_url: str
    running: bool
    started: str = ""  # ISO 8601, UTC


@dataclass(frozen=True)
class ServerAddress:
    """Where the server is and the token to send it (None: no token is configured)."""

    url: str
    token: str | None


def ensure_server(settings: Settings) -> ServerAddress:
    """The server to use: the configured one with the user's token, else the embedded one
    with its owner's token.

    Starts the embedded server when none runs (or the running one serves another database
    than ``settings.resolved_database_url()``), and waits until it answers.

    Raises :class:`ServerUnavailableError` when the server cannot be started, with the end of
    its log in the message, or when another client holds the lock for over a minute.
    """
    if settings.server_url:
        return ServerAddress(settings.server_url, settings.resolved_token())
    database_url = settings.resolved_database_url()
    paths = _Paths(settings.data_dir)
    with _locked(paths):
        info = read_ready_file(paths.server_file)
        if info is not None and _is_running(info):
            if info.database_url == database_url:
                logger.debug("embedded_server_reused", url=info.url, pid=info.pid)
                return ServerAddress(info.url, info.token)
            # The user changed database_url; a server on the old database would mislead.
            logger.info("embedded_server_replaced", pid=info.pid)
            _terminate(info.pid, timeout=10.0)
        started = _start(paths, database_url, settings.log_level)
        return ServerAddress(started.url, started.token)


def ensure_server_url(settings: Settings) -> str:
    """The URL of the server to use (see :func:`ensure_server`)."""
    return ensure_server(settings).url


def embedded_server_status(settings: Settings) -> EmbeddedServerStatus | None:
    """The embedded server of ``settings.data_dir``, or None if none was started."""
    _reap_children()
    info = read_ready_file(_Paths(settings.data_dir).server_file)
    if info is None:
        return None
    return EmbeddedServerStatus(
        info.url, info.pid, info.database_url, _is_running(info), info.started
    )


def embedded_log_file(settings: Settings) -> Path:
    """The embedded server's log (its output, appended across starts)."""
    return _Paths(settings.data_dir).log_file


def stop_embedded_server(settings: Settings, timeout: float = 10.0) -> bool:
    """Stop the embedded server: SIGTERM, then SIGKILL after ``timeout`` seconds.

    Returns whether a server process was stopped. ``server.json`` is removed either way, so a
    stale file cannot outlive this call.
    """
    paths = _Paths(settings.data_dir)
    with _locked(paths):
        info = read_ready_file(paths.server_file)
        if info is None:
            return False
        stopped = _terminate(info.pid, timeout=timeout)
        paths.server_file.unlink(missing_ok=True)
    logger.info("embedded_server_stopped", pid=info.pid, was_running=stopped)
    return stopped


def default_requester(settings: Settings | None = None) -> Requester:
    """A requester for the configured server, starting the embedded one when none is set.

    For the embedded server the requester also restarts it should it die (see the module
    docstring); a configured server is the operator's to restart.
    """
    settings = settings if settings is not None else load_settings()
    recover = None if settings.server_url else EmbeddedRecovery(settings)
    address = ensure_server(settings)
    return Requester(
        address.url,
        token=address.token,
        timeout=settings.http.timeout,
        retries=settings.http.retries,
        ca_bundle=settings.http.ca_bundle,
        recover=recover,
    )


class EmbeddedRecovery:
    """A requester's ``recover``: start the embedded server again on the same database.

    Called with the URL that stopped answering. Under the lock it first looks whether another
    process has restarted the server already; if not, it starts one on the same port (so that
    the run's other processes, which know that URL, find it) or, if the port was taken in the
    meantime, on a new one. Returns the URL the server answers at.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def environment(self) -> dict[str, str]:
        """Variables that make a child process's settings name this embedded server."""
        variables = {"HERDSMAN_DATA_DIR": str(self.settings.data_dir)}
        if self.settings.database_url:
            variables["HERDSMAN_DATABASE_URL"] = self.settings.database_url
        return variables

    def __call__(self, dead_url: str) -> str:
        settings = self.settings
        paths = _Paths(settings.data_dir)
        database_url = settings.resolved_database_url()
        with _locked(paths):
            info = read_ready_file(paths.server_file)
            if info is not None and _process(info.pid) is not None:
                # Restarted by another process of the run, or alive but slow to answer (a busy
                # database): a live server is never replaced here, only a dead one.
                logger.info("embedded_server_alive", url=info.url, pid=info.pid)
                return info.url
            port = urlsplit(dead_url).port or 0
            started = _start(paths, database_url, settings.log_level, port=port)
        logger.warning("embedded_server_restarted", url=started.url, pid=started.pid)
        return started.url


def probe_health(url: str, timeout: float = 2.0) -> HealthOut | None:
    """The server's health answer, or None when nothing (or something else) answers at ``url``.

    One attempt, no retries: callers use this to decide whether a server runs, not to wait.
    """
    try:
        response = httpx.get(f"{url.rstrip('/')}{API_PREFIX}/health", timeout=timeout)
        response.raise_for_status()
        return HealthOut.model_validate_json(response.content)
    except (httpx.HTTPError, pydantic.ValidationError):
        return None


@dataclass(frozen=True)
class _Paths:
    data_dir: Path

    @property
    def server_file(self) -> Path:
        return self.data_dir / SERVER_FILE

    @property
    def log_file(self) -> Path:
        return self.data_dir / LOG_FILE

    @property
    def lock_file(self) -> Path:
        return self.data_dir / LOCK_FILE


@contextmanager
def _locked(paths: _Paths) -> Iterator[None]:
    paths.data_dir.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(paths.lock_file, timeout=LOCK_TIMEOUT_SECONDS)
    try:
        lock.acquire()
    except filelock.Timeout as error:
        raise ServerUnavailableError(
            f"another herdsman process has held {paths.lock_file} for over "
            f"{LOCK_TIMEOUT_SECONDS:.0f} s while starting or stopping the embedded server; "
            "if none is running, delete the file and try again",
            details={"lock_file": str(paths.lock_file)},
        ) from error
    try:
        yield
    finally:
        lock.release()


def _start(paths: _Paths, database_url: str, log_level: str, port: int = 0) -> ServerInfo:
    """Launch a server process and wait until it has announced itself and answers.

    ``port`` 0 picks a free port. A server that cannot have the port it was asked for (taken
    by another program since) is started again on a free one.
    """
    first = not paths.log_file.exists()
    try:
        info = _launch(paths, database_url, log_level, port)
    except _PortTaken:
        info = _launch(paths, database_url, log_level, 0)
    if first:
        _announce_first_start(info, paths)
    return info


class _PortTaken(Exception):
    """The server exited at start on a fixed port: most likely someone else has the port."""


def _announce_first_start(info: ServerInfo, paths: _Paths) -> None:
    """Tell the user, once per data directory, that a server now runs on their behalf."""
    print(
        f"herdsman: started a local server at {info.url} (pid {info.pid}, data in "
        f"{paths.data_dir}).\n"
        "herdsman: it keeps running for later runs; `herdsman server status` shows it and "
        "`herdsman server stop` stops it.",
        file=sys.stderr,
        flush=True,
    )


def _launch(paths: _Paths, database_url: str, log_level: str, port: int) -> ServerInfo:
    _reap_children()
    paths.server_file.unlink(missing_ok=True)  # stale: its server no longer answers
    command = [
        sys.executable,
        "-m",
        "herdsman.server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--ready-file",
        str(paths.server_file),
        "--log-level",
        log_level,
    ]
    with paths.log_file.open("ab") as log:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        log.write(f"--- {now} herdsman: starting the embedded server\n".encode())
        log.flush()
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    _children.append(process)
    logger.info("embedded_server_starting", pid=process.pid, data_dir=str(paths.data_dir))
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        status = process.poll()
        if (
            status is not None
            and port != 0
            and "address already in use" in _log_tail(paths.log_file).lower()
        ):
            raise _PortTaken(port)
        if status is not None:
            raise ServerUnavailableError(
                f"the embedded herdsman server exited with status {status} before it was "
                f"ready; the last lines of {paths.log_file}:\n{_log_tail(paths.log_file)}",
                details={"log_file": str(paths.log_file), "exit_status": status},
            )
        info = read_ready_file(paths.server_file)
        if info is not None and info.pid == process.pid and probe_health(info.url) is not None:
            logger.info("embedded_server_started", url=info.url, pid=info.pid)
            return info
        time.sleep(_POLL_SECONDS)
    _terminate(process.pid, timeout=5.0)
    raise ServerUnavailableError(
        f"the embedded herdsman server did not answer within {START_TIMEOUT_SECONDS:.0f} s and "
        f"was stopped; the last lines of {paths.log_file}:\n{_log_tail(paths.log_file)}",
        details={"log_file": str(paths.log_file)},
    )


def _is_running(info: ServerInfo) -> bool:
    return _process(info.pid) is not None and probe_health(info.url) is not None


def _process(pid: int) -> psutil.Process | None:
    """The live herdsman process ``pid``; None for exited, zombie or unrelated processes.

    Checking the command line guards against a pid the system has reused for another program
    since the server died, which ``stop`` must never signal.
    """
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        if "herdsman" not in " ".join(process.cmdline()):
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return process


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM ``pid``, SIGKILL it if it is still there after ``timeout``; True if it ran."""
    process = _process(pid)
    if process is None:
        return False
    try:
        process.terminate()
        if not _wait_gone(process, timeout):
            logger.info("embedded_server_killed", pid=pid, timeout=timeout)
            process.kill()
            _wait_gone(process, 5.0)
    except psutil.NoSuchProcess:
        pass
    _reap_children()
    return True


def _wait_gone(process: psutil.Process, timeout: float) -> bool:
    """Wait until ``process`` has exited; a zombie counts as exited (its parent reaps it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            process.wait(timeout=0.1)
            return True
        except psutil.TimeoutExpired:
            pass
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False


def _reap_children() -> None:
    for child in list(_children):
        if child.poll() is not None:
            _children.remove(child)


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        with path.open("rb") as stream:
            stream.seek(0, 2)
            stream.seek(max(0, stream.tell() - 64_000))
            text = stream.read().decode(errors="replace")
    except OSError as error:
        return f"(cannot read the log: {error})"
    return "\n".join(text.splitlines()[-lines:])
