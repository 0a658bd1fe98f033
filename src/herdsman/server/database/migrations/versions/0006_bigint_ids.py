"""64-bit ids for every table that grows with use, and room for long commands on MySQL.

The ids of tool versions, templates and their versions, DAGs, workflows, runs and arrays
become BIGINT, and so does every foreign key pointing at them (nodes, tasks and attempts were
64-bit from the start). A busy shared server passes 2**31 rows of some of these within years,
and a 32-bit column then refuses every new row. Catalogue tables whose rows are names people
choose (clusters, queues, tools, argument names) keep 32-bit ids.

On MySQL/MariaDB, commands and command templates become MEDIUMTEXT: a command may be as long
as the kernel lets one argument be (128 KiB), more than TEXT holds (64 KiB).

SQLite is left alone: its INTEGER is 64-bit already, and it has no MEDIUMTEXT. On PostgreSQL
and MySQL/MariaDB each table is altered by one statement, so a large table is rewritten once,
not once per column; expect the upgrade of a database with hundreds of millions of tasks to
take a while.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Table -> the columns that become 64-bit. "id" is the table's own autoincrement key; every
# other column is a NOT NULL foreign key (some of them part of a composite primary key).
WIDENED: dict[str, tuple[str, ...]] = {
    "tool_version": ("id",),
    "task_template": ("id", "tool_version_id"),
    "task_template_version": ("id", "task_template_id"),
    "task_template_arg": ("task_template_version_id",),
    "node": ("task_template_version_id",),
    "dag": ("id",),
    "edge": ("dag_id",),
    "workflow": ("id", "tool_version_id", "dag_id"),
    "workflow_attribute": ("workflow_id",),
    "workflow_run": ("id", "workflow_id"),
    "array": ("id", "workflow_id", "task_template_version_id"),
    "task": ("workflow_id", "array_id"),
    "task_instance": ("workflow_run_id", "array_id"),
    "status_change": ("workflow_id",),
}

# MySQL/MariaDB only: NOT NULL text columns that become MEDIUMTEXT.
LONG_TEXT: dict[str, tuple[str, ...]] = {
    "task_template_version": ("command_template",),
    "task": ("command",),
}


def upgrade() -> None:
    _alter(integer="BIGINT", text="MEDIUMTEXT")


def downgrade() -> None:
    _alter(integer="INTEGER", text="TEXT")


def _alter(*, integer: str, text: str) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        _alter_postgresql(integer)
    elif dialect in ("mysql", "mariadb"):
        _alter_mysql(integer, text)


def _quote(name: str) -> str:
    quoted: str = op.get_context().dialect.identifier_preparer.quote(name)
    return quoted


def _alter_postgresql(integer: str) -> None:
    for table, columns in WIDENED.items():
        changes = ", ".join(f"ALTER COLUMN {_quote(c)} TYPE {integer}" for c in columns)
        op.execute(f"ALTER TABLE {_quote(table)} {changes}")
        if "id" in columns:
            # A serial column's sequence is typed too, and stops at its type's maximum.
            op.execute(
                f"DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s AS {integer}', "
                f"pg_get_serial_sequence('{_quote(table)}', 'id')); END $$"
            )


def _alter_mysql(integer: str, text: str) -> None:
    # MariaDB refuses to change a column that a foreign key uses, whatever
    # FOREIGN_KEY_CHECKS says: those keys are dropped first and added again afterwards. With
    # the checks off, adding them back does not re-read every row: the data is unchanged.
    keys = _foreign_keys_on_widened_columns()
    op.execute("SET FOREIGN_KEY_CHECKS = 0")
    try:
        for table, table_keys in keys.items():
            drops = ", ".join(f"DROP FOREIGN KEY {_quote(key.name)}" for key in table_keys)
            op.execute(f"ALTER TABLE {_quote(table)} {drops}")
        for table in {**WIDENED, **LONG_TEXT}:
            changes = [
                f"MODIFY {_quote(column)} {integer} NOT NULL"
                + (" AUTO_INCREMENT" if column == "id" else "")
                for column in WIDENED.get(table, ())
            ]
            changes += [
                f"MODIFY {_quote(column)} {text} NOT NULL" for column in LONG_TEXT.get(table, ())
            ]
            op.execute(f"ALTER TABLE {_quote(table)} {', '.join(changes)}")
        for table, table_keys in keys.items():
            adds = ", ".join(
                f"ADD CONSTRAINT {_quote(key.name)} FOREIGN KEY "
                f"({', '.join(_quote(c) for c in key.columns)}) "
                f"REFERENCES {_quote(key.referred_table)} "
                f"({', '.join(_quote(c) for c in key.referred_columns)})"
                for key in table_keys
            )
            op.execute(f"ALTER TABLE {_quote(table)} {adds}")
    finally:
        op.execute("SET FOREIGN_KEY_CHECKS = 1")


class _ForeignKey(NamedTuple):
    name: str
    columns: list[str]
    referred_table: str
    referred_columns: list[str]


def _foreign_keys_on_widened_columns() -> dict[str, list[_ForeignKey]]:
    """Every foreign key, by table, whose columns or referred columns change type.

    Every key has a name: the models' naming convention gives each one.
    """
    inspector = sa.inspect(op.get_bind())
    found: dict[str, list[_ForeignKey]] = {}
    for table in inspector.get_table_names():
        for key in inspector.get_foreign_keys(table):
            own = set(key["constrained_columns"]) & set(WIDENED.get(table, ()))
            referred = set(key["referred_columns"]) & set(WIDENED.get(key["referred_table"], ()))
            if own or referred:
                found.setdefault(table, []).append(
                    _ForeignKey(
                        str(key["name"]),
                        key["constrained_columns"],
                        key["referred_table"],
                        key["referred_columns"],
                    )
                )
    return found
