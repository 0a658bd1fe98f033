"""The built-in ``slurm`` cluster, with one queue, ``default``: Slurm's default partition.

Its parameters start empty: the plugin finds the Slurm commands on ``PATH`` and submits to
the cluster's default partition. An operator sets ``bin_dir``, ``partition``,
``sbatch_args``, ``squeue_interval``, ``poll_interval``, ... in the cluster's ``parameters``
and adds a queue row per further partition users may name (see docs/slurm.md). The default
queue's limits are wide; the plugin clamps each request to its partition's real limits when
it submits.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 14:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SLURM_QUEUE_LIMITS = '{"cores": [1, 1024], "memory": [0.0, 65536.0], "runtime": [1, 31536000]}'


def upgrade() -> None:
    cluster = sa.table(
        "cluster",
        sa.column("name", sa.String),
        sa.column("plugin", sa.String),
        sa.column("parameters", sa.Text),
    )
    op.bulk_insert(cluster, [{"name": "slurm", "plugin": "slurm", "parameters": "{}"}])
    cluster_id = op.get_bind().scalar(sa.text("SELECT id FROM cluster WHERE name = 'slurm'"))
    queue = sa.table(
        "queue",
        sa.column("cluster_id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("is_default", sa.Boolean),
        sa.column("limits", sa.Text),
    )
    op.bulk_insert(
        queue,
        [
            {
                "cluster_id": cluster_id,
                "name": "default",
                "is_default": True,
                "limits": SLURM_QUEUE_LIMITS,
            }
        ],
    )


def downgrade() -> None:
    cluster_id = op.get_bind().scalar(sa.text("SELECT id FROM cluster WHERE name = 'slurm'"))
    if cluster_id is not None:
        op.execute(sa.text(f"DELETE FROM queue WHERE cluster_id = {int(cluster_id)}"))
        op.execute(sa.text("DELETE FROM cluster WHERE name = 'slurm'"))
