"""Plain SQL for the hot paths: the statements every task's attempt runs several times.

A chain of tasks waits on a handful of small writes per step (queue, claim, launch, running,
done), so their cost is the latency users see. Through the ORM each costs milliseconds of
Python; as prepared statement text handed to the driver it costs a fraction of one. Statements
are written with ``?`` placeholders and adapted once per dialect; they use only plain column
names that need no quoting on any engine.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.orm import Session

__all__ = [
    "execute",
    "execute_many",
    "fetch_all",
    "fetch_one",
    "for_update",
    "in_list",
    "insert_rows",
    "timestamp",
    "update_ids",
]


def _dialect(session: Session) -> Dialect:
    return session.get_bind().dialect


@functools.lru_cache(maxsize=4096)  # IN lists of every length up to a chunk
def _adapt(sql: str, paramstyle: str) -> str:
    return sql if paramstyle == "qmark" else sql.replace("?", "%s")


def _text(session: Session, sql: str) -> str:
    return _adapt(sql, _dialect(session).paramstyle)


def for_update(session: Session) -> str:
    """The row-lock clause of a SELECT: none on SQLite, whose writers are serialised anyway."""
    return "" if _dialect(session).name == "sqlite" else " FOR UPDATE"


def timestamp(session: Session, value: dt.datetime) -> Any:
    """``value`` as the driver stores it in a DateTime column (text on SQLite)."""
    if _dialect(session).name == "sqlite":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def execute(session: Session, sql: str, params: Sequence[Any] = ()) -> int:
    """Run one statement; the number of rows it changed."""
    result = session.connection().exec_driver_sql(_text(session, sql), tuple(params))
    return int(result.rowcount)


def execute_many(session: Session, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        session.connection().exec_driver_sql(_text(session, sql), [tuple(row) for row in rows])


# Rows per multi-row INSERT: 500 rows of up to 10 columns stay far below every engine's limit
# on bound parameters (SQLite's is 32,766).
INSERT_ROWS = 500


def insert_rows(session: Session, into: str, rows: Sequence[Sequence[Any]]) -> None:
    """``INSERT INTO table (columns) VALUES (...), (...), ...``: one statement per
    :data:`INSERT_ROWS` rows instead of one per row (``into`` is ``INSERT INTO t (a, b)``).

    The database parses and plans one statement instead of hundreds, and the driver sends one
    message: for the change feed's rows this halves their cost on PostgreSQL.
    """
    if not rows:
        return
    width = len(rows[0])
    row_marks = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), INSERT_ROWS):
        part = rows[start : start + INSERT_ROWS]
        values = ", ".join([row_marks] * len(part))
        params = tuple(value for row in part for value in row)
        session.connection().exec_driver_sql(_text(session, f"{into} VALUES {values}"), params)


def update_ids(
    session: Session, update: str, params: Sequence[Any], ids: Sequence[int], chunk: int = 1000
) -> None:
    """``UPDATE ... WHERE ... id IN (...)`` for rows that all get the same values: ``update``
    ends with ``id IN``, ``params`` fill its other placeholders; one statement per ``chunk`` ids
    instead of one per row."""
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        session.connection().exec_driver_sql(
            _text(session, f"{update} {in_list(len(part))}"), (*params, *part)
        )


def fetch_all(session: Session, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """The rows as the driver's tuples.

    Read from the driver's cursor, not through SQLAlchemy's result: plain SQL has no column
    types to convert, and SQLAlchemy's row objects cost three times the driver's own fetch, the
    largest per-row cost of the change feed and of a claim.
    """
    result = session.connection().exec_driver_sql(_text(session, sql), tuple(params))
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


def fetch_one(session: Session, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    rows = fetch_all(session, sql, params)
    return rows[0] if rows else None


def in_list(count: int) -> str:
    """``(?, ?, ...)`` for an IN clause of ``count`` values."""
    return "(" + ", ".join("?" * count) + ")"
