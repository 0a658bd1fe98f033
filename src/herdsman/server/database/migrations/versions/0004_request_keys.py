"""Names for requests that create something new, so that a replay finds what it created.

A claim of queued instances and a new tool version carry a name chosen by the caller; a
request replayed after its answer was lost gets what the first one took or made.

Also moves PostgreSQL's id sequences of ``cluster`` and ``queue`` past the built-in clusters,
which the first migration inserted with explicit ids: the next cluster an operator adds
would otherwise collide with them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in ("cluster", "queue"):
            op.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )
    with op.batch_alter_table("task_instance") as batch:
        batch.add_column(sa.Column("claim_id", sa.String(length=36), nullable=True))
    with op.batch_alter_table("tool_version") as batch:
        batch.add_column(sa.Column("request_key", sa.String(length=36), nullable=True))
        batch.create_unique_constraint(
            op.f("uq_tool_version_tool_id_request_key"), ["tool_id", "request_key"]
        )


def downgrade() -> None:
    with op.batch_alter_table("tool_version") as batch:
        batch.drop_constraint(op.f("uq_tool_version_tool_id_request_key"), type_="unique")
        batch.drop_column("request_key")
    with op.batch_alter_table("task_instance") as batch:
        batch.drop_column("claim_id")
