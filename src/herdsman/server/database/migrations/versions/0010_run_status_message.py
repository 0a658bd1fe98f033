"""Why a workflow run has its status: the message sent with its last status change.

A run stopped with ``herdsman workflow stop`` says who stopped it; a run its swarm ended says
why (a timeout, fail_fast, a dead distributor). The end-of-run summary and the CLI show it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, NOT NULL with a constant default, on every engine: SQLite adds it in
    # place, where a batch operation would rebuild a table that others reference.
    op.add_column(
        "workflow_run",
        sa.Column("status_message", sa.String(1000), nullable=False, server_default=""),
    )


def downgrade() -> None:
    with op.batch_alter_table("workflow_run", recreate="never") as batch_op:
        batch_op.drop_column("status_message")
