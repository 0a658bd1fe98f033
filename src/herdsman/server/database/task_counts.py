"""Task counts kept on write: per workflow, array and status, and per ten-second interval.

A page showing a workflow of a million tasks must not count them: ``task_status_count`` holds
how many tasks of each array have each status, and ``task_status_history`` how many entered
and left each status in each interval. Both are changed only by increments
(``num = num + k``) in the transaction that changes the tasks, issued by
:class:`~herdsman.server.database.feed.ChangeRecorder` right after it took the workflow's
change-feed number: that statement locks the workflow's row until commit, so every writer of a
workflow's counts holds that lock first, and two writers can neither lose an increment nor
deadlock over the count rows. No count is ever read in Python and written back.

Bind writes no changes to the feed; :func:`recount_workflow` counts a workflow's tasks once,
when its bind is finished, with one ``INSERT ... SELECT ... GROUP BY``. A task a resume
removed from its workflow leaves the counts (and its status, in the history); its later status
changes (the kill of its last attempt) are not counted.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Dialect
from sqlalchemy.orm import Session

from herdsman.server.database import sql
from herdsman.server.database.models import HISTORY_SECONDS

__all__ = ["TaskCountChanges", "interval_start", "recount_workflow"]

_EPOCH = dt.datetime(1970, 1, 1)


def interval_start(moment: dt.datetime) -> int:
    """The first second (since the epoch, UTC) of the history interval holding ``moment``."""
    seconds = int((moment - _EPOCH).total_seconds())
    return seconds - seconds % HISTORY_SECONDS


@dataclass
class TaskCountChanges:
    """A transaction's task status changes, summed into count increments.

    ``counts`` maps (workflow, array, status) to increments of (tasks, attempts, retries).
    Moves are tallied as they come, one counter increment per task, and summed into
    ``counts`` when read: a claim or a finish moves thousands of tasks along a few paths.
    """

    counts: dict[tuple[int, int, str], list[int]] = field(default_factory=dict)
    entered: Counter[tuple[int, str]] = field(default_factory=Counter)
    exited: Counter[tuple[int, str]] = field(default_factory=Counter)
    moves: Counter[tuple[int, int, str, str, int, int]] = field(default_factory=Counter)

    def move(
        self,
        workflow_id: int,
        array_id: int,
        previous: str,
        status: str,
        *,
        attempts: int,
        attempts_after: int | None = None,
    ) -> None:
        """One task of ``array_id`` went from ``previous`` to ``status``, and from ``attempts``
        spent to ``attempts_after`` (unchanged when None)."""
        after = attempts if attempts_after is None else attempts_after
        self.moves[(workflow_id, array_id, previous, status, attempts, after)] += 1

    def _settle(self) -> None:
        """Sum the tallied moves into ``counts`` and the history."""
        for (workflow_id, array_id, previous, status, attempts, after), n in self.moves.items():
            self._add((workflow_id, array_id, previous), -n, attempts)
            self._add((workflow_id, array_id, status), n, after)
            if previous != status:
                self.exited[(workflow_id, previous)] += n
                self.entered[(workflow_id, status)] += n
        self.moves.clear()

    def leave(self, workflow_id: int, array_id: int, status: str, *, attempts: int) -> None:
        """One task of ``array_id`` with ``status`` left its workflow (a resume removed it): it
        leaves the counts and, in the history, its status."""
        self._add((workflow_id, array_id, status), -1, attempts)
        self.exited[(workflow_id, status)] += 1

    def join(self, workflow_id: int, array_id: int, status: str, *, attempts: int) -> None:
        """A removed task of ``array_id`` with ``status`` is back in its workflow (a later
        resume's script has it again)."""
        self._add((workflow_id, array_id, status), 1, attempts)
        self.entered[(workflow_id, status)] += 1

    def forget(self, workflow_id: int) -> None:
        """Drop the workflow's count increments (its counts were set from its tasks)."""
        self._settle()
        for key in [key for key in self.counts if key[0] == workflow_id]:
            del self.counts[key]

    def workflows(self) -> set[int]:
        """Workflows with increments, of their counts or of their history (which a recount
        leaves to be applied)."""
        self._settle()
        return (
            {workflow_id for workflow_id, _, _ in self.counts}
            | {workflow_id for workflow_id, _ in self.entered}
            | {workflow_id for workflow_id, _ in self.exited}
        )

    def _add(self, key: tuple[int, int, str], tasks: int, attempts: int) -> None:
        """``tasks`` more (or fewer) tasks with ``attempts`` spent each."""
        found = self.counts.setdefault(key, [0, 0, 0])
        found[0] += tasks
        found[1] += tasks * attempts
        found[2] += tasks * max(attempts - 1, 0)

    def apply(self, session: Session, workflow_id: int, now: dt.datetime) -> None:
        """Add this workflow's increments to its count and history rows, in key order."""
        self._settle()
        counts = sorted(
            (key, delta)
            for key, delta in self.counts.items()
            if key[0] == workflow_id and any(delta)
        )
        statuses = sorted(
            {status for wf, status in self.entered if wf == workflow_id}
            | {status for wf, status in self.exited if wf == workflow_id}
        )
        if not counts and not statuses:
            return
        dialect = session.get_bind().dialect
        sql.execute_many(
            session,
            _count_upsert(dialect),
            [(*key, *delta) for key, delta in counts],
        )
        bucket = interval_start(now)
        sql.execute_many(
            session,
            _history_upsert(dialect),
            [
                (
                    workflow_id,
                    bucket,
                    status,
                    self.entered[(workflow_id, status)],
                    self.exited[(workflow_id, status)],
                )
                for status in statuses
            ],
        )


def recount_workflow(session: Session, workflow_id: int) -> None:
    """Set the workflow's counts from its tasks (at the end of its bind); tasks a resume
    removed are out of the workflow and not counted."""
    sql.execute(session, "DELETE FROM task_status_count WHERE workflow_id = ?", (workflow_id,))
    sql.execute(
        session,
        "INSERT INTO task_status_count (workflow_id, array_id, status, num, attempts, retries) "
        "SELECT workflow_id, array_id, status, COUNT(*), SUM(num_attempts), "
        "SUM(CASE WHEN num_attempts > 1 THEN num_attempts - 1 ELSE 0 END) "
        "FROM task WHERE workflow_id = ? AND removed_date IS NULL "
        "GROUP BY workflow_id, array_id, status",
        (workflow_id,),
    )


@functools.lru_cache(maxsize=8)
def _count_upsert(dialect: Dialect) -> str:
    head = (
        "INSERT INTO task_status_count (workflow_id, array_id, status, num, attempts, retries) "
        "VALUES (?, ?, ?, ?, ?, ?)"
    )
    if dialect.name in ("mysql", "mariadb"):
        return head + (
            " ON DUPLICATE KEY UPDATE num = num + VALUES(num), "
            "attempts = attempts + VALUES(attempts), retries = retries + VALUES(retries)"
        )
    return head + (
        " ON CONFLICT (workflow_id, array_id, status) DO UPDATE SET "
        "num = task_status_count.num + excluded.num, "
        "attempts = task_status_count.attempts + excluded.attempts, "
        "retries = task_status_count.retries + excluded.retries"
    )


@functools.lru_cache(maxsize=8)
def _history_upsert(dialect: Dialect) -> str:
    head = (
        "INSERT INTO task_status_history (workflow_id, bucket_start, status, entered, exited) "
        "VALUES (?, ?, ?, ?, ?)"
    )
    if dialect.name in ("mysql", "mariadb"):
        return (
            head + " ON DUPLICATE KEY UPDATE entered = entered + VALUES(entered), "
            "exited = exited + VALUES(exited)"
        )
    return (
        head + " ON CONFLICT (workflow_id, bucket_start, status) DO UPDATE SET "
        "entered = task_status_history.entered + excluded.entered, "
        "exited = task_status_history.exited + excluded.exited"
    )
