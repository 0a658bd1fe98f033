"""Run one herdsman server process in the foreground: uvicorn serving the FastAPI app.

The runner binds the listening socket itself rather than letting uvicorn do it, so that port 0
("any free port") is resolved before uvicorn starts and the real port can be announced. The
announcement is the *ready file*: a small JSON document written atomically (temporary file,
then ``os.replace``) once uvicorn's startup has finished, i.e. when the socket is listening and
the app (with its migrated database) is loaded. Whoever launched the process waits for that file
instead of guessing ports or sleeping; the embedded server of :mod:`herdsman.client.embedded`
and the test suite both rely on it. The file is removed again when the server shuts down.

SIGTERM and SIGINT stop the server gracefully (uvicorn's own signal handling): it stops
accepting connections, lets running requests finish for up to
``GRACEFUL_SHUTDOWN_SECONDS``, and exits.

With ``workers`` above 1 the process becomes a supervisor: it migrates the database once, binds
the socket, and forks that many server processes which all accept on it (the kernel spreads
connections among them). The ready file names the supervisor, once every server process is
serving; SIGTERM to the supervisor stops them all, and one that dies unexpectedly is started
again. All of them serve the same database, as separate servers behind a load balancer would
(see docs/deployment.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import multiprocessing.connection
import os
import pwd
import queue
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

import structlog
import uvicorn

from herdsman.core.config import Settings
from herdsman.core.logs import configure_logging
from herdsman.core.ready_file import ServerInfo, read_ready_file, write_ready_file
from herdsman.server.api.app import create_app
from herdsman.server.auth.keys import load_or_create_key
from herdsman.server.auth.tokens import Role, TokenSigner
from herdsman.server.database.engine import Database, make_database
from herdsman.server.database.migrate import upgrade
from herdsman.server.gui import live

__all__ = ["ServerInfo", "connect_url", "read_ready_file", "serve", "write_ready_file"]

logger = structlog.get_logger(__name__)

# Clients keep connections open between the many small requests of a bind or a swarm tick;
# uvicorn's default of 5 s would make them reconnect all the time.
KEEP_ALIVE_SECONDS = 30
# Long-poll requests may be waiting when SIGTERM arrives; don't let them hold up shutdown.
GRACEFUL_SHUTDOWN_SECONDS = 10
# The owner's token in the ready file is made anew at every start.
OWNER_TOKEN_LIFETIME = dt.timedelta(days=365)


def serve(
    *,
    host: str,
    port: int,
    database_url: str,
    upgrade_schema: bool = True,
    ready_file: Path | None = None,
    log_level: str | None = None,
    access_log: bool = False,
    on_ready: Callable[[str], None] | None = None,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    workers: int = 1,
) -> None:
    """Serve ``database_url`` on ``host:port`` until SIGTERM or SIGINT.

    ``workers`` server processes share the socket (see the module's docstring).

    ``port`` 0 picks a free port. Once the server accepts connections its URL is written to
    ``ready_file`` (JSON with ``url``, ``pid``, ``database_url``, ``started`` and an admin
    token for the user running the server: its owner) and passed to ``on_ready``. With
    ``certfile`` (and ``keyfile`` unless the certificate file holds the key) it serves TLS.
    ``log_level`` defaults to :attr:`Settings.log_level`. The access log is
    off by default: at bind rates it would write a line per request, thousands a second.

    Raises whatever the app factory raises (an unreachable database, a failed migration) and
    ``OSError`` when the address cannot be bound; the process then exits without a ready file.
    """
    settings = Settings()
    level = (log_level or settings.log_level).lower()
    configure_logging(level)
    key = load_or_create_key(settings.resolved_key_file())
    sock = _bind_socket(host, port)
    try:
        url = connect_url(host, sock.getsockname()[1], tls=certfile is not None)
        if workers > 1:
            owner_token, _ = TokenSigner(key).issue_user_token(
                server_owner(), Role.ADMIN, OWNER_TOKEN_LIFETIME
            )
            child = _ChildOptions(database_url, level, access_log, certfile, keyfile, url, key)
            if upgrade_schema:
                database = make_database(database_url)
                try:
                    upgrade(database)
                finally:
                    database.dispose()
            _Supervisor(sock, child, workers).run(
                on_serving=lambda: _announce(url, owner_token, database_url, ready_file, on_ready)
            )
            _withdraw(ready_file)
            return
        app = create_app(database_url, key=key, upgrade_schema=upgrade_schema)
        config = _uvicorn_config(app, level, access_log, certfile, keyfile)
        owner_token, _ = TokenSigner(key).issue_user_token(
            server_owner(), Role.ADMIN, OWNER_TOKEN_LIFETIME
        )
        server = _AnnouncingServer(
            config,
            url=url,
            token=owner_token,
            database_url=database_url,
            database=app.state.database,
            ready_file=ready_file,
            on_ready=on_ready,
        )
        logger.info("server_starting", url=url, pid=os.getpid())
        # uvicorn re-raises the SIGINT it handled once the server has stopped cleanly; Ctrl-C
        # is how a foreground server is meant to end, not an error.
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=[sock])
    finally:
        sock.close()


def _announce(
    url: str,
    token: str,
    database_url: str,
    ready_file: Path | None,
    on_ready: Callable[[str], None] | None,
) -> None:
    if ready_file is not None:
        started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        write_ready_file(ready_file, ServerInfo(url, os.getpid(), database_url, started, token))
    logger.info("server_ready", url=url, pid=os.getpid())
    if on_ready is not None:
        on_ready(url)


def _withdraw(ready_file: Path | None) -> None:
    """Remove our own announcement (another server may have replaced the file meanwhile)."""
    if ready_file is not None:
        announced = read_ready_file(ready_file)
        if announced is not None and announced.pid == os.getpid():
            ready_file.unlink(missing_ok=True)


@dataclass(frozen=True)
class _ChildOptions:
    database_url: str
    log_level: str
    access_log: bool
    certfile: Path | None
    keyfile: Path | None
    url: str
    key: bytes


class _Supervisor:
    """Forks ``count`` server processes on one socket, restarts those that die, stops them all
    on SIGTERM or SIGINT."""

    # A process that dies before it serves stops them all: it would fail again the same way.
    POLL_SECONDS = 0.5

    def __init__(self, sock: socket.socket, options: _ChildOptions, count: int) -> None:
        self._sock = sock
        self._options = options
        self._count = count
        self._context = multiprocessing.get_context("fork")
        self._ready: Any = self._context.Queue()
        self._stopping = threading.Event()
        self._children: list[BaseProcess] = []

    def run(self, on_serving: Callable[[], None]) -> None:
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self._children = [self._start(index) for index in range(self._count)]
            if not self._wait_until_serving():
                return
            on_serving()
            self._supervise()
        finally:
            self._stop_children()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        logger.info("server_stopping", signal=signal.Signals(signum).name, pid=os.getpid())
        self._stopping.set()

    def _start(self, index: int) -> BaseProcess:
        process = self._context.Process(
            target=_serve_child,
            args=(self._sock, self._options, self._ready),
            name=f"herdsman-server-{index}",
            daemon=False,
        )
        process.start()
        logger.info("server_process_started", index=index, pid=process.pid)
        return process

    def _wait_until_serving(self) -> bool:
        serving = 0
        while serving < self._count:
            if self._stopping.is_set():
                return False
            dead = [child for child in self._children if not child.is_alive()]
            if dead:
                logger.error(
                    "server_process_failed_at_start", pid=dead[0].pid, exitcode=dead[0].exitcode
                )
                raise RuntimeError(
                    f"server process {dead[0].pid} exited with {dead[0].exitcode} before it "
                    "served; see its log above"
                )
            with contextlib.suppress(queue.Empty):
                self._ready.get(timeout=self.POLL_SECONDS)
                serving += 1
        return True

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            sentinels = [child.sentinel for child in self._children]
            multiprocessing.connection.wait(sentinels, timeout=self.POLL_SECONDS)
            for index, child in enumerate(self._children):
                if child.is_alive() or self._stopping.is_set():
                    continue
                logger.error(
                    "server_process_died", index=index, pid=child.pid, exitcode=child.exitcode
                )
                self._children[index] = self._start(index)

    def _stop_children(self) -> None:
        for child in self._children:
            if child.is_alive() and child.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGTERM)
        for child in self._children:
            child.join(GRACEFUL_SHUTDOWN_SECONDS + 5)
            if child.is_alive():
                logger.warning("server_process_killed", pid=child.pid)
                child.kill()
                child.join()


def _serve_child(sock: socket.socket, options: _ChildOptions, ready: Any) -> None:
    """One forked server process: an app of its own on the shared socket."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    configure_logging(options.log_level)
    app = create_app(options.database_url, key=options.key, upgrade_schema=False)
    config = _uvicorn_config(
        app, options.log_level, options.access_log, options.certfile, options.keyfile
    )
    server = _AnnouncingServer(
        config,
        url=options.url,
        token="",
        database_url=options.database_url,
        database=app.state.database,
        ready_file=None,
        on_ready=lambda _url: ready.put(os.getpid()),
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=[sock])


def _uvicorn_config(
    app: Any, level: str, access_log: bool, certfile: Path | None, keyfile: Path | None
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=level,
        access_log=access_log,
        workers=1,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        ssl_certfile=certfile,
        ssl_keyfile=keyfile,
    )


def server_owner() -> str:
    """The login name of the user this process runs as, from the OS (not the environment)."""
    return pwd.getpwuid(os.getuid()).pw_name


def connect_url(host: str, port: int, *, tls: bool = False) -> str:
    """The URL a client on this host uses to reach a server bound to ``host:port``.

    A wildcard address (``0.0.0.0``, ``::``) is not something one can connect to, so the
    loopback address of the same family stands in for it.
    """
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that writes the ready file after startup and removes it at shutdown."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        url: str,
        token: str,
        database_url: str,
        database: Database,
        ready_file: Path | None,
        on_ready: Callable[[str], None] | None,
    ) -> None:
        super().__init__(config)
        self._url = url
        self._token = token
        self._database_url = database_url
        self._database = database
        self._ready_file = ready_file
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        if self._ready_file is not None:
            started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            info = ServerInfo(self._url, os.getpid(), self._database_url, started, self._token)
            write_ready_file(self._ready_file, info)
        logger.info("server_ready", url=self._url, pid=os.getpid())
        if self._on_ready is not None:
            self._on_ready(self._url)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Open GUI pages hold event streams that would last until the graceful timeout.
        live.end_streams(self.config.app)
        await super().shutdown(sockets=sockets)
        # This runs before uvicorn re-raises the signal that stopped it, so the ready file
        # never outlives the server after a clean stop. Another server may have replaced the
        # file meanwhile; only our own announcement is removed.
        if self._ready_file is not None:
            announced = read_ready_file(self._ready_file)
            if announced is not None and announced.pid == os.getpid():
                self._ready_file.unlink(missing_ok=True)
        self._database.dispose()
        logger.info("server_stopped", url=self._url, pid=os.getpid())


def _bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; SO_REUSEADDR lets a restart reuse the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock
