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

from sqlalchemy import ARRAY, BigInteger, ColumnElement, Dialect, any_, literal
from sqlalchemy.orm import InstrumentedAttribute, Session

__all__ = [
    "array_literal",
    "column_in",
    "execute",
    "execute_many",
    "fetch_all",
    "fetch_one",
    "for_update",
    "id_in",
    "in_list",
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


def id_in(session: Session, column: str, ids: Sequence[int]) -> tuple[str, tuple[Any, ...]]:
    """``column IN (?, ?, ...)`` and its parameters; on PostgreSQL ``column = ANY(?)`` with one
    array parameter instead.

    psycopg parses a statement's text for its placeholders on every call when the text is long
    (an IN list of a thousand is), which was a sixth of a dummy task's server CPU; the short
    ANY form is parsed once, cached and prepared like any other statement.
    """
    if _dialect(session).name == "postgresql":
        return f"{column} = ANY(?::bigint[])", (array_literal(ids, int),)
    return f"{column} IN {in_list(len(ids))}", tuple(ids)


def array_literal(values: Sequence[Any], element: type = object) -> str:
    """``values`` as a PostgreSQL array literal (``{1,2,NULL}``), for a parameter cast to the
    column's array type; ``element`` is the column's Python type (``int``, ``str``, ...). An
    ``int`` column's values must be ints or None: the database refuses the text of any other.

    psycopg dumps a list parameter element by element in Python (and walks it once more to
    choose the element type): a quarter of the server's CPU once batches went as arrays. Joined
    by ``str.join`` a column costs a tenth of that, and the database parses the text in C.
    """
    if not values:
        return "{}"
    if element is int:
        # str(None) is "None", which no integer's text contains.
        return "{" + ",".join(map(str, values)).replace("None", "NULL") + "}"
    if element is str and None not in values:
        plain = "".join(values)
        if '"' not in plain and "\\" not in plain:
            return '{"' + '","'.join(values) + '"}'
    return "{" + ",".join(map(_array_element, values)) + "}"


def _array_element(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int | float):
        return repr(value)
    # Quoted, with backslashes and double quotes escaped: any text, "NULL" included, stays text.
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def column_in(
    session: Session, column: ColumnElement[int] | InstrumentedAttribute[int], ids: Sequence[int]
) -> ColumnElement[bool]:
    """:func:`id_in` for a SQLAlchemy expression: ``column IN (...)``, or on PostgreSQL
    ``column = ANY(array)``, for the same reason."""
    if _dialect(session).name == "postgresql":
        return column == any_(literal(list(ids), ARRAY(BigInteger)))
    return column.in_(ids)


def update_ids(
    session: Session, update: str, params: Sequence[Any], ids: Sequence[int], chunk: int = 1000
) -> None:
    """``UPDATE ... WHERE ... id IN (...)`` for rows that all get the same values: ``update``
    ends with ``WHERE`` or ``AND`` (the id condition follows, see :func:`id_in`), ``params``
    fill its other placeholders; one statement per ``chunk`` ids
    instead of one per row. (Measured on PostgreSQL: a quarter of the client CPU of updating
    1,000 rows one by one, which the database also plans once. Rows that each get their own
    values go through :mod:`herdsman.server.database.bulk`.)"""
    for start in range(0, len(ids), chunk):
        condition, id_params = id_in(session, "id", ids[start : start + chunk])
        session.connection().exec_driver_sql(
            _text(session, f"{update} {condition}"), (*params, *id_params)
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
