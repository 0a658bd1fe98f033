"""Identity: DAGs belong to the user who bound them; revoked tokens; the audit trail.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 18:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # A DAG bound before this revision keeps user "" and is reused by nobody again: new DAGs
    # are stored under a hash of their user and the client's hash. Added in place (SQLite
    # would otherwise recreate a table that other rows reference).
    with op.batch_alter_table("dag", recreate="never") as batch:
        batch.add_column(sa.Column("user", sa.String(255), nullable=False, server_default=""))
    op.create_table(
        "revoked_token",
        sa.Column("token_id", sa.String(64), nullable=False),
        sa.Column("revoked_date", sa.DateTime(), nullable=False),
        sa.Column("expires_date", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("token_id", name="pk_revoked_token"),
    )
    op.create_table(
        "audit",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("created_date", sa.DateTime(), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_kind", sa.String(16), nullable=False),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("path", sa.String(1024), nullable=False),
        sa.Column("workflow_id", sa.BigInteger(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("message", sa.String(1024), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit"),
    )
    op.create_index("ix_audit_workflow_id_id", "audit", ["workflow_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_audit_workflow_id_id", table_name="audit")
    op.drop_table("audit")
    op.drop_table("revoked_token")
    with op.batch_alter_table("dag", recreate="never") as batch:
        batch.drop_column("user")
