"""The change feed: a per-workflow sequence counter and the numbered status changes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 08:36:20.632684
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "status_change",
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_status_change_workflow_id_workflow")
        ),
        sa.PrimaryKeyConstraint("workflow_id", "seq", name=op.f("pk_status_change")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("workflow", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("change_seq", sa.BigInteger(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("workflow", schema=None) as batch_op:
        batch_op.drop_column("change_seq")

    op.drop_table("status_change")
