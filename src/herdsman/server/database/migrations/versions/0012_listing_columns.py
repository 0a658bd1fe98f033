"""Columns, indexes and kept counts that let task listings and error groups read one index
or a few rows each.

``task`` keeps each task's peak runtime and memory over its attempts (``peak_wall_time``,
``peak_rss``), raised as attempts report, so that sorting a workflow's tasks by runtime or
memory walks an index instead of grouping every attempt. ``task_instance_error_log`` gets the
task and array of each error, so that error groups and the tasks of a group are read from the
log alone.

New indexes: task (workflow, peak runtime, id), (workflow, peak memory, id),
(workflow, attempts, id) and (array, status, id); task (workflow, status) becomes
(workflow, status, id), so that PostgreSQL too reads a status's tasks in id order, and the
error log's (workflow, signature) becomes (workflow, signature, task).

``error_group_count`` keeps each group's errors (per workflow, array, signature and exit
class) and ``error_task_count`` each array's tasks with errors, as the task counts are kept;
both are filled from the error log by ``INSERT ... SELECT ... GROUP BY``. ``usage_total``
keeps what each array's attempts asked for and used, summed, filled from the attempts the
same way.

The new columns are filled from the attempts by correlated updates, which read each task's
attempts through the (task) index: expect about a minute per ten million attempts.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_TASK_INDEXES = {
    "ix_task_workflow_id_peak_wall_time_id": ["workflow_id", "peak_wall_time", "id"],
    "ix_task_workflow_id_peak_rss_id": ["workflow_id", "peak_rss", "id"],
    "ix_task_workflow_id_num_attempts_id": ["workflow_id", "num_attempts", "id"],
    "ix_task_array_id_status_id": ["array_id", "status", "id"],
    "ix_task_workflow_id_status_id": ["workflow_id", "status", "id"],
}


def upgrade() -> None:
    # In place (SQLite has ALTER TABLE ... ADD COLUMN): recreating a table that other rows
    # reference would break their foreign keys.
    with op.batch_alter_table("task", recreate="never") as batch:
        # Double, not Float: MariaDB's FLOAT is single precision, and a keyset cursor
        # compares the stored value with the one the page showed.
        batch.add_column(sa.Column("peak_wall_time", sa.Double(), nullable=True))
        batch.add_column(sa.Column("peak_rss", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("task_instance_error_log", recreate="never") as batch:
        batch.add_column(sa.Column("task_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("array_id", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE task SET "
        "peak_wall_time = (SELECT MAX(wall_time) FROM task_instance WHERE task_id = task.id), "
        "peak_rss = (SELECT MAX(max_rss) FROM task_instance WHERE task_id = task.id) "
        "WHERE num_attempts > 0"
    )
    op.execute(
        "UPDATE task_instance_error_log SET "
        "task_id = (SELECT task_id FROM task_instance "
        "WHERE task_instance.id = task_instance_error_log.task_instance_id), "
        "array_id = (SELECT array_id FROM task_instance "
        "WHERE task_instance.id = task_instance_error_log.task_instance_id)"
    )
    for name, columns in _TASK_INDEXES.items():
        op.create_index(name, "task", columns, unique=False)
    op.drop_index("ix_task_workflow_id_status", table_name="task")
    _create_error_counts()
    _create_usage_totals()


def _create_usage_totals() -> None:
    op.create_table(
        "usage_total",
        sa.Column("workflow_id", _ID, nullable=False),
        sa.Column("array_id", _ID, nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("core_seconds_requested", sa.Double(), nullable=True),
        sa.Column("cpu_seconds", sa.Double(), nullable=True),
        sa.Column("memory_byte_seconds_requested", sa.Double(), nullable=True),
        sa.Column("memory_byte_seconds_used", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_usage_total_workflow_id_workflow")
        ),
        sa.ForeignKeyConstraint(
            ["array_id"], ["array.id"], name=op.f("fk_usage_total_array_id_array")
        ),
        sa.PrimaryKeyConstraint("workflow_id", "array_id", name=op.f("pk_usage_total")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO usage_total (workflow_id, array_id, attempts, core_seconds_requested, "
        "cpu_seconds, memory_byte_seconds_requested, memory_byte_seconds_used) "
        "SELECT r.workflow_id, ti.array_id, COUNT(*), SUM(ti.wall_time * ti.requested_cores), "
        "SUM(ti.cpu_time), SUM(ti.wall_time * ti.requested_memory), "
        "SUM(ti.wall_time * ti.max_rss) FROM task_instance ti "
        "JOIN workflow_run r ON r.id = ti.workflow_run_id WHERE ti.wall_time IS NOT NULL "
        "GROUP BY r.workflow_id, ti.array_id"
    )


def _create_error_counts() -> None:
    op.create_table(
        "error_group_count",
        sa.Column("workflow_id", _ID, nullable=False),
        sa.Column("array_id", _ID, nullable=False),
        sa.Column("signature", sa.String(length=16), nullable=False),
        sa.Column("exit_class", sa.String(length=16), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("tasks", sa.BigInteger(), nullable=False),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("newest_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_error_group_count_workflow_id_workflow")
        ),
        sa.ForeignKeyConstraint(
            ["array_id"], ["array.id"], name=op.f("fk_error_group_count_array_id_array")
        ),
        sa.PrimaryKeyConstraint(
            "workflow_id", "array_id", "signature", "exit_class", name=op.f("pk_error_group_count")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "error_task_count",
        sa.Column("workflow_id", _ID, nullable=False),
        sa.Column("array_id", _ID, nullable=False),
        sa.Column("tasks", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_error_task_count_workflow_id_workflow")
        ),
        sa.ForeignKeyConstraint(
            ["array_id"], ["array.id"], name=op.f("fk_error_task_count_array_id_array")
        ),
        sa.PrimaryKeyConstraint("workflow_id", "array_id", name=op.f("pk_error_task_count")),
        sqlite_with_rowid=False,
    )
    kept = "FROM task_instance_error_log WHERE workflow_id IS NOT NULL AND array_id IS NOT NULL "
    op.execute(
        "INSERT INTO error_group_count (workflow_id, array_id, signature, exit_class, errors, "
        "tasks, first_seen, last_seen, newest_id) "
        "SELECT workflow_id, array_id, COALESCE(signature, ''), COALESCE(exit_class, ''), "
        "COUNT(*), COUNT(DISTINCT task_id), MIN(error_time), MAX(error_time), MAX(id) "
        + kept
        + "GROUP BY workflow_id, array_id, COALESCE(signature, ''), COALESCE(exit_class, '')"
    )
    op.execute(
        "INSERT INTO error_task_count (workflow_id, array_id, tasks) "
        "SELECT workflow_id, array_id, COUNT(DISTINCT task_id) "
        + kept
        + "GROUP BY workflow_id, array_id"
    )
    op.create_index(
        "ix_task_instance_error_log_workflow_id_signature_task_id",
        "task_instance_error_log",
        ["workflow_id", "signature", "task_id"],
        unique=False,
    )
    op.drop_index(
        "ix_task_instance_error_log_workflow_id_signature", table_name="task_instance_error_log"
    )


def downgrade() -> None:
    op.drop_table("usage_total")
    op.drop_table("error_task_count")
    op.drop_table("error_group_count")
    op.create_index("ix_task_workflow_id_status", "task", ["workflow_id", "status"])
    op.create_index(
        "ix_task_instance_error_log_workflow_id_signature",
        "task_instance_error_log",
        ["workflow_id", "signature"],
        unique=False,
    )
    op.drop_index(
        "ix_task_instance_error_log_workflow_id_signature_task_id",
        table_name="task_instance_error_log",
    )
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        # The (array, status, id) index serves the array foreign key there, which dropped the
        # index MariaDB made for the key itself: give the key its index back first.
        op.create_index("fk_task_array_id_array", "task", ["array_id"])
    for name in _TASK_INDEXES:
        op.drop_index(name, table_name="task")
    with op.batch_alter_table("task_instance_error_log", recreate="never") as batch:
        batch.drop_column("array_id")
        batch.drop_column("task_id")
    with op.batch_alter_table("task", recreate="never") as batch:
        batch.drop_column("peak_rss")
        batch.drop_column("peak_wall_time")
