"""Bulk inserts and per-row updates: the same rows stored on every engine, odd text included.

On PostgreSQL the rows go as array literals unnested by one statement; on SQLite and MariaDB
as the driver's ``executemany``. Either way each value must come back exactly as it went in.
"""

from __future__ import annotations

import datetime as dt

import pytest

from herdsman.server.database import models, sql
from herdsman.server.database.bulk import insert_ignore, insert_rows, update_rows
from herdsman.server.database.engine import make_database
from herdsman.server.database.migrate import upgrade

pytestmark = pytest.mark.integration

AWKWARD_NAMES = [
    'a "quoted" name',
    "back\\slash",
    "NULL",
    "",
    "comma, brace } and { open",
    "tab\tand newline\n",
    "ünïcödé ✓",
    "   spaces   ",
]


def test_rows_come_back_as_they_went_in(fresh_database_url: str) -> None:
    database = make_database(fresh_database_url)
    try:
        upgrade(database)
        when = dt.datetime(2026, 12, 6, 22, 30, 1)  # whole seconds: MariaDB keeps no fraction
        with database.transaction() as session:
            insert_rows(
                session,
                models.Tool,
                ("name", "created_date"),
                [(name, sql.timestamp(session, when)) for name in AWKWARD_NAMES],
            )
            # Present already: skipped, not an error, and the stored row is unchanged.
            insert_ignore(
                session,
                models.Tool,
                ("name", "created_date"),
                [("NULL", sql.timestamp(session, when + dt.timedelta(days=1))), ("new", when)],
            )
        with database.transaction() as session:
            stored = dict(sql.fetch_all(session, "SELECT name, id FROM tool"))
            assert sorted(stored) == sorted([*AWKWARD_NAMES, "new"])
            renamed = {stored[name]: f"{name}-renamed" for name in AWKWARD_NAMES[:4]}
            update_rows(
                session,
                models.Tool,
                ("name",),
                [(name, tool_id) for tool_id, name in renamed.items()],
                also="created_date = ?",
                also_params=(sql.timestamp(session, when + dt.timedelta(hours=1)),),
            )
        with database.transaction() as session:
            rows = sql.fetch_all(session, "SELECT id, name, created_date FROM tool")
    finally:
        database.dispose()
    by_id = {tool_id: (name, _naive(created)) for tool_id, name, created in rows}
    for tool_id, name in renamed.items():
        assert by_id[tool_id] == (name, when + dt.timedelta(hours=1))
    untouched = {name for tool_id, (name, _) in by_id.items() if tool_id not in renamed}
    assert untouched == {*AWKWARD_NAMES[4:], "new"}
    assert by_id[stored["NULL"]][1] == when + dt.timedelta(hours=1)


def test_id_lists_select_exactly_their_rows(fresh_database_url: str) -> None:
    database = make_database(fresh_database_url)
    try:
        upgrade(database)
        with database.transaction() as session:
            insert_rows(
                session,
                models.Tool,
                ("name", "created_date"),
                [(f"tool-{n}", sql.timestamp(session, dt.datetime(2026, 1, 1))) for n in range(50)],
            )
        with database.transaction() as session:
            ids = sorted(row[0] for row in sql.fetch_all(session, "SELECT id FROM tool"))
            wanted = ids[::7]
            condition, params = sql.id_in(session, "id", wanted)
            found = sorted(
                row[0]
                for row in sql.fetch_all(session, f"SELECT id FROM tool WHERE {condition}", params)
            )
    finally:
        database.dispose()
    assert found == wanted


def _naive(value: object) -> dt.datetime:
    """A stored DateTime as a datetime (SQLite returns its text)."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))
