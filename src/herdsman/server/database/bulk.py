"""Bulk writes shared by the bind routes: insert-if-absent and id look-up by key.

Every bulk route is a get-or-create: it inserts the rows that do not exist yet and then reads
the ids of all of them by their unique key. Inserting with "ignore duplicates" instead of
"select, then insert what was missing" means two clients binding the same rows at once cannot
fail with a unique violation, and a replayed request changes nothing.

Rows go to the driver's ``executemany`` as tuples (through :mod:`herdsman.server.database.sql`) with
SQL text built once per table and dialect. SQLAlchemy's per-row parameter processing costs
more than SQLite's own insert at a million rows, and none of it is needed for these columns.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Dialect, Table
from sqlalchemy.orm import Session

from herdsman.server.database import sql
from herdsman.server.database.models import Base

__all__ = ["IN_CHUNK", "chunked", "insert_ignore", "lookup_ids", "lookup_rows"]

# Bound parameters per IN (...) clause: far below SQLite's 32,766 and fast on every engine.
IN_CHUNK = 2000

T = TypeVar("T")


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignore(
    session: Session, model: type[Base], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order), skipping those whose key exists."""
    sql.execute_many(
        session, _insert_ignore_sql(_dialect(session), _table(model), tuple(columns)), rows
    )


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
    quote = _dialect(session).identifier_preparer.quote
    selected = ", ".join(quote(column) for column in (key_column, *columns))
    head = f"SELECT {selected} FROM {quote(_table(model).name)} WHERE "
    prefix: tuple[Any, ...] = ()
    if where is not None:
        head += f"{quote(where[0])} = ? AND "
        prefix = (where[1],)
    found: dict[Any, tuple[Any, ...]] = {}
    for part in chunked(keys, IN_CHUNK):
        query = f"{head}{quote(key_column)} IN {sql.in_list(len(part))}"
        for row in sql.fetch_all(session, query, (*prefix, *part)):
            found[row[0]] = row[1:]
    return found


def _dialect(session: Session) -> Dialect:
    return session.get_bind().dialect


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


@functools.lru_cache(maxsize=256)
def _insert_ignore_sql(dialect: Dialect, table: Table, columns: tuple[str, ...]) -> str:
    quote = dialect.identifier_preparer.quote
    names = ", ".join(quote(column) for column in columns)
    statement = f"INSERT INTO {quote(table.name)} ({names}) VALUES {sql.in_list(len(columns))}"
    if dialect.name in ("sqlite", "postgresql"):
        return statement + " ON CONFLICT DO NOTHING"
    if dialect.name in ("mysql", "mariadb"):
        # A no-op update instead of INSERT IGNORE, which would also hide truncation and
        # foreign-key errors as warnings.
        first = quote(next(iter(table.primary_key)).name)
        return statement + f" ON DUPLICATE KEY UPDATE {first} = {first}"
    raise RuntimeError(f"unsupported database dialect {dialect.name!r}")  # pragma: no cover
