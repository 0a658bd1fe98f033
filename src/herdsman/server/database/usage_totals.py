"""Requested and used resources kept on write: per workflow and array.

``usage_total`` sums, over a workflow's attempts that reported a wall time, the core-seconds
and memory byte-seconds they asked for and the CPU seconds and memory byte-seconds they used.
An attempt is added once, by the transaction that records its usage:
:class:`~herdsman.server.database.feed.ChangeRecorder` collects the attempts and, after it
locked the workflow's row (see :mod:`~herdsman.server.database.task_counts`), adds them with
one ``INSERT ... SELECT ... GROUP BY`` upsert per thousand attempts.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from sqlalchemy import Dialect
from sqlalchemy.orm import Session

from herdsman.server.database import sql
from herdsman.server.database.bulk import chunked

__all__ = ["add_usage", "recount_usage"]

_SUMS = (
    "COUNT(*), SUM(ti.wall_time * ti.requested_cores), SUM(ti.cpu_time), "
    "SUM(ti.wall_time * ti.requested_memory), SUM(ti.wall_time * ti.max_rss)"
)
_COLUMNS = (
    "workflow_id, array_id, attempts, core_seconds_requested, cpu_seconds, "
    "memory_byte_seconds_requested, memory_byte_seconds_used"
)
_ADDED = (
    "attempts",
    "core_seconds_requested",
    "cpu_seconds",
    "memory_byte_seconds_requested",
    "memory_byte_seconds_used",
)


def add_usage(session: Session, workflow_id: int, instance_ids: Sequence[int]) -> None:
    """Add the usage of the workflow's attempts ``instance_ids`` (just recorded) to its
    totals."""
    dialect = session.get_bind().dialect
    for part in chunked(sorted(instance_ids), 1000):
        condition, params = sql.id_in(session, "ti.id", part)
        sql.execute(
            session,
            f"INSERT INTO usage_total ({_COLUMNS}) SELECT ?, ti.array_id, {_SUMS} "
            f"FROM task_instance ti WHERE {condition} AND ti.wall_time IS NOT NULL "
            "GROUP BY ti.array_id" + _on_conflict(dialect),
            (workflow_id, *params),
        )


def recount_usage(session: Session, workflow_id: int) -> None:
    """Set the workflow's totals from its attempts: for rows written around the server (as a
    benchmark's seed is), and after a resume removed tasks or brought some back. The attempts
    of tasks a resume removed are left out, as they are from every count."""
    sql.execute(session, "DELETE FROM usage_total WHERE workflow_id = ?", (workflow_id,))
    sql.execute(
        session,
        f"INSERT INTO usage_total ({_COLUMNS}) SELECT t.workflow_id, ti.array_id, {_SUMS} "
        "FROM task_instance ti JOIN task t ON t.id = ti.task_id "
        "WHERE t.workflow_id = ? AND t.removed_date IS NULL AND ti.wall_time IS NOT NULL "
        "GROUP BY t.workflow_id, ti.array_id",
        (workflow_id,),
    )


@functools.lru_cache(maxsize=8)
def _on_conflict(dialect: Dialect) -> str:
    if dialect.name in ("mysql", "mariadb"):
        # A NULL sum adds nothing: COALESCE keeps the total (or the new sum) as it is.
        return " ON DUPLICATE KEY UPDATE " + ", ".join(
            f"{name} = COALESCE({name} + VALUES({name}), {name}, VALUES({name}))" for name in _ADDED
        )
    return " ON CONFLICT (workflow_id, array_id) DO UPDATE SET " + ", ".join(
        f"{name} = COALESCE(usage_total.{name} + excluded.{name}, usage_total.{name}, "
        f"excluded.{name})"
        for name in _ADDED
    )
