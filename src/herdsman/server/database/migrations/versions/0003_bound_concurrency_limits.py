"""The concurrency limits a client last bound, kept beside the limits in force.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 11:02:41.118305
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_TABLES = ("workflow", "array")


def upgrade() -> None:
    for table in _TABLES:
        # NOT NULL with a server default: SQLite then adds the column in place, without
        # rebuilding a table that others reference.
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(
                sa.Column(
                    "bound_max_concurrently_running",
                    sa.Integer(),
                    nullable=False,
                    server_default=sa.text("10000"),
                )
            )
        # Existing rows: take the limit in force as the last one bound, which keeps it on the
        # next re-bind that sends it again.
        quoted = op.get_context().dialect.identifier_preparer.quote(table)
        op.execute(f"UPDATE {quoted} SET bound_max_concurrently_running = max_concurrently_running")


def downgrade() -> None:
    for table in reversed(_TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("bound_max_concurrently_running")
