"""Tasks a resume removed: kept for the record, out of the workflow.

A resume whose script no longer has some of a workflow's tasks takes the script's DAG; the
tasks it dropped stay in the database with their attempts, marked by ``task.removed_date``
(when the resume's bind ended) and ``task.removed_from_dag_id`` (the DAG they belonged to).
Every count, listing and the swarm read only tasks with no ``removed_date``. While a resume is
being bound, ``removed_from_dag_id`` alone marks the tasks its script has not sent yet (see
:mod:`herdsman.server.domain.removal`).

Both columns are nullable without a default, so every engine adds them without rewriting the
task table; existing tasks are in their workflows. ``removed_from_dag_id`` has no foreign key:
it names a DAG for the record, and must not keep an old DAG from being pruned.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 20:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # In place: SQLite would otherwise recreate a table that other rows reference.
    with op.batch_alter_table("task", recreate="never") as batch:
        batch.add_column(sa.Column("removed_date", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("removed_from_dag_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task", recreate="never") as batch:
        batch.drop_column("removed_from_dag_id")
        batch.drop_column("removed_date")
