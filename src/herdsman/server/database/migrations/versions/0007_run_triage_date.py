"""When a distributor last triaged each run: the reaper's sign that an ended run is attended.

An ended run's live attempts are left to its distributor; once none has triaged the run for a
while, the reaper closes them (see :mod:`herdsman.server.domain.reaper`). Existing runs start
without a date, which the reaper reads as "not since the run's last status change".

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, without a default: SQLite adds the column in place, without copying the table.
    with op.batch_alter_table("workflow_run", recreate="never") as batch:
        batch.add_column(sa.Column("triage_date", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workflow_run", recreate="never") as batch:
        batch.drop_column("triage_date")
