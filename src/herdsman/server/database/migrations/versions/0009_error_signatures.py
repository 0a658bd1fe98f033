"""Errors grouped by signature, and each attempt's request beside its usage.

``task_instance_error_log`` gets the workflow's id, the error's signature and its exit class
(see :mod:`herdsman.core.error_signature`), indexed on (workflow, signature) so that a
workflow's error groups are one ``GROUP BY``. ``task_instance`` gets the memory (bytes),
runtime (seconds) and cores it was queued with.

Existing rows are filled in: the workflow by a join, the request from each attempt's
resources, and the signature and exit class by the same functions the server uses now, from
the message, the attempt's stderr tail and its status (the status an attempt passed through
before its error is not kept, so an attempt lost before it ran is classed by its status).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 10:00:00.000000
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

from herdsman.core.error_signature import error_signature, exit_class_of
from herdsman.core.statuses import TaskInstanceStatus

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_BATCH = 1000
_GIB = 1024**3


def upgrade() -> None:
    with op.batch_alter_table("task_instance_error_log") as batch:
        batch.add_column(sa.Column("workflow_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("signature", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("exit_class", sa.String(length=16), nullable=True))
        batch.create_index(
            op.f("ix_task_instance_error_log_workflow_id_signature"),
            ["workflow_id", "signature"],
            unique=False,
        )
    with op.batch_alter_table("task_instance") as batch:
        batch.add_column(sa.Column("requested_memory", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("requested_runtime", sa.Float(), nullable=True))
        batch.add_column(sa.Column("requested_cores", sa.Integer(), nullable=True))
    _fill_error_logs()
    _fill_requests()


def _fill_error_logs() -> None:
    bind = op.get_bind()
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT l.id, l.description, ti.stderr_tail, ti.status, t.workflow_id "
                "FROM task_instance_error_log l "
                "JOIN task_instance ti ON ti.id = l.task_instance_id "
                "JOIN task t ON t.id = ti.task_id WHERE l.id > :last ORDER BY l.id LIMIT :n"
            ),
            {"last": last, "n": _BATCH},
        ).all()
        if not rows:
            return
        updates = []
        for log_id, description, stderr, status, workflow_id in rows:
            instance_status = TaskInstanceStatus(status)
            killed = instance_status is TaskInstanceStatus.ERROR_FATAL
            updates.append(
                {
                    "id": log_id,
                    "w": workflow_id,
                    "s": error_signature(description, None if killed else stderr).digest,
                    "c": exit_class_of(instance_status, description, killed=killed).value,
                }
            )
        bind.execute(
            sa.text(
                "UPDATE task_instance_error_log SET workflow_id = :w, signature = :s, "
                "exit_class = :c WHERE id = :id"
            ),
            updates,
        )
        last = rows[-1][0]


def _fill_requests() -> None:
    bind = op.get_bind()
    for resources_id, requested in bind.execute(
        sa.text(
            "SELECT id, requested FROM task_resources WHERE id IN "
            "(SELECT DISTINCT task_resources_id FROM task_instance)"
        )
    ).all():
        values = json.loads(requested)
        memory, runtime, cores = values.get("memory"), values.get("runtime"), values.get("cores")
        bind.execute(
            sa.text(
                "UPDATE task_instance SET requested_memory = :m, requested_runtime = :r, "
                "requested_cores = :c WHERE task_resources_id = :id"
            ),
            {
                "m": round(memory * _GIB) if isinstance(memory, int | float) else None,
                "r": float(runtime) if isinstance(runtime, int | float) else None,
                "c": int(cores) if isinstance(cores, int | float) else None,
                "id": resources_id,
            },
        )


def downgrade() -> None:
    # Dropped in place (SQLite has ALTER TABLE ... DROP COLUMN since 3.35): recreating a
    # table that other rows reference would break their foreign keys.
    with op.batch_alter_table("task_instance", recreate="never") as batch:
        batch.drop_column("requested_cores")
        batch.drop_column("requested_runtime")
        batch.drop_column("requested_memory")
    with op.batch_alter_table("task_instance_error_log", recreate="never") as batch:
        batch.drop_index(op.f("ix_task_instance_error_log_workflow_id_signature"))
        batch.drop_column("exit_class")
        batch.drop_column("signature")
        batch.drop_column("workflow_id")
