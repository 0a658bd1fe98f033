"""Reports of a local pool's processes, sent to the server in batches by the pool's parent.

One thread sends; each batch holds the reports that arrived while the previous one was under
way. A lone report therefore leaves at once (no timer adds latency to a chain of tasks), and
the reports of a busy pool share requests instead of paying for one each, which is what most
of a short task's cost on the server was.

A batch the server could not be reached for is kept and sent again (with what arrived
meanwhile) until the server is back, for up to ``max_outage_seconds``: a server restart must
not cost the work of tasks that finished while it was down, nor kill commands whose running
report waited. Sending a report twice is harmless; the server treats a repeated one as
already applied.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import structlog

from herdsman.core.errors import HerdsmanError, ServerUnavailableError, error_class_by_name
from herdsman.core.requester import Recover, Requester
from herdsman.core.schemas.worker import (
    MAX_REPORTS_PER_BATCH,
    InstanceReportIn,
    InstanceReportOut,
    InstanceReportsIn,
)
from herdsman.worker.reporter import HttpReporter

__all__ = ["ReplyHandler", "ReportBatcher", "refusal_error"]

logger = structlog.get_logger(__name__)

ReplyHandler = Callable[[InstanceReportOut | HerdsmanError], None]
"""Called on the sending thread with the server's answer, or the error that stopped the batch."""

MAX_OUTAGE_SECONDS = 600.0
"""How long a batch is kept for a server that cannot be reached; the distributor's own limit."""
RETRY_PAUSE_SECONDS = 0.5
"""Between tries of a kept batch; short, so the reports (heartbeats among them) reach a server
that is back before its triage takes their silence for lost jobs."""


def refusal_error(answer: InstanceReportOut) -> HerdsmanError | None:
    """The exception the single route would have raised for a refused report; else None."""
    refusal = answer.refused
    if refusal is None:
        return None
    return error_class_by_name(refusal.error)(refusal.message, details=refusal.details)


class ReportBatcher:
    """Sends reports in batches from a thread of its own, between :meth:`start` and :meth:`stop`.

    It has its own connection to the server (``server_url``): the distributor's requester
    belongs to the distributor's thread.
    """

    def __init__(
        self,
        server_url: str,
        *,
        max_outage_seconds: float = MAX_OUTAGE_SECONDS,
        retry_pause: float = RETRY_PAUSE_SECONDS,
        recover: Recover | None = None,
    ) -> None:
        self._server_url = server_url
        self._recover = recover  # the distributor's: brings a dead embedded server back
        self._max_outage = max_outage_seconds
        self._retry_pause = retry_pause
        self._unreachable_since: float | None = None
        self._condition = threading.Condition()
        self._pending: list[tuple[InstanceReportIn, ReplyHandler | None]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="herdsman-reports", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def send(self, reports: Sequence[tuple[InstanceReportIn, ReplyHandler | None]]) -> None:
        """Queue reports for the next batch; they stay together and in this order."""
        if not reports:
            return
        with self._condition:
            self._pending.extend(reports)
            self._condition.notify()

    def stop(self) -> None:
        """Send what is queued, then end the thread. Idempotent."""
        with self._condition:
            self._stopping = True
            self._condition.notify()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        with Requester(self._server_url, recover=self._recover) as requester:
            while (batch := self._next_batch()) is not None:
                self._send_batch(requester, batch)
        logger.debug("report_batcher_stopped")

    def _next_batch(self) -> list[tuple[InstanceReportIn, ReplyHandler | None]] | None:
        """The reports queued so far (waiting for one); None once stopped with none left."""
        with self._condition:
            while not self._pending and not self._stopping:
                self._condition.wait()
            if not self._pending:
                return None
            batch = self._pending[:MAX_REPORTS_PER_BATCH]
            del self._pending[:MAX_REPORTS_PER_BATCH]
            return batch

    def _send_batch(
        self, requester: Requester, batch: list[tuple[InstanceReportIn, ReplyHandler | None]]
    ) -> None:
        body = InstanceReportsIn(reports=[report for report, _ in batch])
        answers: Sequence[InstanceReportOut | HerdsmanError]
        try:
            reply = HttpReporter(requester).batch(body)
            answers = reply.reports
            self._unreachable_since = None
        except ServerUnavailableError as error:
            if self._keep_for_later(batch, error):
                return
            answers = [error] * len(batch)
        except HerdsmanError as error:
            # Refused as a whole (a server error): the reports' instances are left to triage.
            self._unreachable_since = None
            logger.error("report_batch_failed", reports=len(batch), error=error.message)
            answers = [error] * len(batch)
        logger.debug("report_batch_sent", reports=len(batch))
        for (report, handler), answer in zip(batch, answers, strict=True):
            if handler is None:
                continue
            try:
                handler(answer)
            except Exception:  # one handler's bug must not lose the other answers
                logger.exception("report_reply_failed", task_instance_id=report.task_instance_id)

    def _keep_for_later(
        self, batch: list[tuple[InstanceReportIn, ReplyHandler | None]], error: HerdsmanError
    ) -> bool:
        """Put ``batch`` back to be sent after a pause; False when the outage lasted too long
        or the pool is stopping (its last reports then go to triage, not wait)."""
        now = time.monotonic()
        if self._unreachable_since is None:
            self._unreachable_since = now
        outage = now - self._unreachable_since
        with self._condition:
            if self._stopping or outage >= self._max_outage:
                logger.error(
                    "report_batch_failed",
                    reports=len(batch),
                    outage_seconds=round(outage, 1),
                    error=error.message,
                )
                return False
            self._pending[:0] = batch
            logger.warning(
                "report_batch_waiting_for_server",
                reports=len(self._pending),
                outage_seconds=round(outage, 1),
            )
            self._condition.wait_for(lambda: self._stopping, timeout=self._retry_pause)
        return True
