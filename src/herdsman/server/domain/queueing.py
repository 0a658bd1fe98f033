"""Queueing tasks (the swarm) and claiming their attempts (the distributor), in bulk.

Both are bulk moves: the swarm queues thousands of tasks in one request and the distributor
claims them in one. Each is a fixed pair of moves that the tables allow and
:mod:`herdsman.core.lifecycle` names, so they are written as a few statements over all the rows
instead of row by row: a queueable task (G or A) becomes queued (Q) with a new queued attempt;
a queued attempt becomes instantiated (I), and its task with it when the task is still queued.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from herdsman.core import lifecycle
from herdsman.core.errors import NotFoundError
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import swarm as sschemas
from herdsman.core.statuses import TaskInstanceStatus, TaskStatus
from herdsman.server.database import models, sql
from herdsman.server.database.bulk import chunked, insert_rows
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.domain.transitions import CHUNK, workflow_of_run

__all__ = ["claim", "queue_tasks"]

_QUEUED_TASK = TaskStatus.QUEUED
_QUEUED = TaskInstanceStatus.QUEUED
_CLAIMED = TaskInstanceStatus.INSTANTIATED
# A claimed attempt moves its still-queued task with it (lifecycle.task_status_for_instance).
_CLAIMED_TASK = TaskStatus.INSTANTIATING
_QUEUEABLE = frozenset(status.value for status in lifecycle.QUEUEABLE_TASK_STATUSES)


def queue_tasks(
    session: Session, run_id: int, request: sschemas.QueueTasksIn, recorder: ChangeRecorder
) -> sschemas.TaskStatusesOut:
    """One new attempt (Q) for each requested task that is queueable; every task's status back."""
    workflow_id = workflow_of_run(session, run_id)
    adjusted = dict(zip(request.task_ids, request.task_resources_ids or (), strict=False))
    rows: list[tuple[int, str, int, int, int, object]] = []
    for part in chunked(sorted(set(request.task_ids)), CHUNK):
        rows += sql.fetch_all(
            session,
            "SELECT id, status, array_id, task_resources_id, num_attempts, removed_date FROM task "
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
    # A task a resume removed is never queued: a run that still has it (one the resume is
    # taking over) gets its status back, as for any task that is not queueable.
    to_queue = [
        (task_id, array_id, adjusted.get(task_id) or resources_id)
        for task_id, status, array_id, resources_id, _, removed_date in rows
        if status in _QUEUEABLE and removed_date is None
    ]
    by_resources: dict[int, list[int]] = {}
    for task_id, _, resources_id in to_queue:
        by_resources.setdefault(resources_id, []).append(task_id)
    for resources_id, task_ids in by_resources.items():  # a handful of requests per batch
        sql.update_ids(
            session,
            "UPDATE task SET status = ?, status_date = ?, num_attempts = num_attempts + 1, "
            "task_resources_id = ? WHERE",
            (_QUEUED_TASK.value, now, resources_id),
            task_ids,
        )
    requests = _requests(session, {resources_id for _, _, resources_id in to_queue})
    insert_rows(
        session,
        models.TaskInstance,
        (
            "workflow_run_id",
            "task_id",
            "array_id",
            "task_resources_id",
            "status",
            "status_date",
            "requested_memory",
            "requested_runtime",
            "requested_cores",
        ),
        [
            (run_id, task_id, array_id, resources_id, _QUEUED.value, now, *requests[resources_id])
            for task_id, array_id, resources_id in to_queue
        ],
    )
    queued = [task_id for task_id, _, _ in to_queue]
    arrays = {task_id: array_id for task_id, array_id, _ in to_queue}
    spent = {row[0]: row[4] for row in rows}
    for part in chunked(queued, CHUNK):
        for task_id, instance_id in sql.fetch_all(
            session,
            "SELECT task_id, id FROM task_instance WHERE workflow_run_id = ? AND status = ? "
            f"AND task_id IN {sql.in_list(len(part))}",
            (run_id, _QUEUED.value, *part),
        ):
            recorder.task(
                workflow_id,
                task_id,
                _QUEUED_TASK,
                previous=statuses[task_id],
                array_id=arrays[task_id],
                attempts=spent[task_id],
                attempts_after=spent[task_id] + 1,
            )
            recorder.instance(workflow_id, instance_id, _QUEUED, task_id)
            statuses[task_id] = _QUEUED_TASK.value
    return sschemas.TaskStatusesOut(
        task_ids=list(request.task_ids), statuses=[statuses[t] for t in request.task_ids]
    )


_GIB = 1024**3


def _requests(
    session: Session, resources_ids: set[int]
) -> dict[int, tuple[int | None, float | None, int | None]]:
    """Memory (bytes), runtime (s) and cores of each resource request, for the attempt's row.

    Requests are shared by content, so a batch of a thousand tasks names a handful at most.
    """
    found: dict[int, tuple[int | None, float | None, int | None]] = {}
    for part in chunked(sorted(resources_ids), CHUNK):
        for resources_id, requested in sql.fetch_all(
            session,
            f"SELECT id, requested FROM task_resources WHERE id IN {sql.in_list(len(part))}",
            part,
        ):
            values = json.loads(requested)
            memory, runtime, cores = (_number(values.get(key)) for key in _REQUESTED)
            found[resources_id] = (
                None if memory is None else round(memory * _GIB),
                runtime,
                None if cores is None else int(cores),
            )
    return found


_REQUESTED = ("memory", "runtime", "cores")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def claim(
    session: Session, run_id: int, request: dschemas.ClaimIn, recorder: ChangeRecorder
) -> dschemas.ClaimedOut:
    """Move up to ``limit`` queued attempts of the run to I and describe them for submission.

    A replayed claim (same ``claim_id``) answers with what the first one took, so attempts
    whose claim answer was lost on the network are not stranded in I.
    """
    workflow_id = workflow_of_run(session, run_id)
    replayed = _claimed_before(session, run_id, request.claim_id)
    if replayed:
        return _describe_claimed(session, run_id, workflow_id, replayed)
    ids = _claimable(session, run_id, request)
    stamp = sql.timestamp(session, models.utcnow())
    for part in chunked(ids, CHUNK):
        # The tasks' rows are locked with the attempts' (already ours): a task's status read
        # here must still hold when it is changed below, or the change feed and the kept task
        # counts would record a move that an owner's concurrent update made void.
        condition, params = sql.id_in(session, "ti.id", part)
        tasks = sql.fetch_all(
            session,
            "SELECT ti.id, ti.task_id, t.status, t.array_id, t.num_attempts "
            f"FROM task_instance ti JOIN task t ON t.id = ti.task_id WHERE {condition} "
            f"ORDER BY ti.id{sql.for_update(session)}",
            params,
        )
        sql.update_ids(
            session,
            "UPDATE task_instance SET status = ?, status_date = ?, claim_id = ? WHERE",
            (_CLAIMED.value, stamp, request.claim_id),
            [row[0] for row in tasks],
        )
        sql.update_ids(
            session,
            "UPDATE task SET status = ?, status_date = ? WHERE status = ? AND",
            (_CLAIMED_TASK.value, stamp, _QUEUED_TASK.value),
            [row[1] for row in tasks],
        )
        for instance_id, task_id, task_status, array_id, attempts in tasks:
            recorder.instance(workflow_id, instance_id, _CLAIMED, task_id)
            if task_status == _QUEUED_TASK:
                recorder.task(
                    workflow_id,
                    task_id,
                    _CLAIMED_TASK,
                    previous=task_status,
                    array_id=array_id,
                    attempts=attempts,
                )
    return _describe_claimed(session, run_id, workflow_id, ids)


def _claimed_before(session: Session, run_id: int, claim_id: str | None) -> list[int]:
    if claim_id is None:
        return []
    return [
        row[0]
        for row in sql.fetch_all(
            session,
            "SELECT id FROM task_instance WHERE workflow_run_id = ? AND status = ? "
            "AND claim_id = ? ORDER BY id",
            (run_id, _CLAIMED.value, claim_id),
        )
    ]


def _claimable(session: Session, run_id: int, request: dschemas.ClaimIn) -> list[int]:
    """The oldest queued attempts of the run (on the named cluster), locked for this claim."""
    # Lock only the attempts (their tasks and shared resource rows stay free), and skip those
    # another claimer holds: two distributors never block each other or take one attempt.
    lock = " FOR UPDATE SKIP LOCKED" if sql.for_update(session) else ""
    where = ""
    params: list[object] = [run_id, _QUEUED.value]
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
            f"SELECT id FROM task_instance WHERE workflow_run_id = ? AND status = ?{where} "
            f"ORDER BY id LIMIT ?{lock}",
            (*params, request.limit),
        )
    ]


def _describe_claimed(
    session: Session, run_id: int, workflow_id: int, ids: Sequence[int]
) -> dschemas.ClaimedOut:
    rows: list[tuple[Any, ...]] = []
    for part in chunked(list(ids), CHUNK):
        condition, params = sql.id_in(session, "ti.id", part)
        rows += sql.fetch_all(
            session,
            "SELECT ti.id, ti.task_id, ti.array_id, t.name, t.command, r.requested "
            "FROM task_instance ti JOIN task t ON t.id = ti.task_id "
            "JOIN task_resources r ON r.id = ti.task_resources_id "
            f"WHERE {condition} ORDER BY ti.id",
            params,
        )
    arrays = _arrays(session, {row[2] for row in rows})
    # Tasks of a template mostly share one resources row: decode each distinct one once.
    decoded: dict[str, dict[str, Any]] = {}
    claimed: list[dschemas.ClaimedInstance] = []
    for instance_id, task_id, array_id, name, command, requested in rows:
        resources = decoded.get(requested)
        if resources is None:
            resources = decoded[requested] = json.loads(requested)
        array_name, array_limit = arrays.get(array_id, ("", None))
        # Built from the database's own rows: nothing to validate, and validating thousands of
        # instances per claim was a large part of its cost.
        claimed.append(
            dschemas.ClaimedInstance.model_construct(
                task_instance_id=instance_id,
                task_id=task_id,
                array_id=array_id,
                name=name,
                command=command,
                queue=str(resources.get("queue", "")),
                resources=resources,
                array_name=array_name,
                array_limit=array_limit,
            )
        )
    return dschemas.ClaimedOut.model_construct(
        workflow_run_id=run_id, workflow_id=workflow_id, instances=claimed
    )


def _arrays(session: Session, array_ids: set[int]) -> dict[int, tuple[str, int | None]]:
    """Array id -> (name, max_concurrently_running), for naming and throttling job arrays."""
    found: dict[int, tuple[str, int | None]] = {}
    for part in chunked(sorted(array_ids), CHUNK):
        rows = session.execute(
            select(models.Array.id, models.Array.name, models.Array.max_concurrently_running).where(
                models.Array.id.in_(part)
            )
        ).tuples()
        found.update({array_id: (name, limit) for array_id, name, limit in rows})
    return found
