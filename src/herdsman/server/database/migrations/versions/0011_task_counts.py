"""Task counts kept on write, and a history of status changes in ten-second intervals.

``task_status_count`` holds how many tasks of each workflow's array have each status, and
``task_status_history`` how many entered and left each status in each ten-second interval
(see :mod:`herdsman.server.database.task_counts`). Pages read these instead of counting a
workflow's tasks.

Counts are filled from the tasks by one ``INSERT ... SELECT ... GROUP BY``, which reads the
whole task table once: expect a minute or so per hundred million tasks. The history starts
empty: the status changes recorded before carry no time.

``task_instance`` gets an index on (array, id): a template's newest attempts (the medians of
the workflow page) are then read without sorting all its attempts.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 03:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_status_count",
        sa.Column("workflow_id", _ID, nullable=False),
        sa.Column("array_id", _ID, nullable=False),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("num", sa.BigInteger(), nullable=False),
        sa.Column("attempts", sa.BigInteger(), nullable=False),
        sa.Column("retries", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_task_status_count_workflow_id_workflow")
        ),
        sa.ForeignKeyConstraint(
            ["array_id"], ["array.id"], name=op.f("fk_task_status_count_array_id_array")
        ),
        sa.PrimaryKeyConstraint(
            "workflow_id", "array_id", "status", name=op.f("pk_task_status_count")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "task_status_history",
        sa.Column("workflow_id", _ID, nullable=False),
        sa.Column("bucket_start", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("entered", sa.BigInteger(), nullable=False),
        sa.Column("exited", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow.id"],
            name=op.f("fk_task_status_history_workflow_id_workflow"),
        ),
        sa.PrimaryKeyConstraint(
            "workflow_id", "bucket_start", "status", name=op.f("pk_task_status_history")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        op.f("ix_task_instance_array_id_id"), "task_instance", ["array_id", "id"], unique=False
    )
    op.execute(
        "INSERT INTO task_status_count (workflow_id, array_id, status, num, attempts, retries) "
        "SELECT workflow_id, array_id, status, COUNT(*), SUM(num_attempts), "
        "SUM(CASE WHEN num_attempts > 1 THEN num_attempts - 1 ELSE 0 END) FROM task "
        "GROUP BY workflow_id, array_id, status"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name in ("mysql", "mariadb"):
        # The (array, id) index serves the array foreign key there, which dropped the index
        # MariaDB made for the key itself: give the key its index back first, by its name.
        op.create_index("fk_task_instance_array_id_array", "task_instance", ["array_id"])
    op.drop_index(op.f("ix_task_instance_array_id_id"), table_name="task_instance")
    op.drop_table("task_status_history")
    op.drop_table("task_status_count")
