"""``herdsman-worker`` / ``python -m herdsman.worker``: run one task instance on this node.

The cluster runs this for every job, so its start-up time is part of every task's latency:
it uses argparse rather than click, imports only the wrapper's modules, and parses settings
only for the values it needs. A worker never starts an embedded server: a compute node has
no business creating a database, so without a server URL it fails with a clear message.

Exit code: the command's (``128 + N`` for a signal ``N``), 0 when the server said not to run
the instance, 1 when the wrapper failed (see :mod:`herdsman.worker.wrapper`), 2 for bad
arguments.

SIGTERM and SIGINT sent to the worker are passed on to the command's process group, so a
cancelled cluster job still reports its end ("killed by signal SIGTERM") before exiting.

``--enforce-limits`` makes the worker itself kill a command that outgrows its task's memory or
runtime request and report it as a resource error (Z), as a scheduler would. It is off by
default: where this command runs as a cluster job, the scheduler already enforces both, and a
second, sampled enforcement could only kill a job the scheduler would have let finish.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

import structlog

from herdsman.core.timing import DEFAULT_INSTANCE_HEARTBEAT_INTERVAL
from herdsman.worker.exit_status import ExitCodeStatus, default_exit_code_status

__all__ = ["main"]

logger = structlog.get_logger(__name__)

USAGE_ERROR_EXIT_CODE = 2
NO_SERVER_MESSAGE = (
    "no herdsman server URL: pass --server-url or set HERDSMAN_SERVER_URL "
    "(a worker never starts an embedded server)"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="herdsman-worker",
        description="Run one herdsman task instance and report it to the server.",
    )
    parser.add_argument("--task-instance-id", type=int, required=True)
    parser.add_argument(
        "--server-url",
        default=None,
        help="herdsman server URL (default: the server_url setting, env HERDSMAN_SERVER_URL)",
    )
    parser.add_argument(
        "--distributor-id",
        default=None,
        help="the cluster's job id (default: the task instance id)",
    )
    parser.add_argument(
        "--heartbeat-interval",
        type=float,
        default=DEFAULT_INSTANCE_HEARTBEAT_INTERVAL,
        help=f"seconds between heartbeats (default {DEFAULT_INSTANCE_HEARTBEAT_INTERVAL:g})",
    )
    parser.add_argument(
        "--enforce-limits",
        action="store_true",
        help="kill the command when it exceeds its task's memory or runtime request "
        "(default off: cluster schedulers enforce them)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=("debug", "info", "warning", "error"),
        help="log level on stderr (default: the log_level setting)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None, *, exit_code_status: ExitCodeStatus | None = None
) -> int:
    """Parse ``argv``, run the task instance, and return the exit code.

    ``exit_code_status``: how a cluster's worker reads a failed command's exit code (see
    :mod:`herdsman.worker.exit_status`); the default knows no resource kills.
    """
    args = _parser().parse_args(argv)
    if args.heartbeat_interval <= 0:
        print("herdsman-worker: --heartbeat-interval must be positive", file=sys.stderr)
        return USAGE_ERROR_EXIT_CODE

    from herdsman.core.config import Settings
    from herdsman.core.logs import configure_logging

    try:
        settings = Settings(**({"server_url": args.server_url} if args.server_url else {}))
    except ValueError as error:
        print(f"herdsman-worker: invalid settings: {error}", file=sys.stderr)
        return USAGE_ERROR_EXIT_CODE
    configure_logging(args.log_level or settings.log_level)
    if not settings.server_url:
        print(f"herdsman-worker: {NO_SERVER_MESSAGE}", file=sys.stderr)
        return USAGE_ERROR_EXIT_CODE

    from herdsman.core.requester import Requester
    from herdsman.worker.wrapper import WRAPPER_ERROR_EXIT_CODE, run_task_instance

    forwarder = _SignalForwarder()
    forwarder.install()
    with Requester(
        settings.server_url, timeout=settings.http.timeout, retries=settings.http.retries
    ) as requester:
        try:
            return run_task_instance(
                requester,
                args.task_instance_id,
                distributor_id=args.distributor_id,
                heartbeat_interval=args.heartbeat_interval,
                on_command_start=forwarder.set_target,
                enforce_limits=args.enforce_limits,
                exit_code_status=exit_code_status or default_exit_code_status,
            )
        except Exception:
            # A bug of the wrapper: logged (without the frames' variables, which hold the
            # command's environment), and the job ends with the wrapper's error code. An
            # attempt left running is found by triage through its missing heartbeats.
            logger.exception("worker_failed", task_instance_id=args.task_instance_id)
            return WRAPPER_ERROR_EXIT_CODE


class _SignalForwarder:
    """Passes SIGTERM/SIGINT to the command's process group once it runs.

    Before the command starts, a signal ends the worker the usual way (no command to stop).
    Afterwards the handler only forwards: the wrapper keeps waiting for the command, which is
    then reported as killed by that signal.
    """

    def __init__(self) -> None:
        self._pgid: int | None = None

    def install(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)

    def set_target(self, pgid: int) -> None:
        self._pgid = pgid

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self._pgid is None:
            raise SystemExit(128 + signum)
        logger.info("worker_signal_forwarded", signal=signal.Signals(signum).name, pgid=self._pgid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pgid, signum)
