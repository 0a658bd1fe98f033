"""Worker reports in batches: a local pool's distributor sends its processes' reports together.

Every report of a short task costs the server a request of its own when each wrapper talks to
it directly, and the request's handling, not its SQL, is most of that cost. A pool knows all
of its processes' reports, so it sends what accumulated while its previous batch was under
way: one request, one transaction and one wake-up of the feed's followers for many reports.

Each report is handled exactly as its single route handles it (the same functions), so a
batch changes nothing about the state machines or about replays. A report its route would
refuse (an unknown instance, a worker of another version) is answered with the refusal and
does not fail the others; its checks come before it writes anything.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from herdsman.core.errors import ConflictError, NotFoundError
from herdsman.core.schemas import worker as schemas
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain import transitions as instances

__all__ = ["apply_reports"]


def apply_reports(
    session: Session, request: schemas.InstanceReportsIn, recorder: ChangeRecorder
) -> schemas.InstanceReportsOut:
    """Apply the reports in order; the answers are aligned with them."""
    # Lock every instance of the batch up front, in id order, as the single routes do for
    # theirs: taking them report by report could deadlock against another batch.
    instances.lock_instances(session, [report.task_instance_id for report in request.reports])
    answers = []
    for report in request.reports:
        try:
            answers.append(_apply(session, report, recorder))
        except (NotFoundError, ConflictError) as error:
            refusal = schemas.ReportRefusal(
                error=type(error).__name__, message=error.message, details=error.details
            )
            answers.append(
                schemas.InstanceReportOut(task_instance_id=report.task_instance_id, refused=refusal)
            )
    return schemas.InstanceReportsOut(reports=answers)


def _apply(
    session: Session, report: schemas.InstanceReportIn, recorder: ChangeRecorder
) -> schemas.InstanceReportOut:
    instance_id = report.task_instance_id
    if report.running is not None:
        running = instances.instance_running(session, instance_id, report.running, recorder)
        return schemas.InstanceReportOut(
            task_instance_id=instance_id, status=running.status, running=running
        )
    if report.heartbeat is not None:
        status = instances.instance_heartbeat(session, instance_id, report.heartbeat)
    elif report.done is not None:
        status = instances.instance_done(session, instance_id, report.done, recorder)
    else:
        assert report.error is not None  # the schema allows exactly one kind
        status = instances.instance_error(session, instance_id, report.error, recorder)
    return schemas.InstanceReportOut(task_instance_id=instance_id, status=status.status)
