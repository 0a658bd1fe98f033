"""Initial schema, and the built-in local clusters sequential, multiprocess and dummy.

Revision ID: 0001
Revises:
Create Date: 2026-11-25 08:07:22.298906
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arg",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_arg")),
        sa.UniqueConstraint("name", name=op.f("uq_arg_name")),
    )
    op.create_table(
        "cluster",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("plugin", sa.String(length=255), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cluster")),
        sa.UniqueConstraint("name", name=op.f("uq_cluster_name")),
    )
    op.create_table(
        "dag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("created_date", sa.DateTime(), nullable=False),
        sa.Column("completed_date", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dag")),
        sa.UniqueConstraint("hash", name=op.f("uq_dag_hash")),
    )
    op.create_table(
        "tool",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_date", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool")),
        sa.UniqueConstraint("name", name=op.f("uq_tool_name")),
    )
    op.create_table(
        "queue",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("limits", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["cluster_id"], ["cluster.id"], name=op.f("fk_queue_cluster_id_cluster")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue")),
        sa.UniqueConstraint("cluster_id", "name", name=op.f("uq_queue_cluster_id_name")),
    )
    op.create_table(
        "tool_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_id", sa.Integer(), nullable=False),
        sa.Column("created_date", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tool_id"], ["tool.id"], name=op.f("fk_tool_version_tool_id_tool")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tool_version")),
    )
    with op.batch_alter_table("tool_version", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tool_version_tool_id"), ["tool_id"], unique=False)

    op.create_table(
        "task_resources",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("queue_id", sa.Integer(), nullable=True),
        sa.Column("requested", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["queue_id"], ["queue.id"], name=op.f("fk_task_resources_queue_id_queue")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_resources")),
        sa.UniqueConstraint("hash", name=op.f("uq_task_resources_hash")),
    )
    op.create_table(
        "task_template",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_version_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["tool_version_id"],
            ["tool_version.id"],
            name=op.f("fk_task_template_tool_version_id_tool_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_template")),
        sa.UniqueConstraint(
            "tool_version_id", "name", name=op.f("uq_task_template_tool_version_id_name")
        ),
    )
    op.create_table(
        "workflow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tool_version_id", sa.Integer(), nullable=False),
        sa.Column("dag_id", sa.Integer(), nullable=False),
        sa.Column("workflow_args_hash", sa.String(length=64), nullable=False),
        sa.Column("task_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("workflow_args", sa.Text(), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("max_concurrently_running", sa.Integer(), nullable=False),
        sa.Column("num_tasks", sa.BigInteger(), nullable=False),
        sa.Column("bound_date", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("status_date", sa.DateTime(), nullable=False),
        sa.Column("created_date", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["dag_id"], ["dag.id"], name=op.f("fk_workflow_dag_id_dag")),
        sa.ForeignKeyConstraint(
            ["tool_version_id"],
            ["tool_version.id"],
            name=op.f("fk_workflow_tool_version_id_tool_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow")),
        sa.UniqueConstraint(
            "tool_version_id",
            "workflow_args_hash",
            name=op.f("uq_workflow_tool_version_id_workflow_args_hash"),
        ),
    )
    with op.batch_alter_table("workflow", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_status"), ["status"], unique=False)

    op.create_table(
        "task_template_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_template_id", sa.Integer(), nullable=False),
        sa.Column("command_template", sa.Text(), nullable=False),
        sa.Column("version_hash", sa.String(length=64), nullable=False),
        sa.Column("created_date", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_template_id"],
            ["task_template.id"],
            name=op.f("fk_task_template_version_task_template_id_task_template"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_template_version")),
        sa.UniqueConstraint(
            "task_template_id",
            "version_hash",
            name=op.f("uq_task_template_version_task_template_id_version_hash"),
        ),
    )
    op.create_table(
        "workflow_attribute",
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflow.id"],
            name=op.f("fk_workflow_attribute_workflow_id_workflow"),
        ),
        sa.PrimaryKeyConstraint("workflow_id", "name", name=op.f("pk_workflow_attribute")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "workflow_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("user", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("herdsman_version", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("status_date", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_date", sa.DateTime(), nullable=False),
        sa.Column("created_date", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_workflow_run_workflow_id_workflow")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workflow_run")),
    )
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_workflow_run_status"), ["status"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_workflow_run_workflow_id"), ["workflow_id"], unique=False
        )

    op.create_table(
        "array",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("task_template_version_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("max_concurrently_running", sa.Integer(), nullable=False),
        sa.Column("created_date", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_template_version_id"],
            ["task_template_version.id"],
            name=op.f("fk_array_task_template_version_id_task_template_version"),
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_array_workflow_id_workflow")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_array")),
        sa.UniqueConstraint(
            "workflow_id",
            "task_template_version_id",
            name=op.f("uq_array_workflow_id_task_template_version_id"),
        ),
    )
    op.create_table(
        "node",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_template_version_id", sa.Integer(), nullable=False),
        sa.Column("node_args_hash", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_template_version_id"],
            ["task_template_version.id"],
            name=op.f("fk_node_task_template_version_id_task_template_version"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_node")),
        sa.UniqueConstraint(
            "task_template_version_id",
            "node_args_hash",
            name=op.f("uq_node_task_template_version_id_node_args_hash"),
        ),
    )
    op.create_table(
        "task_template_arg",
        sa.Column("task_template_version_id", sa.Integer(), nullable=False),
        sa.Column("arg_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=4), nullable=False),
        sa.ForeignKeyConstraint(
            ["arg_id"], ["arg.id"], name=op.f("fk_task_template_arg_arg_id_arg")
        ),
        sa.ForeignKeyConstraint(
            ["task_template_version_id"],
            ["task_template_version.id"],
            name=op.f("fk_task_template_arg_task_template_version_id_task_template_version"),
        ),
        sa.PrimaryKeyConstraint(
            "task_template_version_id", "arg_id", name=op.f("pk_task_template_arg")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "edge",
        sa.Column("dag_id", sa.Integer(), nullable=False),
        sa.Column(
            "downstream_node_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "upstream_node_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.ForeignKeyConstraint(["dag_id"], ["dag.id"], name=op.f("fk_edge_dag_id_dag")),
        sa.ForeignKeyConstraint(
            ["downstream_node_id"], ["node.id"], name=op.f("fk_edge_downstream_node_id_node")
        ),
        sa.ForeignKeyConstraint(
            ["upstream_node_id"], ["node.id"], name=op.f("fk_edge_upstream_node_id_node")
        ),
        sa.PrimaryKeyConstraint(
            "dag_id", "downstream_node_id", "upstream_node_id", name=op.f("pk_edge")
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("edge", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_edge_dag_id_upstream_node_id"),
            ["dag_id", "upstream_node_id"],
            unique=False,
        )

    op.create_table(
        "node_arg",
        sa.Column("node_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("arg_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["arg_id"], ["arg.id"], name=op.f("fk_node_arg_arg_id_arg")),
        sa.ForeignKeyConstraint(["node_id"], ["node.id"], name=op.f("fk_node_arg_node_id_node")),
        sa.PrimaryKeyConstraint("node_id", "arg_id", name=op.f("pk_node_arg")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "task",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workflow_id", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("array_id", sa.Integer(), nullable=False),
        sa.Column("task_args_hash", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("command", sa.Text(), nullable=False),
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column(
            "original_resources_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column(
            "task_resources_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("resource_scales", sa.Text(), nullable=False),
        sa.Column("fallback_queues", sa.Text(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("num_attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("status_date", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["array_id"], ["array.id"], name=op.f("fk_task_array_id_array")),
        sa.ForeignKeyConstraint(
            ["cluster_id"], ["cluster.id"], name=op.f("fk_task_cluster_id_cluster")
        ),
        sa.ForeignKeyConstraint(["node_id"], ["node.id"], name=op.f("fk_task_node_id_node")),
        sa.ForeignKeyConstraint(
            ["original_resources_id"],
            ["task_resources.id"],
            name=op.f("fk_task_original_resources_id_task_resources"),
        ),
        sa.ForeignKeyConstraint(
            ["task_resources_id"],
            ["task_resources.id"],
            name=op.f("fk_task_task_resources_id_task_resources"),
        ),
        sa.ForeignKeyConstraint(
            ["workflow_id"], ["workflow.id"], name=op.f("fk_task_workflow_id_workflow")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
        sa.UniqueConstraint("workflow_id", "node_id", name=op.f("uq_task_workflow_id_node_id")),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_workflow_id_status"), ["workflow_id", "status"], unique=False
        )

    op.create_table(
        "task_arg",
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("arg_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["arg_id"], ["arg.id"], name=op.f("fk_task_arg_arg_id_arg")),
        sa.ForeignKeyConstraint(["task_id"], ["task.id"], name=op.f("fk_task_arg_task_id_task")),
        sa.PrimaryKeyConstraint("task_id", "arg_id", name=op.f("pk_task_arg")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "task_attribute",
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_task_attribute_task_id_task")
        ),
        sa.PrimaryKeyConstraint("task_id", "name", name=op.f("pk_task_attribute")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "task_instance",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workflow_run_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("array_id", sa.Integer(), nullable=False),
        sa.Column(
            "task_resources_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("array_batch_num", sa.Integer(), nullable=True),
        sa.Column("array_step_id", sa.Integer(), nullable=True),
        sa.Column("distributor_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=1), nullable=False),
        sa.Column("status_date", sa.DateTime(), nullable=False),
        sa.Column("submitted_date", sa.DateTime(), nullable=True),
        sa.Column("report_by_date", sa.DateTime(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("stdout_path", sa.Text(), nullable=True),
        sa.Column("stderr_path", sa.Text(), nullable=True),
        sa.Column("stdout_tail", sa.Text(), nullable=True),
        sa.Column("stderr_tail", sa.Text(), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("wall_time", sa.Float(), nullable=True),
        sa.Column("cpu_time", sa.Float(), nullable=True),
        sa.Column("max_rss", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["array_id"], ["array.id"], name=op.f("fk_task_instance_array_id_array")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_task_instance_task_id_task")
        ),
        sa.ForeignKeyConstraint(
            ["task_resources_id"],
            ["task_resources.id"],
            name=op.f("fk_task_instance_task_resources_id_task_resources"),
        ),
        sa.ForeignKeyConstraint(
            ["workflow_run_id"],
            ["workflow_run.id"],
            name=op.f("fk_task_instance_workflow_run_id_workflow_run"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_instance")),
    )
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_instance_task_id"), ["task_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_task_instance_workflow_run_id_status"),
            ["workflow_run_id", "status"],
            unique=False,
        )

    op.create_table(
        "task_instance_error_log",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "task_instance_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("error_time", sa.DateTime(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["task_instance_id"],
            ["task_instance.id"],
            name=op.f("fk_task_instance_error_log_task_instance_id_task_instance"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_instance_error_log")),
    )
    with op.batch_alter_table("task_instance_error_log", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_instance_error_log_task_instance_id"),
            ["task_instance_id"],
            unique=False,
        )

    _seed_local_clusters()


# Local clusters run on the server's host or the user's machine; their one queue accepts any
# request a laptop could plausibly serve, so a local workflow needs no resources at all.
LOCAL_QUEUE_LIMITS = '{"cores": [1, 1024], "memory": [0.0, 4096.0], "runtime": [1, 31536000]}'


def _seed_local_clusters() -> None:
    cluster = sa.table(
        "cluster",
        sa.column("id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("plugin", sa.String),
        sa.column("parameters", sa.Text),
    )
    queue = sa.table(
        "queue",
        sa.column("cluster_id", sa.Integer),
        sa.column("name", sa.String),
        sa.column("is_default", sa.Boolean),
        sa.column("limits", sa.Text),
    )
    names = ("sequential", "multiprocess", "dummy")
    op.bulk_insert(
        cluster,
        [{"id": i, "name": n, "plugin": n, "parameters": "{}"} for i, n in enumerate(names, 1)],
    )
    op.bulk_insert(
        queue,
        [
            {"cluster_id": i, "name": "default", "is_default": True, "limits": LOCAL_QUEUE_LIMITS}
            for i in range(1, len(names) + 1)
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("task_instance_error_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_instance_error_log_task_instance_id"))

    op.drop_table("task_instance_error_log")
    with op.batch_alter_table("task_instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_instance_workflow_run_id_status"))
        batch_op.drop_index(batch_op.f("ix_task_instance_task_id"))

    op.drop_table("task_instance")
    op.drop_table("task_attribute")
    op.drop_table("task_arg")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_workflow_id_status"))

    op.drop_table("task")
    op.drop_table("node_arg")
    with op.batch_alter_table("edge", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_edge_dag_id_upstream_node_id"))

    op.drop_table("edge")
    op.drop_table("task_template_arg")
    op.drop_table("node")
    op.drop_table("array")
    with op.batch_alter_table("workflow_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_run_workflow_id"))
        batch_op.drop_index(batch_op.f("ix_workflow_run_status"))

    op.drop_table("workflow_run")
    op.drop_table("workflow_attribute")
    op.drop_table("task_template_version")
    with op.batch_alter_table("workflow", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_status"))

    op.drop_table("workflow")
    op.drop_table("task_template")
    op.drop_table("task_resources")
    with op.batch_alter_table("tool_version", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tool_version_tool_id"))

    op.drop_table("tool_version")
    op.drop_table("queue")
    op.drop_table("tool")
    op.drop_table("dag")
    op.drop_table("cluster")
    op.drop_table("arg")
