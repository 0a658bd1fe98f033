"""The change feed's rows no longer name their workflow through a foreign key.

Every status change writes a feed row, eight per dummy task, and on PostgreSQL the key's check
(a lookup of the workflow row and a share lock on it, per row) more than doubled the cost of
each: 12-14 µs against 5-6 µs per row in batches of 1,000. The feed is a log written only by
the server, in the transaction that also moves the workflow's ``change_seq``; a workflow's
rows are deleted with it by the prune, which deletes the feed first.

PostgreSQL and MySQL/MariaDB drop the constraint. SQLite cannot drop one, so the table is
rebuilt without it (a copy of the feed, once).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TABLE = "status_change"
_KEY = "fk_status_change_workflow_id_workflow"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_on_sqlite(with_key=False)
    else:
        op.drop_constraint(_KEY, _TABLE, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_on_sqlite(with_key=True)
    else:
        op.create_foreign_key(_KEY, _TABLE, "workflow", ["workflow_id"], ["id"])


def _rebuild_on_sqlite(*, with_key: bool) -> None:
    """Copy the feed into a table of the same shape, with or without the key, and swap."""
    building = f"_{_TABLE}_rebuilt"
    constraints: list[sa.Constraint] = [
        sa.PrimaryKeyConstraint("workflow_id", "seq", name=op.f("pk_status_change"))
    ]
    if with_key:
        constraints.append(
            sa.ForeignKeyConstraint(["workflow_id"], ["workflow.id"], name=op.f(_KEY))
        )
    op.create_table(
        building,
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=True),
        *constraints,
        sqlite_with_rowid=False,
    )
    op.execute(
        f"INSERT INTO {building} (workflow_id, seq, kind, object_id, status, task_id) "
        f"SELECT workflow_id, seq, kind, object_id, status, task_id FROM {_TABLE}"
    )
    op.drop_table(_TABLE)
    op.rename_table(building, _TABLE)
