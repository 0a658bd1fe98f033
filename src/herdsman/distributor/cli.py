"""The distributor process's ``main``: look up the cluster, start its plugin, distribute.

Started by :class:`herdsman.distributor.process.DistributorProcess`; see there for the ready
handshake on stdout. Exit codes: 0 when the run finished or a stop was requested, 1 when the
distributor could not start (unknown cluster or plugin, the server unreachable) or gave up on
an unreachable server, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from collections.abc import Sequence
from types import FrameType
from typing import cast

import structlog

from herdsman.core.errors import HerdsmanError
from herdsman.core.logs import FORMAT_VARIABLE, LogFormat, configure_logging
from herdsman.core.requester import Recover, Requester
from herdsman.distributor.gateway import HttpDistributorGateway
from herdsman.distributor.plugin import load_plugin
from herdsman.distributor.process import READY_MARKER
from herdsman.distributor.service import DistributorConfig, DistributorService, ExitReason

__all__ = ["main"]

logger = structlog.get_logger(__name__)

_TRACKER_WARNING_FILTER = "ignore:resource_tracker:UserWarning"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m herdsman.distributor",
        description="Submit the queued task instances of one workflow run to a cluster.",
    )
    parser.add_argument("--workflow-run-id", type=int, required=True)
    parser.add_argument("--cluster-name", required=True)
    parser.add_argument("--server-url", required=True)
    parser.add_argument(
        "--after-seq",
        type=int,
        default=0,
        help="change-feed position to follow from (default 0: the whole history)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=("debug", "info", "warning", "error"),
        help="log level on stderr (default: the log_level setting)",
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=("text", "json", "human"),
        help="format of the logs on stderr, the pool processes' included (default: text)",
    )
    parser.add_argument(
        "--embedded-server",
        action="store_true",
        help="the server is the embedded one: start it again (same database) should it die",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a distributor until its workflow run ends; the process's exit code."""
    args = _parser().parse_args(argv)
    # Only the ready line may reach the caller's pipe: keep a private copy of it, and send
    # everything else written to stdout (by us or by the plugin's children) to stderr.
    ready = _ReadyPipe(os.dup(1))
    os.dup2(2, 1)
    # Pool processes inherit the format, but log at the level of the settings: they log per
    # job, the distributor per batch, so a log at info stays small for a million tasks.
    os.environ[FORMAT_VARIABLE] = args.log_format
    # multiprocessing's resource tracker (a child) warns about "leaked semaphore objects" when
    # this process is killed before it could release its pool's queues; it releases them
    # itself, and the kill is reported where it matters (the run's summary), so the warning
    # would only be noise in the log.
    os.environ["PYTHONWARNINGS"] = ",".join(
        part for part in (os.environ.get("PYTHONWARNINGS", ""), _TRACKER_WARNING_FILTER) if part
    )
    from herdsman.core.config import Settings

    configure_logging(
        args.log_level or Settings().log_level, format=cast(LogFormat, args.log_format)
    )
    log = logger.bind(workflow_run_id=args.workflow_run_id, cluster=args.cluster_name)
    try:
        with Requester(args.server_url, recover=_recovery(args.embedded_server)) as requester:
            gateway = HttpDistributorGateway(requester)
            try:
                cluster = gateway.get_cluster(args.cluster_name)
                plugin = load_plugin(
                    cluster.plugin, requester=requester, parameters=cluster.parameters
                )
            except HerdsmanError as error:
                log.error("distributor_start_failed", error=error.message)
                return 1
            service = DistributorService(
                gateway,
                args.workflow_run_id,
                plugin,
                config=DistributorConfig.from_parameters(cluster.parameters),
                after_seq=args.after_seq,
                cluster_name=args.cluster_name,
            )

            def on_signal(signum: int, _frame: FrameType | None) -> None:
                service.handle_signal(signum)

            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            try:
                result = service.run(on_ready=ready.announce)
            except HerdsmanError as error:  # the plugin could not start
                log.error("distributor_failed", error=error.message)
                return 1
    finally:
        ready.close()
    return 1 if result.reason is ExitReason.SERVER_UNREACHABLE else 0


def _recovery(embedded_server: bool) -> Recover | None:
    """For the embedded server: what starts it again should it die (None: nothing can)."""
    if not embedded_server:
        return None
    # Imported only here: the embedded server's launcher is the client's, and a distributor
    # for a configured server never needs it.
    from herdsman.client.embedded import EmbeddedRecovery
    from herdsman.core.config import load_settings

    return EmbeddedRecovery(load_settings(server_url=None))


class _ReadyPipe:
    """The caller's end of the handshake: one line, then closed (exactly once)."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd

    def announce(self) -> None:
        if self._fd is None:
            return
        os.write(self._fd, f"{READY_MARKER} {json.dumps({'pid': os.getpid()})}\n".encode())
        self.close()
        logger.info("distributor_ready", pid=os.getpid())

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
