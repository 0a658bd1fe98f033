"""``python -m herdsman.server``: one server process, for the programs that start servers.

The embedded server and the test suite start servers this way, with ``sys.executable``, so
they need no console script on ``PATH``. It takes the options of ``herdsman server start``
(which people use) and calls the same :func:`~herdsman.server.runner.serve`; unset options
come from the settings.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from herdsman.core.config import Settings
from herdsman.server.runner import serve

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m herdsman.server", description=__doc__)
    parser.add_argument("--host", help="address to bind [default: server.host setting]")
    parser.add_argument("--port", type=int, help="port to bind; 0 picks a free one")
    parser.add_argument("--database-url", help="[default: the database_url setting]")
    parser.add_argument("--no-upgrade", action="store_true", help="do not migrate at start")
    parser.add_argument("--ready-file", type=Path, help="write the URL here once serving")
    parser.add_argument(
        "--log-level", type=str.lower, choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument("--certfile", type=Path, help="serve TLS with this certificate (PEM)")
    parser.add_argument("--keyfile", type=Path, help="the certificate's private key (PEM)")
    parser.add_argument(
        "--workers", type=int, help="server processes on the socket [default: server.workers]"
    )
    options = parser.parse_args(argv)
    settings = Settings()
    serve(
        host=options.host if options.host is not None else settings.server.host,
        port=options.port if options.port is not None else settings.server.port,
        database_url=options.database_url or settings.resolved_database_url(),
        upgrade_schema=not options.no_upgrade,
        ready_file=options.ready_file,
        log_level=options.log_level or settings.log_level,
        access_log=options.access_log,
        certfile=options.certfile,
        keyfile=options.keyfile,
        workers=options.workers if options.workers is not None else settings.server.workers,
    )


if __name__ == "__main__":
    main()
