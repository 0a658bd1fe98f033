"""Error groups kept on write: per workflow, array, signature and exit class.

``error_group_count`` holds each group's errors, tasks, first and last time and newest error,
and ``error_task_count`` how many tasks of each array have had an error at all. Both change
only by increments, issued by :class:`~herdsman.server.database.feed.ChangeRecorder` after it
locked the workflow's row, as the task counts are (see
:mod:`~herdsman.server.database.task_counts`): two writers can neither lose an increment nor
deadlock over these rows.

Whether an error is its task's first in its group, or its first at all, is read from the
error log by :func:`first_errors` before the error is logged.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field

from sqlalchemy import Dialect
from sqlalchemy.orm import Session

from herdsman.server.database import sql

__all__ = ["ErrorCountChanges", "FirstErrors", "first_errors", "recount_errors"]


@dataclass(frozen=True)
class FirstErrors:
    """Whether an error is its task's first in its group, and its task's first at all."""

    in_group: bool
    of_task: bool


def first_errors(
    session: Session, workflow_id: int, task_id: int, signature: str, exit_class: str
) -> FirstErrors:
    """Read before the error is logged: through the log's (workflow, signature, task) index,
    and through the task's attempts."""
    in_group = sql.fetch_one(
        session,
        "SELECT 1 FROM task_instance_error_log WHERE workflow_id = ? AND signature = ? "
        "AND task_id = ? AND exit_class = ? LIMIT 1",
        (workflow_id, signature, task_id, exit_class),
    )
    if in_group is not None:
        return FirstErrors(in_group=False, of_task=False)
    of_task = sql.fetch_one(
        session,
        "SELECT 1 FROM task_instance ti JOIN task_instance_error_log l "
        "ON l.task_instance_id = ti.id WHERE ti.task_id = ? LIMIT 1",
        (task_id,),
    )
    return FirstErrors(in_group=True, of_task=of_task is None)


# The logged error's task is in its workflow (no resume removed it): one lookup by the task's
# key per error. (As ``task_id IN (the workflow's tasks)``, SQLite read the workflow's tasks
# again for every error: hours for a million tasks.)
_IN_WORKFLOW = (
    "EXISTS (SELECT 1 FROM task WHERE task.id = task_instance_error_log.task_id "
    "AND task.removed_date IS NULL)"
)


def recount_errors(session: Session, workflow_id: int) -> None:
    """Set the workflow's error counts from its error log: for rows written around the
    server (as a benchmark's seed is), and after a resume removed tasks or brought some back.
    The errors of tasks a resume removed are left out, as they are from every count."""
    for table in ("error_group_count", "error_task_count"):
        sql.execute(session, f"DELETE FROM {table} WHERE workflow_id = ?", (workflow_id,))
    sql.execute(
        session,
        "INSERT INTO error_group_count (workflow_id, array_id, signature, exit_class, errors, "
        "tasks, first_seen, last_seen, newest_id) "
        "SELECT workflow_id, array_id, COALESCE(signature, ''), COALESCE(exit_class, ''), "
        "COUNT(*), COUNT(DISTINCT task_id), MIN(error_time), MAX(error_time), MAX(id) "
        f"FROM task_instance_error_log WHERE workflow_id = ? AND {_IN_WORKFLOW} "
        "GROUP BY workflow_id, array_id, COALESCE(signature, ''), COALESCE(exit_class, '')",
        (workflow_id,),
    )
    sql.execute(
        session,
        "INSERT INTO error_task_count (workflow_id, array_id, tasks) "
        "SELECT workflow_id, array_id, COUNT(DISTINCT task_id) FROM task_instance_error_log "
        f"WHERE workflow_id = ? AND {_IN_WORKFLOW} GROUP BY workflow_id, array_id",
        (workflow_id,),
    )


@dataclass
class _GroupChange:
    errors: int
    tasks: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    newest_id: int


@dataclass
class ErrorCountChanges:
    """A transaction's logged errors, summed into increments of their groups' counts."""

    groups: dict[tuple[int, int, str, str], _GroupChange] = field(default_factory=dict)
    tasks: dict[tuple[int, int], int] = field(default_factory=dict)

    def add(
        self,
        key: tuple[int, int, str, str],
        first: FirstErrors,
        when: dt.datetime,
        log_id: int,
    ) -> None:
        """One error of group ``key`` (workflow, array, signature, exit class)."""
        seen = self.groups.get(key)
        new_task = int(first.in_group)
        if seen is None:
            self.groups[key] = _GroupChange(1, new_task, when, when, log_id)
        else:
            seen.errors += 1
            seen.tasks += new_task
            seen.first_seen = min(seen.first_seen, when)
            seen.last_seen = max(seen.last_seen, when)
            seen.newest_id = max(seen.newest_id, log_id)
        if first.of_task:
            array = key[:2]
            self.tasks[array] = self.tasks.get(array, 0) + 1

    def workflows(self) -> set[int]:
        return {key[0] for key in self.groups}

    def forget(self, workflow_id: int) -> None:
        """Drop the workflow's increments: its counts were just set from its log."""
        self.groups = {key: c for key, c in self.groups.items() if key[0] != workflow_id}
        self.tasks = {key: n for key, n in self.tasks.items() if key[0] != workflow_id}

    def apply(self, session: Session, workflow_id: int) -> None:
        """Add this workflow's increments to its group and task rows, in key order."""
        groups = sorted((key, c) for key, c in self.groups.items() if key[0] == workflow_id)
        if not groups:
            return
        dialect = session.get_bind().dialect
        sql.execute_many(
            session,
            _group_upsert(dialect),
            [
                (
                    *key,
                    change.errors,
                    change.tasks,
                    sql.timestamp(session, change.first_seen),
                    sql.timestamp(session, change.last_seen),
                    change.newest_id,
                )
                for key, change in groups
            ],
        )
        tasks = sorted((key, n) for key, n in self.tasks.items() if key[0] == workflow_id)
        if tasks:
            sql.execute_many(
                session, _task_upsert(dialect), [(*key, number) for key, number in tasks]
            )


@functools.lru_cache(maxsize=8)
def _group_upsert(dialect: Dialect) -> str:
    head = (
        "INSERT INTO error_group_count (workflow_id, array_id, signature, exit_class, errors, "
        "tasks, first_seen, last_seen, newest_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
    if dialect.name in ("mysql", "mariadb"):
        return head + (
            " ON DUPLICATE KEY UPDATE errors = errors + VALUES(errors), "
            "tasks = tasks + VALUES(tasks), first_seen = LEAST(first_seen, VALUES(first_seen)), "
            "last_seen = GREATEST(last_seen, VALUES(last_seen)), "
            "newest_id = GREATEST(newest_id, VALUES(newest_id))"
        )
    least, greatest = ("MIN", "MAX") if dialect.name == "sqlite" else ("LEAST", "GREATEST")
    return head + (
        " ON CONFLICT (workflow_id, array_id, signature, exit_class) DO UPDATE SET "
        "errors = error_group_count.errors + excluded.errors, "
        "tasks = error_group_count.tasks + excluded.tasks, "
        f"first_seen = {least}(error_group_count.first_seen, excluded.first_seen), "
        f"last_seen = {greatest}(error_group_count.last_seen, excluded.last_seen), "
        f"newest_id = {greatest}(error_group_count.newest_id, excluded.newest_id)"
    )


@functools.lru_cache(maxsize=8)
def _task_upsert(dialect: Dialect) -> str:
    head = "INSERT INTO error_task_count (workflow_id, array_id, tasks) VALUES (?, ?, ?)"
    if dialect.name in ("mysql", "mariadb"):
        return head + " ON DUPLICATE KEY UPDATE tasks = tasks + VALUES(tasks)"
    return head + (
        " ON CONFLICT (workflow_id, array_id) DO UPDATE SET "
        "tasks = error_task_count.tasks + excluded.tasks"
    )
