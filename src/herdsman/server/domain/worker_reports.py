"""What the worker wrapper reports about its attempt: running, heartbeats, done, error.

Each report moves the attempt through :func:`~.transitions.move_instance` (its task follows)
or ends it through :func:`~.transitions.end_attempt`; a report that arrives late or twice
changes nothing and is answered with the current status.

Reports also come in batches: a local pool's distributor sends its processes' reports
together. Every report of a short task costs the server a request of its own when each wrapper
talks to it directly, and the request's handling, not its SQL, is most of that cost; a batch
is one request, one transaction and one wake-up of the feed's followers for many reports.
Each report of a batch is handled exactly as its single route handles it (the same
functions), so a batch changes nothing about the state machines or about replays. A report
its route would refuse (an unknown instance, a worker of another version) is answered with
the refusal and does not fail the others; its checks come before it writes anything.
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy.orm import Session

from herdsman import __version__
from herdsman.core import lifecycle
from herdsman.core.errors import ConflictError, NotFoundError
from herdsman.core.schemas import worker as schemas
from herdsman.core.statuses import TaskInstanceStatus, Transition
from herdsman.server.database import models, sql
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain.transitions import (
    InstanceRow,
    end_attempt,
    load_instance,
    load_instances,
    move_instance,
    raise_peaks,
)

__all__ = [
    "apply_reports",
    "instance_done",
    "instance_error",
    "instance_heartbeat",
    "instance_running",
]


def instance_running(
    session: Session,
    instance_id: int,
    request: schemas.InstanceRunningIn,
    recorder: ChangeRecorder,
) -> schemas.InstanceRunningOut:
    """The command started (-> R); answer what to run and the limits to hold it to."""
    if request.herdsman_version != __version__:
        raise ConflictError(
            f"the worker runs herdsman {request.herdsman_version} but the server runs "
            f"{__version__}; install the same version on the cluster nodes",
            details={"worker_version": request.herdsman_version, "server_version": __version__},
        )
    row = load_instance(session, instance_id)
    now = models.utcnow()
    if move_instance(session, row, TaskInstanceStatus.RUNNING, recorder, now=now) is (
        Transition.VALID
    ):
        sql.execute(
            session,
            "UPDATE task_instance SET host = ?, pid = ?, report_by_date = ?, "
            "distributor_id = COALESCE(distributor_id, ?) WHERE id = ?",
            (
                request.host,
                request.pid,
                sql.timestamp(session, _report_by(now, request.next_report_seconds)),
                request.distributor_id,
                row.id,
            ),
        )
    name, command, requested = sql.fetch_all(
        session,
        "SELECT t.name, t.command, r.requested FROM task t "
        "JOIN task_resources r ON r.id = ? WHERE t.id = ?",
        (row.task_resources_id, row.task_id),
    )[0]  # the instance's locked row guarantees its task and resources
    resources = json.loads(requested)
    if row.status is TaskInstanceStatus.RUNNING:
        _record_output_paths(session, row.id, name, resources, request.distributor_id)
    return schemas.running_answer(
        status=row.status.value,
        task_instance_id=row.id,
        task_id=row.task_id,
        workflow_id=row.workflow_id,
        workflow_run_id=row.workflow_run_id,
        name=name,
        command=command,
        resources=resources,
    )


def _record_output_paths(
    session: Session,
    instance_id: int,
    name: str,
    resources: dict[str, object],
    distributor_id: str | None,
) -> None:
    """The files the worker is about to write (named as it names them), so the GUI's log
    viewer can follow a running attempt; its done or error report records them again."""
    job_id = distributor_id or str(instance_id)
    paths = [
        None if not isinstance(folder, str) else schemas.output_file_path(folder, name, s, job_id)
        for folder, s in ((resources.get("stdout"), "o"), (resources.get("stderr"), "e"))
    ]
    sql.execute(
        session,
        "UPDATE task_instance SET stdout_path = COALESCE(stdout_path, ?), "
        "stderr_path = COALESCE(stderr_path, ?) WHERE id = ?",
        (*(None if path is None else str(path) for path in paths), instance_id),
    )


def instance_heartbeat(
    session: Session, instance_id: int, request: schemas.InstanceHeartbeatIn
) -> schemas.InstanceStatusOut:
    """Push the attempt's report-by time forward and keep its latest output tails."""
    row = load_instance(session, instance_id)
    if row.status in lifecycle.HEARTBEAT_INSTANCE_STATUSES:
        report_by = _report_by(models.utcnow(), request.next_report_seconds)
        sql.execute(
            session,
            "UPDATE task_instance SET report_by_date = ?, "
            "stdout_tail = COALESCE(?, stdout_tail), stderr_tail = COALESCE(?, stderr_tail) "
            "WHERE id = ?",
            (sql.timestamp(session, report_by), request.stdout_tail, request.stderr_tail, row.id),
        )
    return schemas.InstanceStatusOut(task_instance_id=row.id, status=row.status.value)


def instance_done(
    session: Session, instance_id: int, request: schemas.InstanceDoneIn, recorder: ChangeRecorder
) -> schemas.InstanceStatusOut:
    row = load_instance(session, instance_id)
    now = models.utcnow()
    if move_instance(session, row, TaskInstanceStatus.DONE, recorder, now=now) is (
        Transition.VALID
    ):
        _record_outcome(session, row, request.exit_code, request, recorder)
    return schemas.InstanceStatusOut(task_instance_id=row.id, status=row.status.value)


def instance_error(
    session: Session, instance_id: int, request: schemas.InstanceErrorIn, recorder: ChangeRecorder
) -> schemas.InstanceStatusOut:
    row = load_instance(session, instance_id)
    now = models.utcnow()
    target = TaskInstanceStatus(request.status)
    ended = end_attempt(
        session, row, target, request.message, recorder, now=now, stderr_tail=request.stderr_tail
    )
    if ended is Transition.VALID:
        _record_outcome(session, row, request.exit_code, request, recorder)
    return schemas.InstanceStatusOut(task_instance_id=row.id, status=row.status.value)


def _record_outcome(
    session: Session,
    row: InstanceRow,
    exit_code: int | None,
    report: schemas.InstanceDoneIn | schemas.InstanceErrorIn,
    recorder: ChangeRecorder,
) -> None:
    sql.execute(
        session,
        "UPDATE task_instance SET exit_code = ?, stdout_tail = ?, stderr_tail = ?, "
        "stdout_path = ?, stderr_path = ?, wall_time = ?, cpu_time = ?, max_rss = ? WHERE id = ?",
        (
            exit_code,
            report.stdout_tail,
            report.stderr_tail,
            report.stdout_path,
            report.stderr_path,
            report.usage.wall_time,
            report.usage.cpu_time,
            report.usage.max_rss,
            row.id,
        ),
    )
    raise_peaks(session, row.task_id, report.usage.wall_time, report.usage.max_rss)
    if report.usage.wall_time is not None and not row.removed:
        recorder.usage(row.workflow_id, row.id)


def _report_by(now: dt.datetime, seconds: float) -> dt.datetime:
    return now + dt.timedelta(seconds=seconds)


def apply_reports(
    session: Session, request: schemas.InstanceReportsIn, recorder: ChangeRecorder
) -> schemas.InstanceReportsOut:
    """Apply a batch of reports in order; the answers are aligned with them."""
    # Lock every instance of the batch up front, in id order, as the single routes do for
    # theirs: taking them report by report could deadlock against another batch.
    load_instances(session, [report.task_instance_id for report in request.reports])
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
        running = instance_running(session, instance_id, report.running, recorder)
        return schemas.InstanceReportOut(
            task_instance_id=instance_id, status=running.status, running=running
        )
    if report.heartbeat is not None:
        status = instance_heartbeat(session, instance_id, report.heartbeat)
    elif report.done is not None:
        status = instance_done(session, instance_id, report.done, recorder)
    elif report.error is not None:
        status = instance_error(session, instance_id, report.error, recorder)
    else:  # the schema requires exactly one kind; a new kind must be handled above
        raise ConflictError(f"report of task instance {instance_id} carries nothing to apply")
    return schemas.InstanceReportOut(task_instance_id=instance_id, status=status.status)
