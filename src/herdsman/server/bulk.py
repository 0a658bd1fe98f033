"""Bulk writes shared by the bind routes: insert-if-absent and id look-up by key.

Every bulk route is a get-or-create: it inserts the rows that do not exist yet and then reads
the ids of all of them by their unique key. Inserting with "ignore duplicates" instead of
"select, then insert what was missing" means two clients binding the same rows at once cannot
fail with a unique violation, and a replayed request changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Table, select, tuple_
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import Session

from herdsman.server.models import Base

__all__ = ["IN_CHUNK", "chunked", "insert_ignore", "lookup_ids", "lookup_pair_ids"]

T = TypeVar("T")

# Bound parameters per IN (...) clause: far below SQLite's 32,766 and fast on every engine.
IN_CHUNK = 2000


def chunked(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_ignore(session: Session, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows``, skipping any whose primary or unique key already exists."""
    if not rows:
        return
    table = _table(model)
    dialect = session.get_bind().dialect.name
    statement: Any
    if dialect == "sqlite":
        statement = sqlite.insert(table).on_conflict_do_nothing()
    elif dialect == "postgresql":
        statement = postgresql.insert(table).on_conflict_do_nothing()
    elif dialect in ("mysql", "mariadb"):
        # A no-op update instead of INSERT IGNORE, which would also hide truncation and
        # foreign-key errors as warnings.
        first = next(iter(table.primary_key))
        statement = mysql.insert(table)
        statement = statement.on_duplicate_key_update({first.name: statement.inserted[first.name]})
    else:  # pragma: no cover - make_database accepts only the three engines
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    session.execute(statement, list(rows))


def lookup_ids(
    session: Session,
    model: type[Base],
    key_column: str,
    keys: Sequence[Any],
    *,
    where: Mapping[str, Any] | None = None,
    id_column: str = "id",
) -> dict[Any, int]:
    """Map each of ``keys`` (values of ``key_column``) to the row id, within ``where``."""
    table = _table(model)
    key = table.c[key_column]
    found: dict[Any, int] = {}
    for part in chunked(keys, IN_CHUNK):
        query = select(key, table.c[id_column]).where(key.in_(part))
        for column, value in (where or {}).items():
            query = query.where(table.c[column] == value)
        found.update(session.execute(query).tuples().all())
    return found


def lookup_pair_ids(
    session: Session, model: type[Base], columns: tuple[str, str], pairs: Sequence[tuple[Any, Any]]
) -> dict[tuple[Any, Any], int]:
    """Like :func:`lookup_ids` for a two-column key."""
    table = _table(model)
    first, second = table.c[columns[0]], table.c[columns[1]]
    found: dict[tuple[Any, Any], int] = {}
    for part in chunked(pairs, IN_CHUNK // 2):
        query = select(first, second, table.c.id).where(tuple_(first, second).in_(part))
        for a, b, row_id in session.execute(query).tuples():
            found[(a, b)] = row_id
    return found


def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)
