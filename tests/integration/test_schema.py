"""The migrated schema on every engine: it matches the models, and its ids are 64-bit.

Migrations are written by hand per engine where Alembic's generic operations fall short
(MariaDB cannot change a column a foreign key uses), so each engine is checked against the
models the server queries with, not against the migration's own intentions.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from herdsman.server.database.engine import Database, make_database
from herdsman.server.database.migrate import alembic_config, upgrade
from herdsman.server.database.models import Base

pytestmark = pytest.mark.integration

# Past what a 32-bit column holds (2**31 - 1), well inside a 64-bit one.
BIG_ID = 2**40 + 7


@pytest.fixture
def database(fresh_database_url: str) -> Iterator[Database]:
    database = make_database(fresh_database_url)
    try:
        yield database
    finally:
        database.dispose()


def _to_revision(database: Database, revision: str, *, down: bool = False) -> None:
    config = alembic_config(database.url)
    with database.write_engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _foreign_keys(database: Database) -> list[tuple[str, str | None]]:
    inspector = inspect(database.write_engine)
    return sorted(
        (table, key["name"])
        for table in inspector.get_table_names()
        for key in inspector.get_foreign_keys(table)
    )


def _insert_chain(connection: Connection, base: int) -> None:
    """A tool version, a DAG, a workflow and a run with id ``base`` (the tool's is small:
    tools keep 32-bit ids)."""
    rows = [
        "INSERT INTO tool (id, name, created_date) VALUES (:t, :name, CURRENT_TIMESTAMP)",
        "INSERT INTO tool_version (id, tool_id, created_date) VALUES (:b, :t, CURRENT_TIMESTAMP)",
        "INSERT INTO dag (id, hash, created_date) VALUES (:b, :hash, CURRENT_TIMESTAMP)",
        "INSERT INTO workflow (id, tool_version_id, dag_id, workflow_args_hash, task_hash, "
        "name, description, workflow_args, user, max_concurrently_running, num_tasks, status, "
        "status_date, created_date) VALUES (:b, :b, :b, :hash, :hash, '', '', '', '', 1, 0, "
        "'G', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        "INSERT INTO workflow_run (id, workflow_id, user, host, herdsman_version, status, "
        "status_date, heartbeat_date, created_date) VALUES (:b, :b, '', '', '', 'G', "
        "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
    ]
    parameters = {"b": base, "t": base % 1000, "name": f"tool-{base}", "hash": f"{base:064x}"}
    for statement in rows:
        quoted = statement.replace(" user,", f" {_quote(connection, 'user')},")
        connection.execute(text(quoted), parameters)


def _quote(connection: Connection, name: str) -> str:
    quoted: str = connection.dialect.identifier_preparer.quote(name)
    return quoted


def test_migrated_schema_matches_the_models(database: Database) -> None:
    upgrade(database)

    with database.write_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)

    assert differences == []


def test_upgrade_keeps_rows_and_keys_and_takes_64_bit_ids(database: Database) -> None:
    upgrade(database)
    keys = _foreign_keys(database)
    _to_revision(database, "0005", down=True)
    with database.write_engine.begin() as connection:
        _insert_chain(connection, 17)

    upgrade(database)

    assert _foreign_keys(database) == keys
    with database.write_engine.begin() as connection:
        _insert_chain(connection, BIG_ID)
        runs = connection.execute(
            text("SELECT id, workflow_id FROM workflow_run ORDER BY id")
        ).all()
        if database.dialect == "postgresql":
            # The sequence behind the id must go past 2**31 - 1 too.
            connection.execute(
                text("SELECT setval(pg_get_serial_sequence('workflow', 'id'), :v)"), {"v": BIG_ID}
            )
    assert [tuple(run) for run in runs] == [(17, 17), (BIG_ID, BIG_ID)]


def test_the_feed_keeps_its_rows_when_its_foreign_key_goes(database: Database) -> None:
    _to_revision(database, "0013")
    with database.write_engine.begin() as connection:
        _insert_chain(connection, 23)
        connection.execute(
            text(
                "INSERT INTO status_change (workflow_id, seq, kind, object_id, status, task_id) "
                "VALUES (23, 1, 'T', 5, 'Q', NULL), (23, 2, 'I', 9, 'I', 5)"
            )
        )
    assert ("status_change", "fk_status_change_workflow_id_workflow") in _foreign_keys(database)

    upgrade(database)

    assert [table for table, _ in _foreign_keys(database)].count("status_change") == 0
    with database.write_engine.begin() as connection:
        rows = connection.execute(text("SELECT * FROM status_change ORDER BY seq")).all()
        if database.dialect == "sqlite":
            options = connection.execute(text("PRAGMA table_list('status_change')")).one()
            assert options.wr == 1  # still WITHOUT ROWID
    assert [tuple(row) for row in rows] == [(23, 1, "T", 5, "Q", None), (23, 2, "I", 9, "I", 5)]


_PEAK_INDEXES = ("ix_task_workflow_id_peak_wall_time_id", "ix_task_workflow_id_peak_rss_id")


def _peak_index_definitions(database: Database) -> list[str]:
    """The peak indexes' definitions as the engine states them ('' for one without partial
    indexes, where only the name is checked)."""
    names = sorted(
        index["name"] or "" for index in inspect(database.write_engine).get_indexes("task")
    )
    assert set(_PEAK_INDEXES) <= set(names)
    with database.write_engine.connect() as connection:
        if database.dialect == "postgresql":
            query = "SELECT indexdef FROM pg_indexes WHERE indexname = :name"
        elif database.dialect == "sqlite":
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"
        else:
            return ["" for _ in _PEAK_INDEXES]
        return [
            str(connection.execute(text(query), {"name": n}).scalar_one()) for n in _PEAK_INDEXES
        ]


def test_the_peak_indexes_hold_only_tasks_with_a_figure(database: Database) -> None:
    upgrade(database)

    definitions = _peak_index_definitions(database)

    if database.dialect in ("postgresql", "sqlite"):
        for definition, peak in zip(definitions, ("peak_wall_time", "peak_rss"), strict=True):
            # PostgreSQL puts the predicate in parentheses, SQLite keeps it as written.
            assert f"WHERE {peak} IS NOT NULL" in definition.replace("(", "").replace(")", "")
    _to_revision(database, "0014", down=True)
    assert all("WHERE" not in definition for definition in _peak_index_definitions(database))
