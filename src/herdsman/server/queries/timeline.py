"""A workflow's tasks by status over time, added up from the kept history of status changes.

``task_status_history`` holds, per ten-second interval and status, how many tasks entered and
left it (:mod:`herdsman.server.database.task_counts`). One ``GROUP BY`` sums those rows into
at most ``buckets`` wider buckets: its cost grows with how long the workflow has run, not with
its tasks or their changes. The number of tasks in each status at the end of each bucket is
then counted back from the kept counts of now, so the last point is exact and every earlier
one is now less what changed since.
"""

from __future__ import annotations

import math
from collections import defaultdict

from sqlalchemy.orm import Session

from herdsman.core.schemas.queries import TimelineOut
from herdsman.core.statuses import TaskStatus
from herdsman.server.database import sql
from herdsman.server.database.models import HISTORY_SECONDS
from herdsman.server.queries.lookups import require_workflow

__all__ = ["MAX_BUCKETS", "workflow_timeline"]

MAX_BUCKETS = 500


def workflow_timeline(session: Session, workflow_id: int, buckets: int) -> TimelineOut:
    """The workflow's tasks by status at the end of each of up to ``buckets`` equal buckets."""
    workflow = require_workflow(session, workflow_id)
    now = {
        str(status): int(number)
        for status, number in sql.fetch_all(
            session,
            "SELECT status, SUM(num) FROM task_status_count WHERE workflow_id = ? GROUP BY status",
            (workflow_id,),
        )
    }
    span = sql.fetch_one(
        session,
        "SELECT MIN(bucket_start), MAX(bucket_start) FROM task_status_history "
        "WHERE workflow_id = ?",
        (workflow_id,),
    )
    letters = [status.value for status in TaskStatus]
    if span is None or span[0] is None:
        return TimelineOut(
            workflow_id=workflow_id,
            bucket_seconds=HISTORY_SECONDS,
            times=[],
            statuses={letter: [] for letter in letters},
            running=[],
            max_concurrently_running=workflow.max_concurrently_running,
        )
    first, last = int(span[0]), int(span[1])
    width = _bucket_width(last - first + HISTORY_SECONDS, buckets)
    divide = " DIV " if session.get_bind().dialect.name in ("mysql", "mariadb") else " / "
    net: dict[int, dict[str, int]] = defaultdict(dict)
    for bucket, status, entered, exited in sql.fetch_all(
        session,
        "SELECT bucket, status, SUM(entered), SUM(exited) FROM ("
        f"SELECT (bucket_start - ?){divide}? AS bucket, status, entered, exited "
        "FROM task_status_history WHERE workflow_id = ?) AS history GROUP BY bucket, status",
        (first, width, workflow_id),
    ):
        net[int(bucket)][str(status)] = int(entered) - int(exited)
    count = (last - first) // width + 1
    # Walk back from now: the state at the end of bucket k is the state at the end of k + 1
    # less what bucket k + 1 changed.
    state = {letter: now.get(letter, 0) for letter in letters}
    series: dict[str, list[int]] = {letter: [0] * (count + 1) for letter in letters}
    for index in range(count, -1, -1):
        for letter in letters:
            series[letter][index] = state[letter]
        if index > 0:
            for letter, change in net.get(index - 1, {}).items():
                state[letter] = state.get(letter, 0) - change
    times = [first + index * width for index in range(count + 1)]
    return TimelineOut(
        workflow_id=workflow_id,
        bucket_seconds=width,
        times=times,
        statuses=series,
        running=series[TaskStatus.RUNNING.value],
        max_concurrently_running=workflow.max_concurrently_running,
    )


def _bucket_width(seconds: int, buckets: int) -> int:
    """The narrowest multiple of the history's interval that covers ``seconds`` in
    ``buckets`` buckets."""
    intervals = math.ceil(seconds / HISTORY_SECONDS)
    return HISTORY_SECONDS * max(1, math.ceil(intervals / max(1, buckets)))
