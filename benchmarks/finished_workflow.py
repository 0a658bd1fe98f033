"""A large finished workflow, made fast, to measure what removing one costs (``load.py --prune``).

A real client binds and runs a one-task workflow; its rows (tool, DAG, template, run, task,
attempt, change feed) are then copied in the database, one copy per task, until the workflow
has the number of tasks asked for, and the workflow is dated a month back so that
``herdsman server prune --older-than 7`` finds it. Copying in SQL takes seconds where binding
and running a million tasks would take many minutes; the rows are the shapes a run writes.
PostgreSQL only (``generate_series``).
"""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection

__all__ = ["grow_finished_workflow"]

# Node hashes of the copies start here, far from any hash a client computes.
HASH_BASE = 10**15
AGE_DAYS = 30


def grow_finished_workflow(database_url: str, workflow_id: int, tasks: int) -> float:
    """Give the finished one-task workflow ``workflow_id`` ``tasks`` tasks in all, each with
    its attempt and its change-feed rows; the seconds it took."""
    if not database_url.startswith("postgresql"):
        raise SystemExit("--prune seeds its finished workflow on PostgreSQL only")
    started = time.perf_counter()
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            _grow(connection, workflow_id, tasks - 1)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return time.perf_counter() - started


def _columns(connection: Connection, table: str, leave_out: set[str]) -> list[str]:
    names = connection.execute(
        text(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_name = :t AND table_schema = current_schema() ORDER BY ordinal_position"
        ),
        {"t": table},
    ).scalars()
    return [f'"{name}"' for name in names if name not in leave_out]


def _grow(connection: Connection, workflow_id: int, copies: int) -> None:
    params = {"w": workflow_id, "n": copies, "base": HASH_BASE}
    task_id = connection.execute(
        text("SELECT id FROM task WHERE workflow_id = :w"), params
    ).scalar_one()
    params["t"] = task_id
    connection.execute(
        text(
            "INSERT INTO node (task_template_version_id, node_args_hash) "
            "SELECT n.task_template_version_id, :base + g FROM node n "
            "JOIN task t ON t.node_id = n.id, generate_series(1, :n) g WHERE t.id = :t"
        ),
        params,
    )
    task_columns = _columns(connection, "task", {"id", "node_id"})
    copied = ", ".join(f"t.{name}" for name in task_columns)
    connection.execute(
        text(
            f"INSERT INTO task (node_id, {', '.join(task_columns)}) "
            f"SELECT n.id, {copied} FROM task t, node n "
            "WHERE t.id = :t AND n.node_args_hash > :base AND n.node_args_hash <= :base + :n "
            "AND n.task_template_version_id = "
            "(SELECT task_template_version_id FROM node WHERE id = t.node_id)"
        ),
        params,
    )
    instance_columns = _columns(connection, "task_instance", {"id", "task_id"})
    copied = ", ".join(f"ti.{name}" for name in instance_columns)
    connection.execute(
        text(
            f"INSERT INTO task_instance (task_id, {', '.join(instance_columns)}) "
            f"SELECT t.id, {copied} FROM task_instance ti, task t "
            "WHERE ti.task_id = :t AND t.workflow_id = :w AND t.id <> :t"
        ),
        params,
    )
    # Each copy gets the original task's feed rows, numbered on after the workflow's last.
    connection.execute(
        text(
            "INSERT INTO status_change (workflow_id, seq, kind, object_id, status, task_id) "
            "SELECT :w, w.change_seq + ROW_NUMBER() OVER (ORDER BY t.id, sc.seq), sc.kind, "
            "CASE WHEN sc.kind = 'T' THEN t.id ELSE sc.object_id END, sc.status, "
            "CASE WHEN sc.task_id IS NULL THEN NULL ELSE t.id END "
            "FROM status_change sc, task t, workflow w "
            "WHERE sc.workflow_id = :w AND sc.kind IN ('T', 'I') AND (sc.object_id = :t "
            "OR sc.task_id = :t) AND t.workflow_id = :w AND t.id <> :t AND w.id = :w"
        ),
        params,
    )
    connection.execute(
        text(
            "UPDATE workflow SET num_tasks = num_tasks + :n, "
            "change_seq = (SELECT MAX(seq) FROM status_change WHERE workflow_id = :w), "
            f"status_date = status_date - INTERVAL '{AGE_DAYS} days' WHERE id = :w"
        ),
        params,
    )
    connection.execute(
        text(
            "UPDATE task_status_count SET num = num + :n, attempts = attempts + :n "
            "WHERE workflow_id = :w AND status = 'D'"
        ),
        params,
    )
    connection.execute(
        text(
            f"UPDATE workflow_run SET status_date = status_date - INTERVAL '{AGE_DAYS} days' "
            "WHERE workflow_id = :w"
        ),
        params,
    )
