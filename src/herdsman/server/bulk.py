"""Bulk writes shared by the bind routes: insert-if-absent and id look-up by key.

Every bulk route is a get-or-create: it inserts the rows that do not exist yet and then reads
the ids of all of them by their unique key. Inserting with "ignore duplicates" instead of
"select, then insert what was missing" means two clients binding the same rows at once cannot
fail with a unique violation, and a replayed request changes nothing.

Rows go to the driver's ``executemany`` as tuples through SQL text built once per table and
dialect. SQLAlchemy's per-row parameter processing costs more than SQLite's own insert at a
million rows, and none of it is needed for these plain columns.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Dialect, Table
from sqlalchemy.orm import Session

from herdsman.server.models import Base

__all__ = ["IN_CHUNK", "chunked", "db_timestamp", "insert_ignore", "lookup_ids", "lookup_rows"]

# Bound parameters per IN (...) clause: far below SQLite's 32,766 and fast on every engine.
IN_CHUNK = 2000

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def db_timestamp(session: Session, value: dt.datetime) -> Any:
    """``value`` as the driver wants it for a DateTime column written through raw SQL.

    SQLite has no date type; SQLAlchemy stores text in this exact form and parses it back.
    """
    if _dialect(session).name == "sqlite":
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def insert_ignore(
    session: Session, model: type[Base], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order), skipping those whose key exists."""
    if rows:
        sql = _insert_ignore_sql(_dialect(session), _table(model), tuple(columns))
        session.connection().exec_driver_sql(sql, list(rows))


def lookup_ids(
    session: Session,
    model: type[Base],
    key_column: str,
    keys: Sequence[Any],
    *,
    where: tuple[str, Any] | None = None,
) -> dict[Any, int]:
    """Map each of ``keys`` (values of ``key_column``) to its row's id, within ``where``."""
    rows = lookup_rows(session, model, key_column, keys, ("id",), where=where)
    return {key: row[0] for key, row in rows.items()}


def lookup_rows(
    session: Session,
    model: type[Base],
    key_column: str,
    keys: Sequence[Any],
    columns: Sequence[str],
    *,
    where: tuple[str, Any] | None = None,
) -> dict[Any, tuple[Any, ...]]:
    """Map each of ``keys`` (values of ``key_column``) to its row's ``columns``."""
    dialect = _dialect(session)
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    selected = ", ".join(quote(column) for column in (key_column, *columns))
    head = f"SELECT {selected} FROM {quote(_table(model).name)} WHERE "
    prefix: tuple[Any, ...] = ()
    if where is not None:
        head += f"{quote(where[0])} = {mark} AND "
        prefix = (where[1],)
    found: dict[Any, tuple[Any, ...]] = {}
    connection = session.connection()
    for part in chunked(keys, IN_CHUNK):
        sql = f"{head}{quote(key_column)} IN ({', '.join([mark] * len(part))})"
        for row in connection.exec_driver_sql(sql, (*prefix, *part)):
            found[row[0]] = tuple(row[1:])
    return found


def _dialect(session: Session) -> Dialect:
    return session.get_bind().dialect


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


@functools.lru_cache(maxsize=256)
def _insert_ignore_sql(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> str:
    quote = dialect.identifier_preparer.quote
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(quote(column) for column in columns)
    values = ", ".join([mark] * len(columns))
    sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({values})"
    if dialect.name in ("sqlite", "postgresql"):
        return sql + " ON CONFLICT DO NOTHING"
    if dialect.name in ("mysql", "mariadb"):
        # A no-op update instead of INSERT IGNORE, which would also hide truncation and
        # foreign-key errors as warnings.
        first = quote(next(iter(table.primary_key)).name)
        return sql + f" ON DUPLICATE KEY UPDATE {first} = {first}"
    raise RuntimeError(f"unsupported database dialect {dialect.name!r}")  # pragma: no cover
