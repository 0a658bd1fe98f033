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

import structlog

from herdsman.core.errors import HerdsmanError
from herdsman.core.logs import configure_logging
from herdsman.core.requester import Requester
from herdsman.distributor.gateway import HttpDistributorGateway
from herdsman.distributor.plugin import load_plugin
from herdsman.distributor.process import READY_MARKER
from herdsman.distributor.service import DistributorConfig, DistributorService, ExitReason

__all__ = ["main"]

logger = structlog.get_logger(__name__)


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run a distributor until its workflow run ends; the process's exit code."""
    args = _parser().parse_args(argv)
    # Only the ready line may reach the caller's pipe: keep a private copy of it, and send
    # everything else written to stdout (by us or by the plugin's children) to stderr.
    ready = _ReadyPipe(os.dup(1))
    os.dup2(2, 1)
    if args.log_level:
        os.environ["HERDSMAN_LOG_LEVEL"] = args.log_level  # pool processes inherit it
    from herdsman.core.config import Settings

    configure_logging(args.log_level or Settings().log_level)
    log = logger.bind(workflow_run_id=args.workflow_run_id, cluster=args.cluster_name)
    try:
        with Requester(args.server_url) as requester:
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
