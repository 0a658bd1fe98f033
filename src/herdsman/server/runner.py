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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import pwd
import socket
from collections.abc import Callable
from pathlib import Path

import structlog
import uvicorn

from herdsman.core.config import Settings
from herdsman.core.logs import configure_logging
from herdsman.core.ready_file import ServerInfo, read_ready_file, write_ready_file
from herdsman.server.api.app import create_app
from herdsman.server.auth.keys import load_or_create_key
from herdsman.server.auth.tokens import Role, TokenSigner
from herdsman.server.database.engine import Database
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
) -> None:
    """Serve ``database_url`` on ``host:port`` until SIGTERM or SIGINT.

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
        app = create_app(database_url, key=key, upgrade_schema=upgrade_schema)
        config = uvicorn.Config(
            app,
            log_level=level,
            access_log=access_log,
            workers=1,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
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
