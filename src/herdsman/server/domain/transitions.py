"""Task instances: queueing tasks, claiming and launching instances, and the worker's reports.

Each function validates every status change against the state machines of
:mod:`herdsman.core.statuses`, records it in the change feed, and keeps the task's status in
step with its instance's: an instance that runs makes its task run, a finished one finishes
it, a failed one sends the task to a retry (G), to resource adjustment (A, after a resource
kill) or to F when its attempts are spent. Reports that arrive late or twice are ignored and
answered with the current status, so every route is safe to replay.

These are the statements every attempt of every task runs, so they are plain SQL on narrow
rows (see :mod:`herdsman.server.database.sql`); rows are locked in id order so concurrent requests
cannot deadlock.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from herdsman import __version__
from herdsman.core.errors import ConflictError, NotFoundError
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import swarm as sschemas
from herdsman.core.schemas import worker as wschemas
from herdsman.core.statuses import TaskInstanceStatus, TaskStatus, Transition, decide
from herdsman.server.database import models, sql
from herdsman.server.database.bulk import chunked
from herdsman.server.database.feed import ChangeRecorder

__all__ = [
    "LIVE_INSTANCE_STATUSES",
    "claim",
    "count_kills_waiting",
    "finish_without_running",
    "force_kills_done",
    "instance_done",
    "instance_error",
    "instance_heartbeat",
    "instance_running",
    "kills_done",
    "launched",
    "lock_instances",
    "queue_tasks",
    "request_kills",
    "submit_failed",
    "triage_scan",
    "triaged",
]

logger = structlog.get_logger(__name__)

_I = TaskInstanceStatus
_T = TaskStatus
_QUEUEABLE = ("G", "A")
_CHUNK = 1000

# The task status an instance status implies; errors are handled by _task_after_error.
_TASK_FOLLOWS: dict[TaskInstanceStatus, TaskStatus] = {
    _I.INSTANTIATED: _T.INSTANTIATING,
    _I.LAUNCHED: _T.LAUNCHED,
    _I.RUNNING: _T.RUNNING,
    _I.DONE: _T.DONE,
}


@dataclass
class _Instance:
    """The columns of a task instance and its task that status changes need."""

    id: int
    status: str
    task_id: int
    workflow_run_id: int
    task_resources_id: int
    workflow_id: int
    task_status: str
    num_attempts: int
    max_attempts: int


_INSTANCE_COLUMNS = (
    "SELECT ti.id, ti.status, ti.task_id, ti.workflow_run_id, ti.task_resources_id, "
    "t.workflow_id, t.status, t.num_attempts, t.max_attempts "
    "FROM task_instance ti JOIN task t ON t.id = ti.task_id WHERE ti.id IN "
)


def _load(session: Session, instance_ids: Sequence[int]) -> list[_Instance]:
    """The instances, locked (with their tasks) in id order; unknown ids are left out."""
    found: list[_Instance] = []
    for part in chunked(sorted(set(instance_ids)), _CHUNK):
        if sql.for_update(session):
            # Lock the instance rows first, on their own: a lock taken through the join would
            # also cover rows other requests need (MariaDB locks every joined row).
            sql.fetch_all(
                session,
                f"SELECT id FROM task_instance WHERE id IN {sql.in_list(len(part))} "
                f"ORDER BY id{sql.for_update(session)}",
                part,
            )
        rows = sql.fetch_all(
            session, _INSTANCE_COLUMNS + sql.in_list(len(part)) + " ORDER BY ti.id", part
        )
        found += [_Instance(*row) for row in rows]
    return found


def lock_instances(session: Session, instance_ids: Sequence[int]) -> None:
    """Lock these instances and their tasks for the rest of the transaction, in id order."""
    _load(session, instance_ids)


def _load_one(session: Session, instance_id: int) -> _Instance:
    rows = _load(session, [instance_id])
    if not rows:
        raise NotFoundError(
            f"task instance {instance_id} does not exist", details={"value": instance_id}
        )
    return rows[0]


# --- status changes -----------------------------------------------------------------------------


def _move(
    session: Session,
    row: _Instance,
    target: TaskInstanceStatus,
    recorder: ChangeRecorder,
    *,
    now: dt.datetime,
) -> Transition:
    """Apply ``target`` to the instance if valid, and the matching change to its task."""
    decision = decide(_I(row.status), target)
    if decision is not Transition.VALID:
        return decision
    sql.execute(
        session,
        "UPDATE task_instance SET status = ?, status_date = ? WHERE id = ?",
        (target.value, sql.timestamp(session, now), row.id),
    )
    row.status = target.value
    recorder.instance(row.workflow_id, row.id, target.value, row.task_id)
    task_target = _TASK_FOLLOWS.get(target)
    if task_target is not None:
        _move_task(session, row, task_target, recorder, now=now)
    return decision


def _move_task(
    session: Session,
    row: _Instance,
    target: TaskStatus,
    recorder: ChangeRecorder,
    *,
    now: dt.datetime,
) -> bool:
    if decide(_T(row.task_status), target) is not Transition.VALID:
        return False
    sql.execute(
        session,
        "UPDATE task SET status = ?, status_date = ? WHERE id = ?",
        (target.value, sql.timestamp(session, now), row.task_id),
    )
    row.task_status = target.value
    recorder.task(row.workflow_id, row.task_id, target.value)
    return True


def _task_after_error(
    session: Session, row: _Instance, recorder: ChangeRecorder, *, now: dt.datetime
) -> None:
    """E, then a retry (G), resource adjustment (A) or the end (F) for the failed attempt."""
    if not _move_task(session, row, _T.ERROR_RECOVERABLE, recorder, now=now):
        return
    if row.num_attempts >= row.max_attempts:
        target = _T.ERROR_FATAL
    elif row.status == _I.RESOURCE_ERROR.value:
        target = _T.ADJUSTING_RESOURCES
    else:
        target = _T.REGISTERING
    _move_task(session, row, target, recorder, now=now)
    logger.info(
        "task_attempt_failed",
        task_id=row.task_id,
        task_instance_id=row.id,
        attempts=row.num_attempts,
        max_attempts=row.max_attempts,
        next_status=target.value,
    )


def _task_after_kill(
    session: Session, row: _Instance, recorder: ChangeRecorder, *, now: dt.datetime
) -> None:
    """Back to G: a kill (a stop or a resume) is not the task's failure, and its run has ended,
    so the task waits, unstarted, for the run that resumes the workflow."""
    _move_task(session, row, _T.REGISTERING, recorder, now=now)


def _log_error(session: Session, instance_id: int, description: str, now: dt.datetime) -> None:
    sql.execute(
        session,
        "INSERT INTO task_instance_error_log (task_instance_id, error_time, description) "
        "VALUES (?, ?, ?)",
        (instance_id, sql.timestamp(session, now), description),
    )


def _transitions(ids: Sequence[int], rows: Sequence[_Instance]) -> dschemas.TransitionsOut:
    statuses = {row.id: row.status for row in rows}
    missing = [i for i in ids if i not in statuses]
    if missing:
        raise NotFoundError(
            f"task instances {missing[:10]} do not exist", details={"task_instance_ids": missing}
        )
    return dschemas.TransitionsOut(task_instance_ids=list(ids), statuses=[statuses[i] for i in ids])


def _workflow_of_run(session: Session, run_id: int) -> int:
    row = sql.fetch_one(session, "SELECT workflow_id FROM workflow_run WHERE id = ?", (run_id,))
    if row is None:
        raise NotFoundError(f"workflow run {run_id} does not exist", details={"value": run_id})
    return int(row[0])


# --- the swarm queues tasks ---------------------------------------------------------------------


def queue_tasks(
    session: Session, run_id: int, request: sschemas.QueueTasksIn, recorder: ChangeRecorder
) -> sschemas.TaskStatusesOut:
    """One new instance (Q) for each requested task in G or A; every task's status back."""
    workflow_id = _workflow_of_run(session, run_id)
    adjusted = dict(zip(request.task_ids, request.task_resources_ids or (), strict=False))
    rows: list[tuple[int, str, int, int]] = []
    for part in chunked(sorted(set(request.task_ids)), _CHUNK):
        rows += sql.fetch_all(
            session,
            "SELECT id, status, array_id, task_resources_id FROM task "
            f"WHERE workflow_id = ? AND id IN {sql.in_list(len(part))} "
            f"ORDER BY id{sql.for_update(session)}",
            (workflow_id, *part),
        )
    statuses = {row[0]: row[1] for row in rows}
    missing = [task_id for task_id in request.task_ids if task_id not in statuses]
    if missing:
        raise NotFoundError(
            f"tasks {missing[:10]} are not tasks of workflow {workflow_id}",
            details={"task_ids": missing[:100]},
        )
    now = sql.timestamp(session, models.utcnow())
    to_queue = [
        (task_id, array_id, adjusted.get(task_id) or resources_id)
        for task_id, status, array_id, resources_id in rows
        if status in _QUEUEABLE
    ]
    sql.execute_many(
        session,
        "UPDATE task SET status = 'Q', status_date = ?, num_attempts = num_attempts + 1, "
        "task_resources_id = ? WHERE id = ?",
        [(now, resources_id, task_id) for task_id, _, resources_id in to_queue],
    )
    sql.execute_many(
        session,
        "INSERT INTO task_instance (workflow_run_id, task_id, array_id, task_resources_id, "
        "status, status_date) VALUES (?, ?, ?, ?, 'Q', ?)",
        [
            (run_id, task_id, array_id, resources_id, now)
            for task_id, array_id, resources_id in to_queue
        ],
    )
    queued = [task_id for task_id, _, _ in to_queue]
    for part in chunked(queued, _CHUNK):
        for task_id, instance_id in sql.fetch_all(
            session,
            "SELECT task_id, id FROM task_instance WHERE workflow_run_id = ? AND status = 'Q' "
            f"AND task_id IN {sql.in_list(len(part))}",
            (run_id, *part),
        ):
            recorder.task(workflow_id, task_id, "Q")
            recorder.instance(workflow_id, instance_id, "Q", task_id)
            statuses[task_id] = "Q"
    return sschemas.TaskStatusesOut(
        task_ids=list(request.task_ids), statuses=[statuses[t] for t in request.task_ids]
    )


# --- the distributor claims, launches, reports failures ------------------------------------------


def claim(
    session: Session, run_id: int, request: dschemas.ClaimIn, recorder: ChangeRecorder
) -> dschemas.ClaimedOut:
    """Move up to ``limit`` queued instances of the run to I and describe them for submission.

    A replayed claim (same ``claim_id``) answers with what the first one took, so instances
    whose claim answer was lost on the network are not stranded in I.
    """
    workflow_id = _workflow_of_run(session, run_id)
    replayed = _claimed_before(session, run_id, request.claim_id)
    if replayed:
        return _describe_claimed(session, run_id, workflow_id, replayed)
    ids = _claimable(session, run_id, request)
    now = models.utcnow()
    stamp = sql.timestamp(session, now)
    for part in chunked(ids, _CHUNK):
        tasks = sql.fetch_all(
            session,
            f"SELECT ti.id, ti.task_id, t.status FROM task_instance ti JOIN task t "
            f"ON t.id = ti.task_id WHERE ti.id IN {sql.in_list(len(part))} ORDER BY ti.id",
            part,
        )
        sql.execute_many(
            session,
            "UPDATE task_instance SET status = 'I', status_date = ?, claim_id = ? WHERE id = ?",
            [(stamp, request.claim_id, row[0]) for row in tasks],
        )
        sql.execute_many(
            session,
            "UPDATE task SET status = 'I', status_date = ? WHERE id = ? AND status = 'Q'",
            [(stamp, row[1]) for row in tasks],
        )
        for instance_id, task_id, task_status in tasks:
            recorder.instance(workflow_id, instance_id, "I", task_id)
            if task_status == "Q":
                recorder.task(workflow_id, task_id, "I")
    return _describe_claimed(session, run_id, workflow_id, ids)


def _claimed_before(session: Session, run_id: int, claim_id: str | None) -> list[int]:
    if claim_id is None:
        return []
    return [
        row[0]
        for row in sql.fetch_all(
            session,
            "SELECT id FROM task_instance WHERE workflow_run_id = ? AND status = 'I' "
            "AND claim_id = ? ORDER BY id",
            (run_id, claim_id),
        )
    ]


def _claimable(session: Session, run_id: int, request: dschemas.ClaimIn) -> list[int]:
    """The oldest queued instances of the run (on the named cluster), locked for this claim."""
    # Lock only the instances (their tasks and shared resource rows stay free), and skip those
    # another claimer holds: two distributors never block each other or take one instance.
    lock = " FOR UPDATE SKIP LOCKED" if sql.for_update(session) else ""
    where = ""
    params: list[object] = [run_id]
    if request.cluster_name is not None:
        where = (
            " AND EXISTS (SELECT 1 FROM task t JOIN cluster c ON c.id = t.cluster_id "
            "WHERE t.id = task_instance.task_id AND c.name = ?)"
        )
        params.append(request.cluster_name)
    return [
        row[0]
        for row in sql.fetch_all(
            session,
            f"SELECT id FROM task_instance WHERE workflow_run_id = ? AND status = 'Q'{where} "
            f"ORDER BY id LIMIT ?{lock}",
            (*params, request.limit),
        )
    ]


def _describe_claimed(
    session: Session, run_id: int, workflow_id: int, ids: Sequence[int]
) -> dschemas.ClaimedOut:
    claimed: list[dschemas.ClaimedInstance] = []
    for part in chunked(list(ids), _CHUNK):
        for row in sql.fetch_all(
            session,
            "SELECT ti.id, ti.task_id, ti.array_id, t.name, t.command, r.requested "
            "FROM task_instance ti JOIN task t ON t.id = ti.task_id "
            "JOIN task_resources r ON r.id = ti.task_resources_id "
            f"WHERE ti.id IN {sql.in_list(len(part))} ORDER BY ti.id",
            part,
        ):
            instance_id, task_id, array_id, name, command, requested = row
            resources = json.loads(requested)
            claimed.append(
                dschemas.ClaimedInstance(
                    task_instance_id=instance_id,
                    task_id=task_id,
                    array_id=array_id,
                    name=name,
                    command=command,
                    queue=str(resources.get("queue", "")),
                    resources=resources,
                )
            )
    arrays = _arrays(session, {instance.array_id for instance in claimed})
    for instance in claimed:
        instance.array_name, instance.array_limit = arrays.get(instance.array_id, ("", None))
    return dschemas.ClaimedOut(workflow_run_id=run_id, workflow_id=workflow_id, instances=claimed)


def _arrays(session: Session, array_ids: set[int]) -> dict[int, tuple[str, int | None]]:
    """Array id -> (name, max_concurrently_running), for naming and throttling job arrays."""
    found: dict[int, tuple[str, int | None]] = {}
    for part in chunked(sorted(array_ids), _CHUNK):
        rows = session.execute(
            select(models.Array.id, models.Array.name, models.Array.max_concurrently_running).where(
                models.Array.id.in_(part)
            )
        ).tuples()
        found.update({array_id: (name, limit) for array_id, name, limit in rows})
    return found


def launched(
    session: Session, request: dschemas.LaunchedIn, recorder: ChangeRecorder
) -> dschemas.TransitionsOut:
    """Record job ids; I -> O, or just the job id when the worker reported first."""
    by_id = {item.task_instance_id: item for item in request.items}
    rows = _load(session, list(by_id))
    now = models.utcnow()
    stamp = sql.timestamp(session, now)
    sql.execute_many(
        session,
        "UPDATE task_instance SET distributor_id = ?, array_batch_num = ?, array_step_id = ?, "
        "submitted_date = COALESCE(submitted_date, ?) WHERE id = ?",
        [
            (
                by_id[row.id].distributor_id,
                by_id[row.id].array_batch_num,
                by_id[row.id].array_step_id,
                stamp,
                row.id,
            )
            for row in rows
        ],
    )
    for row in rows:
        _move(session, row, _I.LAUNCHED, recorder, now=now)
    return _transitions(list(by_id), rows)


def submit_failed(
    session: Session, request: dschemas.SubmitFailedIn, recorder: ChangeRecorder
) -> dschemas.TransitionsOut:
    """The cluster refused the jobs: I -> W, an error log with its message, the task retried."""
    rows = _load(session, request.task_instance_ids)
    now = models.utcnow()
    for row in rows:
        if _move(session, row, _I.NO_DISTRIBUTOR_ID, recorder, now=now) is Transition.VALID:
            _log_error(session, row.id, f"submission failed: {request.message}", now)
            _task_after_error(session, row, recorder, now=now)
    return _transitions(request.task_instance_ids, rows)


def finish_without_running(
    session: Session, request: dschemas.FinishIn, recorder: ChangeRecorder
) -> dschemas.TransitionsOut:
    """The dummy cluster: instances (and tasks) go to D as if their command had succeeded.

    Done in bulk, since scale tests send tens of thousands at a time: instances in I or O, and
    their tasks, pass through R to D in two statements; anything else is left as it is.
    """
    rows = _load(session, request.task_instance_ids)
    movable = [
        row
        for row in rows
        if decide(_I(row.status), _I.RUNNING) is Transition.VALID
        and decide(_T(row.task_status), _T.RUNNING) is Transition.VALID
    ]
    stamp = sql.timestamp(session, models.utcnow())
    sql.execute_many(
        session,
        "UPDATE task_instance SET status = 'D', status_date = ?, exit_code = 0 WHERE id = ?",
        [(stamp, row.id) for row in movable],
    )
    sql.execute_many(
        session,
        "UPDATE task SET status = 'D', status_date = ? WHERE id = ?",
        [(stamp, row.task_id) for row in movable],
    )
    for row in movable:
        for status in ("R", "D"):
            recorder.instance(row.workflow_id, row.id, status, row.task_id)
            recorder.task(row.workflow_id, row.task_id, status)
        row.status = row.task_status = "D"
    return _transitions(request.task_instance_ids, rows)


# --- the worker reports -------------------------------------------------------------------------


def instance_running(
    session: Session,
    instance_id: int,
    request: wschemas.InstanceRunningIn,
    recorder: ChangeRecorder,
) -> wschemas.InstanceRunningOut:
    if request.herdsman_version != __version__:
        raise ConflictError(
            f"the worker runs herdsman {request.herdsman_version} but the server runs "
            f"{__version__}; install the same version on the cluster nodes",
            details={"worker_version": request.herdsman_version, "server_version": __version__},
        )
    row = _load_one(session, instance_id)
    now = models.utcnow()
    if _move(session, row, _I.RUNNING, recorder, now=now) is Transition.VALID:
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
    details = sql.fetch_one(
        session,
        "SELECT t.name, t.command, r.requested FROM task t "
        "JOIN task_resources r ON r.id = ? WHERE t.id = ?",
        (row.task_resources_id, row.task_id),
    )
    assert details is not None
    name, command, requested = details
    resources = json.loads(requested)
    memory, runtime = wschemas.enforceable_limits(resources)
    return wschemas.InstanceRunningOut(
        status=row.status,
        task_instance_id=row.id,
        task_id=row.task_id,
        workflow_id=row.workflow_id,
        workflow_run_id=row.workflow_run_id,
        name=name,
        command=command,
        stdout_dir=resources.get("stdout"),
        stderr_dir=resources.get("stderr"),
        memory=memory,
        runtime=runtime,
    )


def instance_heartbeat(
    session: Session, instance_id: int, request: wschemas.InstanceHeartbeatIn
) -> wschemas.InstanceStatusOut:
    row = _load_one(session, instance_id)
    if row.status in ("R", "T"):
        report_by = _report_by(models.utcnow(), request.next_report_seconds)
        sql.execute(
            session,
            "UPDATE task_instance SET report_by_date = ?, "
            "stdout_tail = COALESCE(?, stdout_tail), stderr_tail = COALESCE(?, stderr_tail) "
            "WHERE id = ?",
            (sql.timestamp(session, report_by), request.stdout_tail, request.stderr_tail, row.id),
        )
    return wschemas.InstanceStatusOut(task_instance_id=row.id, status=row.status)


def instance_done(
    session: Session, instance_id: int, request: wschemas.InstanceDoneIn, recorder: ChangeRecorder
) -> wschemas.InstanceStatusOut:
    row = _load_one(session, instance_id)
    if _move(session, row, _I.DONE, recorder, now=models.utcnow()) is Transition.VALID:
        _record_outcome(session, row.id, request.exit_code, request)
    return wschemas.InstanceStatusOut(task_instance_id=row.id, status=row.status)


def instance_error(
    session: Session, instance_id: int, request: wschemas.InstanceErrorIn, recorder: ChangeRecorder
) -> wschemas.InstanceStatusOut:
    row = _load_one(session, instance_id)
    now = models.utcnow()
    killed = row.status == _I.KILL_SELF.value
    if _move(session, row, _I(request.status), recorder, now=now) is Transition.VALID:
        _record_outcome(session, row.id, request.exit_code, request)
        _log_error(session, row.id, request.message, now)
        if killed:
            _task_after_kill(session, row, recorder, now=now)
        else:
            _task_after_error(session, row, recorder, now=now)
    return wschemas.InstanceStatusOut(task_instance_id=row.id, status=row.status)


def _record_outcome(
    session: Session,
    instance_id: int,
    exit_code: int | None,
    report: wschemas.InstanceDoneIn | wschemas.InstanceErrorIn,
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
            instance_id,
        ),
    )


def _report_by(now: dt.datetime, seconds: float) -> dt.datetime:
    return now + dt.timedelta(seconds=seconds)


# --- the distributor triages lost instances and carries out kills ---------------------------------

# Instance statuses that still need someone: the cluster has (or may have) a job for them.
LIVE_INSTANCE_STATUSES = ("I", "O", "R", "T", "X", "K")
# The error log of an instance its distributor killed on request.
_KILLED_MESSAGE = (
    "killed on request: its workflow run was stopped, or a resume of the workflow took over"
)


def triage_scan(
    session: Session, run_id: int, recorder: ChangeRecorder, *, judge_silence: bool = True
) -> dschemas.TriageOut:
    """Move the run's overdue running instances to T; list what the distributor must check.

    An instance is overdue when its worker's last report promised the next one by a time now
    past. Whether it died, was killed for resources or merely lost its network is for the
    cluster to say, so the distributor asks the plugin and reports through :func:`triaged`.
    Without ``judge_silence`` nothing moves to T (see
    :class:`~herdsman.core.schemas.distributor.TriageIn`).
    """
    run = sql.fetch_one(
        session, "SELECT workflow_id, status FROM workflow_run WHERE id = ?", (run_id,)
    )
    if run is None:
        raise NotFoundError(f"workflow run {run_id} does not exist", details={"value": run_id})
    now = models.utcnow()
    overdue = (
        [
            row[0]
            for row in sql.fetch_all(
                session,
                "SELECT id FROM task_instance WHERE workflow_run_id = ? AND status = 'R' "
                "AND report_by_date < ?",
                (run_id, sql.timestamp(session, now)),
            )
        ]
        if judge_silence
        else []
    )
    for row in _load(session, overdue):
        if _move(session, row, _I.TRIAGING, recorder, now=now) is Transition.VALID:
            logger.info("task_instance_overdue", task_instance_id=row.id, task_id=row.task_id)
    # Counted, not listed: a run may have a hundred thousand running instances, and only
    # the launched, silent and doomed ones need the cluster's word.
    live = sum(
        count
        for _, count in sql.fetch_all(
            session,
            "SELECT status, COUNT(*) FROM task_instance WHERE workflow_run_id = ? "
            f"AND status IN {sql.in_list(len(LIVE_INSTANCE_STATUSES))} GROUP BY status",
            (run_id, *LIVE_INSTANCE_STATUSES),
        )
    )
    refs: dict[str, list[dschemas.InstanceRef]] = {"O": [], "T": [], "X": [], "K": []}
    for instance_id, distributor_id, status in sql.fetch_all(
        session,
        "SELECT id, distributor_id, status FROM task_instance WHERE workflow_run_id = ? "
        f"AND status IN {sql.in_list(len(refs))} ORDER BY id",
        (run_id, *refs),
    ):
        refs[status].append(
            dschemas.InstanceRef(
                task_instance_id=instance_id, distributor_id=distributor_id, status=status
            )
        )
    return dschemas.TriageOut(
        workflow_run_id=run_id,
        run_status=run[1],
        launched=refs["O"],
        triaging=refs["T"] + refs["X"],
        kill=refs["K"],
        live=live,
    )


def triaged(
    session: Session, request: dschemas.TriagedIn, recorder: ChangeRecorder
) -> dschemas.TransitionsOut:
    """Record what the cluster said: T -> E/Z/U, or O -> X -> E for a job that never ran.

    Each outcome is an error of the attempt, so the task moves on as after any error: a retry,
    resource adjustment (Z) or F. An instance that reported meanwhile (it is R or final now)
    is left alone: its own report is better evidence than the cluster's.
    """
    by_id = {item.task_instance_id: item for item in request.items}
    rows = _load(session, list(by_id))
    now = models.utcnow()
    for row in rows:
        item = by_id[row.id]
        if row.status == _I.LAUNCHED.value:
            if _move(session, row, _I.NO_HEARTBEAT, recorder, now=now) is not Transition.VALID:
                continue
            target = _I.ERROR
        elif row.status == _I.NO_HEARTBEAT.value:
            target = _I.ERROR
        elif row.status == _I.TRIAGING.value:
            target = _I(item.status)
        else:
            continue
        if _move(session, row, target, recorder, now=now) is Transition.VALID:
            _log_error(session, row.id, item.message, now)
            if item.usage is not None:
                _record_cluster_usage(session, row.id, item.usage)
            _task_after_error(session, row, recorder, now=now)
    return _transitions(list(by_id), rows)


def _record_cluster_usage(session: Session, instance_id: int, usage: wschemas.Usage) -> None:
    """The cluster's measure of a job whose worker could not report; the worker's own wins."""
    sql.execute(
        session,
        "UPDATE task_instance SET wall_time = COALESCE(wall_time, ?), "
        "cpu_time = COALESCE(cpu_time, ?), max_rss = COALESCE(max_rss, ?) WHERE id = ?",
        (usage.wall_time, usage.cpu_time, usage.max_rss, instance_id),
    )


def request_kills(
    session: Session,
    run_id: int,
    statuses: Sequence[str],
    recorder: ChangeRecorder,
) -> int:
    """Tell the run's instances in ``statuses`` to die (-> K); how many now wait for a kill.

    Queued instances have no job yet, so their kill is settled at once (K -> F); the others
    wait for the run's distributor (or, for a running one, its worker's next heartbeat).
    """
    if not statuses:
        return 0
    ids = [
        row[0]
        for row in sql.fetch_all(
            session,
            "SELECT id FROM task_instance WHERE workflow_run_id = ? "
            f"AND status IN {sql.in_list(len(statuses))}",
            (run_id, *statuses),
        )
    ]
    now = models.utcnow()
    waiting = 0
    for row in _load(session, ids):
        was_queued = row.status == _I.QUEUED.value
        if _move(session, row, _I.KILL_SELF, recorder, now=now) is not Transition.VALID:
            continue
        if was_queued:
            _move(session, row, _I.ERROR_FATAL, recorder, now=now)
            _task_after_kill(session, row, recorder, now=now)
        else:
            waiting += 1
    if ids:
        logger.info("kills_requested", workflow_run_id=run_id, instances=len(ids), waiting=waiting)
    return waiting


def kills_done(
    session: Session, request: dschemas.KilledIn, recorder: ChangeRecorder
) -> tuple[dschemas.TransitionsOut, set[int]]:
    """K -> F for each killed instance; also the ids of the runs they belong to."""
    rows = _load(session, request.task_instance_ids)
    now = models.utcnow()
    for row in rows:
        if _move(session, row, _I.ERROR_FATAL, recorder, now=now) is Transition.VALID:
            _log_error(session, row.id, _KILLED_MESSAGE, now)
            _task_after_kill(session, row, recorder, now=now)
    return _transitions(request.task_instance_ids, rows), {row.workflow_run_id for row in rows}


def count_kills_waiting(session: Session, run_id: int) -> int:
    row = sql.fetch_one(
        session,
        "SELECT COUNT(*) FROM task_instance WHERE workflow_run_id = ? AND status = 'K'",
        (run_id,),
    )
    return int(row[0]) if row else 0


def force_kills_done(session: Session, run_id: int, message: str, recorder: ChangeRecorder) -> int:
    """Settle every kill request of the run without its distributor; how many were settled."""
    ids = [
        row[0]
        for row in sql.fetch_all(
            session,
            "SELECT id FROM task_instance WHERE workflow_run_id = ? AND status = 'K'",
            (run_id,),
        )
    ]
    now = models.utcnow()
    settled = 0
    for row in _load(session, ids):
        if _move(session, row, _I.ERROR_FATAL, recorder, now=now) is Transition.VALID:
            _log_error(session, row.id, message, now)
            _task_after_kill(session, row, recorder, now=now)
            settled += 1
    return settled
