"""The database schema: every workflow, run, task and attempt herdsman records.

One module owns the tables so a reader sees the whole domain at once. Rows that exist in
millions (nodes, node args, edges, tasks, task args, task instances) are kept narrow: ids,
a few short columns, no JSON blobs of ids. Identity hashes are sha256: hex strings for the few
big objects (workflows, DAGs), the first 63 bits as an integer for nodes and task args, which
exist in millions and are indexed (see :mod:`herdsman.client.identity`). Unique indexes on them
make every bind route an idempotent get-or-create.

Timestamps are naive UTC, written by the server (``utcnow()``), so the three engines agree.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from herdsman.core.limits import UNLIMITED
from herdsman.core.statuses import TaskInstanceStatus, TaskStatus, WorkflowRunStatus, WorkflowStatus

__all__ = [
    "Arg",
    "Array",
    "Audit",
    "Base",
    "Cluster",
    "Dag",
    "Edge",
    "ErrorGroupCount",
    "ErrorTaskCount",
    "Node",
    "NodeArg",
    "Queue",
    "RevokedToken",
    "StatusChange",
    "Task",
    "TaskArg",
    "TaskAttribute",
    "TaskInstance",
    "TaskInstanceErrorLog",
    "TaskResources",
    "TaskStatusCount",
    "TaskStatusHistory",
    "TaskTemplate",
    "TaskTemplateArg",
    "TaskTemplateVersion",
    "Tool",
    "ToolVersion",
    "UsageTotal",
    "Workflow",
    "WorkflowAttribute",
    "WorkflowRun",
    "utcnow",
]

# Ids of every table that grows with use (tool versions, templates, DAGs, workflows, runs,
# arrays, nodes, tasks, attempts, ...) are 64-bit: a busy shared server passes 2**31 tasks and
# attempts within years, and a 32-bit column would then refuse every insert. SQLite needs plain
# INTEGER for its rowid alias (and its integers are 64-bit anyway). Foreign keys take the type
# of the id they point at. Only catalogue tables whose rows are names people choose (clusters,
# queues, tools, argument names) keep 32-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")
# A task's command and its template: up to the kernel's limit on one argument (MAX_ARG_STRLEN,
# 128 KiB), which is more than MySQL's and MariaDB's TEXT holds (64 KiB).
COMMAND = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
HASH = String(64)
NAME = String(255)
STATUS = String(1)
STATUS_MESSAGE_LENGTH = 1000

# Tables keyed by a composite primary key store their rows in that key's B-tree on SQLite,
# instead of a rowid table plus a separate index: half the writes per row at bind.
WITHOUT_ROWID = {"sqlite_with_rowid": False}

# Explicit constraint names keep Alembic migrations identical on all three engines.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Naive UTC now: what every timestamp column stores."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


# --- clusters -------------------------------------------------------------------------------


class Cluster(Base):
    """A place tasks run: a plugin name plus its connection parameters (JSON)."""

    __tablename__ = "cluster"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    plugin: Mapped[str] = mapped_column(NAME)
    parameters: Mapped[str] = mapped_column(Text, default="{}")


class Queue(Base):
    """A queue (Slurm partition) of a cluster and its resource limits (JSON)."""

    __tablename__ = "queue"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("cluster.id"))
    name: Mapped[str] = mapped_column(NAME)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    limits: Mapped[str] = mapped_column(Text, default="{}")


# --- tools and templates --------------------------------------------------------------------


class Tool(Base):
    __tablename__ = "tool"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)
    created_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ToolVersion(Base):
    __tablename__ = "tool_version"
    __table_args__ = (UniqueConstraint("tool_id", "request_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tool_id: Mapped[int] = mapped_column(ForeignKey("tool.id"), index=True)
    # The creating request's name: its replay finds this version instead of making another.
    request_key: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class TaskTemplate(Base):
    __tablename__ = "task_template"
    __table_args__ = (UniqueConstraint("tool_version_id", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tool_version_id: Mapped[int] = mapped_column(ForeignKey("tool_version.id"))
    name: Mapped[str] = mapped_column(NAME)


class TaskTemplateVersion(Base):
    """A command template together with its split into node, task and op args."""

    __tablename__ = "task_template_version"
    __table_args__ = (UniqueConstraint("task_template_id", "version_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_template_id: Mapped[int] = mapped_column(ForeignKey("task_template.id"))
    command_template: Mapped[str] = mapped_column(COMMAND)
    version_hash: Mapped[str] = mapped_column(HASH)
    created_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class Arg(Base):
    """An argument name, shared by all templates that use it."""

    __tablename__ = "arg"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(NAME, unique=True)


class TaskTemplateArg(Base):
    """Which args a template version has, and whether each is a node, task or op arg."""

    __tablename__ = "task_template_arg"
    __table_args__ = WITHOUT_ROWID

    task_template_version_id: Mapped[int] = mapped_column(
        ForeignKey("task_template_version.id"), primary_key=True
    )
    arg_id: Mapped[int] = mapped_column(ForeignKey("arg.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(4))  # "node", "task" or "op"


# --- nodes and DAGs -------------------------------------------------------------------------


class Node(Base):
    """A template version applied to node-arg values: a task's identity across workflows."""

    __tablename__ = "node"
    __table_args__ = (UniqueConstraint("task_template_version_id", "node_args_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_template_version_id: Mapped[int] = mapped_column(ForeignKey("task_template_version.id"))
    node_args_hash: Mapped[int] = mapped_column(BigInteger)


class NodeArg(Base):
    __tablename__ = "node_arg"
    __table_args__ = WITHOUT_ROWID

    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), primary_key=True)
    arg_id: Mapped[int] = mapped_column(ForeignKey("arg.id"), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Dag(Base):
    """A set of nodes and edges. ``completed_date`` is set once every edge is written.

    Each user binds their own DAGs: a DAG another user created (perhaps with other edges under
    the same hash) is never reused.
    """

    __tablename__ = "dag"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user: Mapped[str] = mapped_column(NAME, default="", server_default="")
    # sha256 of the binding user and the client's hash of the DAG (see binding.get_or_create_dag)
    hash: Mapped[str] = mapped_column(HASH, unique=True)
    created_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    completed_date: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Edge(Base):
    """One dependency: ``downstream_node_id`` waits for ``upstream_node_id`` in this DAG."""

    __tablename__ = "edge"
    __table_args__ = (Index(None, "dag_id", "upstream_node_id"), WITHOUT_ROWID)

    dag_id: Mapped[int] = mapped_column(ForeignKey("dag.id"), primary_key=True)
    downstream_node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), primary_key=True)
    upstream_node_id: Mapped[int] = mapped_column(ForeignKey("node.id"), primary_key=True)


# --- workflows and runs ---------------------------------------------------------------------


class Workflow(Base):
    """A DAG plus task args, identified by tool version, ``workflow_args`` and its tasks."""

    __tablename__ = "workflow"
    __table_args__ = (UniqueConstraint("tool_version_id", "workflow_args_hash"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    tool_version_id: Mapped[int] = mapped_column(ForeignKey("tool_version.id"))
    dag_id: Mapped[int] = mapped_column(ForeignKey("dag.id"))
    workflow_args_hash: Mapped[str] = mapped_column(HASH)
    task_hash: Mapped[str] = mapped_column(HASH)
    name: Mapped[str] = mapped_column(NAME, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    workflow_args: Mapped[str] = mapped_column(Text, default="")
    user: Mapped[str] = mapped_column(NAME, default="")
    max_concurrently_running: Mapped[int] = mapped_column(Integer, default=UNLIMITED)
    # The limit the client last bound. A re-bind that sends this value again keeps the limit in
    # force (possibly changed while running); any other value is a new setting and replaces it.
    bound_max_concurrently_running: Mapped[int] = mapped_column(
        Integer, default=10_000, server_default=text("10000")
    )
    num_tasks: Mapped[int] = mapped_column(BigInteger, default=0)
    # The last change-feed sequence number given out; see herdsman.server.database.feed.
    change_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    # Set once every task is written; a workflow without it is still being bound.
    bound_date: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    status: Mapped[str] = mapped_column(
        STATUS, default=WorkflowStatus.REGISTERING.value, index=True
    )
    status_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class WorkflowAttribute(Base):
    __tablename__ = "workflow_attribute"
    __table_args__ = WITHOUT_ROWID

    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"), primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class WorkflowRun(Base):
    """One execution of a workflow, owned by one swarm that heartbeats it."""

    __tablename__ = "workflow_run"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"), index=True)
    user: Mapped[str] = mapped_column(NAME, default="")
    host: Mapped[str] = mapped_column(NAME, default="")
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    herdsman_version: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(
        STATUS, default=WorkflowRunStatus.REGISTERED.value, index=True
    )
    status_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # Why the run has its status, as sent with the change (who stopped it, why it ended).
    status_message: Mapped[str] = mapped_column(
        String(STATUS_MESSAGE_LENGTH), default="", server_default=text("''")
    )
    heartbeat_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    created_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # When a distributor last triaged the run: after the run ended, the sign that someone still
    # sees its live attempts through (see herdsman.server.domain.reaper).
    triage_date: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Array(Base):
    """A workflow's tasks of one template; one cluster job array per batch of them."""

    __tablename__ = "array"
    __table_args__ = (UniqueConstraint("workflow_id", "task_template_version_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"))
    task_template_version_id: Mapped[int] = mapped_column(ForeignKey("task_template_version.id"))
    name: Mapped[str] = mapped_column(NAME, default="")
    max_concurrently_running: Mapped[int] = mapped_column(Integer, default=UNLIMITED)
    # As Workflow.bound_max_concurrently_running, for this array's limit.
    bound_max_concurrently_running: Mapped[int] = mapped_column(
        Integer, default=10_000, server_default=text("10000")
    )
    created_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


# --- tasks ----------------------------------------------------------------------------------


class TaskResources(Base):
    """One resource request. ``kind`` is original, validated or adjusted.

    Original and validated requests are shared by content (``hash``) so a million tasks with
    the same request cost one row; each adjustment after a resource kill is a row of its own,
    which keeps the history of what was tried.
    """

    __tablename__ = "task_resources"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hash: Mapped[str | None] = mapped_column(HASH, unique=True, nullable=True)
    kind: Mapped[str] = mapped_column(String(10))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queue.id"), nullable=True)
    requested: Mapped[str] = mapped_column(Text)


class Task(Base):
    """A node plus task-arg values inside one workflow; op args never change its identity.

    ``peak_wall_time`` and ``peak_rss`` are the most any of its attempts ran and used, kept
    as attempts report, so that listings sort by them through an index rather than by
    grouping every attempt. Those indexes hold only the tasks with a figure (where the engine
    has partial indexes): each status change of a task writes a new version of its row into
    every index it belongs in, and a task changes status several times before its first
    figure arrives.
    """

    __tablename__ = "task"
    __table_args__ = (
        UniqueConstraint("workflow_id", "node_id"),
        Index(None, "workflow_id", "status", "id"),
        *(
            Index(
                None,
                "workflow_id",
                peak,
                "id",
                postgresql_where=text(f"{peak} IS NOT NULL"),
                sqlite_where=text(f"{peak} IS NOT NULL"),
            )
            for peak in ("peak_wall_time", "peak_rss")
        ),
        Index(None, "workflow_id", "num_attempts", "id"),
        Index(None, "array_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"))
    node_id: Mapped[int] = mapped_column(ForeignKey("node.id"))
    array_id: Mapped[int] = mapped_column(ForeignKey("array.id"))
    task_args_hash: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(NAME)
    command: Mapped[str] = mapped_column(COMMAND)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("cluster.id"))
    original_resources_id: Mapped[int] = mapped_column(ForeignKey("task_resources.id"))
    task_resources_id: Mapped[int] = mapped_column(ForeignKey("task_resources.id"))
    resource_scales: Mapped[str] = mapped_column(Text, default="")
    fallback_queues: Mapped[str] = mapped_column(Text, default="")
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    num_attempts: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(STATUS, default=TaskStatus.REGISTERING.value)
    status_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    peak_wall_time: Mapped[float | None] = mapped_column(Double, nullable=True)
    peak_rss: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Set when a resume's script no longer had the task: it is out of its workflow (no count,
    # listing or run sees it) and kept for the record. See herdsman.server.domain.removal.
    removed_date: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    # The DAG the task belonged to when it was removed; alone (no removed_date), the mark of a
    # task that the resume being bound has not sent yet. No foreign key: for the record only.
    removed_from_dag_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class TaskArg(Base):
    __tablename__ = "task_arg"
    __table_args__ = WITHOUT_ROWID

    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), primary_key=True)
    arg_id: Mapped[int] = mapped_column(ForeignKey("arg.id"), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TaskAttribute(Base):
    __tablename__ = "task_attribute"
    __table_args__ = WITHOUT_ROWID

    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), primary_key=True)
    name: Mapped[str] = mapped_column(NAME, primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TaskInstance(Base):
    """One attempt at a task: where and how it ran, and what it used."""

    __tablename__ = "task_instance"
    # (array, id): a template's newest attempts, for its medians, without a sort.
    __table_args__ = (Index(None, "workflow_run_id", "status"), Index(None, "array_id", "id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    workflow_run_id: Mapped[int] = mapped_column(ForeignKey("workflow_run.id"))
    task_id: Mapped[int] = mapped_column(ForeignKey("task.id"), index=True)
    array_id: Mapped[int] = mapped_column(ForeignKey("array.id"))
    task_resources_id: Mapped[int] = mapped_column(ForeignKey("task_resources.id"))
    array_batch_num: Mapped[int | None] = mapped_column(Integer, nullable=True)
    array_step_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    distributor_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The distributor's name for the claim that took it, so a replayed claim gets it again.
    claim_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(STATUS, default=TaskInstanceStatus.QUEUED.value)
    status_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    submitted_date: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    report_by_date: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    host: Mapped[str | None] = mapped_column(NAME, nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stdout_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    stderr_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    stdout_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
    stderr_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    wall_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    max_rss: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # What the attempt was queued with (bytes, seconds, cores), beside what it used, so that
    # requested and used read side by side; None where the request named no such value.
    requested_memory: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    requested_runtime: Mapped[float | None] = mapped_column(Float, nullable=True)
    requested_cores: Mapped[int | None] = mapped_column(Integer, nullable=True)


class TaskInstanceErrorLog(Base):
    """One error of an attempt, with the kind of failure it is.

    ``signature`` is the digest of the error's message and stderr with what varies masked
    (:mod:`herdsman.core.error_signature`) and ``exit_class`` what ended the attempt; the
    workflow's id, the task's and the array's are copied here so that grouping a workflow's
    errors, and finding the tasks of a group, read this table alone.
    """

    __tablename__ = "task_instance_error_log"
    __table_args__ = (Index(None, "workflow_id", "signature", "task_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_instance_id: Mapped[int] = mapped_column(ForeignKey("task_instance.id"), index=True)
    workflow_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error_time: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    description: Mapped[str] = mapped_column(Text)
    signature: Mapped[str | None] = mapped_column(String(16), nullable=True)
    exit_class: Mapped[str | None] = mapped_column(String(16), nullable=True)
    task_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    array_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class StatusChange(Base):
    """One status change in a workflow's change feed, numbered per workflow without gaps.

    ``kind`` is T (task), I (task instance) or R (workflow run); ``task_id`` is set for task
    instances so a follower can map them without another read.
    """

    __tablename__ = "status_change"
    __table_args__ = WITHOUT_ROWID

    # No foreign key: its check was more than half the cost of writing a feed row on
    # PostgreSQL, and the feed is written by the server alone (the prune deletes it first).
    workflow_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(1))
    object_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(STATUS)
    task_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


class TaskStatusCount(Base):
    """How many of a workflow's tasks of one array (one template version) have each status,
    and the attempts they spent.

    Kept by the writes that change statuses (see :class:`~herdsman.server.database.feed.
    ChangeRecorder`), as increments in the same transaction, so that a workflow's counts are a
    read of a few rows instead of a count over its tasks. Written at bind by
    :func:`~herdsman.server.domain.binding.finish_workflow_bind`.
    """

    __tablename__ = "task_status_count"
    __table_args__ = WITHOUT_ROWID

    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"), primary_key=True)
    array_id: Mapped[int] = mapped_column(ForeignKey("array.id"), primary_key=True)
    status: Mapped[str] = mapped_column(STATUS, primary_key=True)
    num: Mapped[int] = mapped_column(BigInteger, default=0)
    # The attempts these tasks spent, and those beyond each task's first (its retries).
    attempts: Mapped[int] = mapped_column(BigInteger, default=0)
    retries: Mapped[int] = mapped_column(BigInteger, default=0)


HISTORY_SECONDS = 10
"""The width of one :class:`TaskStatusHistory` row's interval, in seconds."""


class TaskStatusHistory(Base):
    """How many of a workflow's tasks entered and left each status in one interval.

    ``bucket_start`` is the interval's first second (a multiple of :data:`HISTORY_SECONDS` since the
    epoch, UTC). Kept like :class:`TaskStatusCount`; the timeline of a workflow adds these up
    into coarser buckets, so its cost grows with the workflow's duration, not its tasks.
    """

    __tablename__ = "task_status_history"
    __table_args__ = WITHOUT_ROWID

    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"), primary_key=True)
    bucket_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    status: Mapped[str] = mapped_column(STATUS, primary_key=True)
    entered: Mapped[int] = mapped_column(BigInteger, default=0)
    exited: Mapped[int] = mapped_column(BigInteger, default=0)


class ErrorGroupCount(Base):
    """A workflow's errors of one signature and exit class in one array: how many, in how
    many tasks, first and last seen, and the newest one's log id (its sample).

    Kept like :class:`TaskStatusCount`, by increments in the transaction that logs the error
    (:mod:`~herdsman.server.database.error_counts`), so that the errors page reads a row per
    group instead of grouping every error. An error without a signature or exit class (logged
    before they existed) counts under "".
    """

    __tablename__ = "error_group_count"
    __table_args__ = WITHOUT_ROWID

    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"), primary_key=True)
    array_id: Mapped[int] = mapped_column(ForeignKey("array.id"), primary_key=True)
    signature: Mapped[str] = mapped_column(String(16), primary_key=True)
    exit_class: Mapped[str] = mapped_column(String(16), primary_key=True)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    tasks: Mapped[int] = mapped_column(BigInteger, default=0)
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime)
    newest_id: Mapped[int] = mapped_column(BigInteger)


class ErrorTaskCount(Base):
    """How many tasks of a workflow's array have had at least one error; kept with
    :class:`ErrorGroupCount` (a task with errors in two groups counts once here)."""

    __tablename__ = "error_task_count"
    __table_args__ = WITHOUT_ROWID

    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"), primary_key=True)
    array_id: Mapped[int] = mapped_column(ForeignKey("array.id"), primary_key=True)
    tasks: Mapped[int] = mapped_column(BigInteger, default=0)


class UsageTotal(Base):
    """What a workflow's attempts of one array asked for and used, summed over those that
    reported a wall time: core-seconds and memory byte-seconds requested (wall time times the
    request), CPU seconds used, and memory byte-seconds used (wall time times peak memory).

    Kept like :class:`TaskStatusCount`, by increments in the transaction that records an
    attempt's usage, so that the workflow's totals are a read of a row per template.
    """

    __tablename__ = "usage_total"
    __table_args__ = WITHOUT_ROWID

    workflow_id: Mapped[int] = mapped_column(ForeignKey("workflow.id"), primary_key=True)
    array_id: Mapped[int] = mapped_column(ForeignKey("array.id"), primary_key=True)
    attempts: Mapped[int] = mapped_column(BigInteger, default=0)
    core_seconds_requested: Mapped[float | None] = mapped_column(Double, nullable=True)
    cpu_seconds: Mapped[float | None] = mapped_column(Double, nullable=True)
    memory_byte_seconds_requested: Mapped[float | None] = mapped_column(Double, nullable=True)
    memory_byte_seconds_used: Mapped[float | None] = mapped_column(Double, nullable=True)


# --- identity and audit ---------------------------------------------------------------------


class RevokedToken(Base):
    """A token refused before its expiry; rows may be dropped once ``expires_date`` passed."""

    __tablename__ = "revoked_token"

    token_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    revoked_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_date: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Audit(Base):
    """One state-changing request or refused attempt: who, what, when and the answer."""

    __tablename__ = "audit"
    __table_args__ = (Index(None, "workflow_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    created_date: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    user: Mapped[str] = mapped_column(NAME, default="")
    role: Mapped[str] = mapped_column(String(16), default="")
    token_kind: Mapped[str] = mapped_column(String(16), default="")
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(1024))
    workflow_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status_code: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(1024), default="")
