"""Engines and units of work on SQLite, PostgreSQL and MariaDB/MySQL through one code path.

SQLite needs two engines. In WAL mode a deferred transaction that reads and then writes fails
at once with SQLITE_BUSY when another writer committed in between (waiting cannot help, so the
busy timeout does not apply). Write transactions therefore start with ``BEGIN IMMEDIATE``,
which takes the write lock up front and waits for it; read-only transactions stay deferred so
readers never queue behind writers. On the server engines both are the same engine.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

__all__ = ["Database", "make_database"]

logger = structlog.get_logger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 60_000
SQLITE_CACHE_KIB = 64 * 1024  # per connection
DEADLOCK_RETRIES = 8

T = TypeVar("T")

# Errors after which the same transaction may succeed when run again: deadlocks and
# serialization failures (PostgreSQL 40P01/40001; MySQL 1213 deadlock, 1205 lock wait timeout).
_RETRYABLE_PGCODES = frozenset({"40P01", "40001"})
_RETRYABLE_MYSQL_CODES = frozenset({1213, 1205})


@dataclass(frozen=True)
class Database:
    """The engines of one database and the sessions made from them."""

    url: str
    write_engine: Engine
    read_engine: Engine
    # SQLite only: one writer at a time, queued in-process. SQLite's own busy handler makes a
    # blocked writer sleep in growing steps (up to 100 ms) and poll; a Python lock wakes the
    # next writer the moment the lock is free, which is what keeps a task's hop in milliseconds.
    write_lock: threading.Lock | None = None

    @property
    def dialect(self) -> str:
        return self.write_engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work that writes: commits once at the end, rolls back on any error."""
        with self._write_serialized(), self._write_sessions() as session, session.begin():
            yield session

    @contextmanager
    def _write_serialized(self) -> Iterator[None]:
        if self.write_lock is None:
            yield
            return
        with self.write_lock:
            yield

    def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in one write transaction, again if the engine reports a deadlock.

        Concurrent bulk get-or-creates can deadlock on MariaDB's and PostgreSQL's index locks;
        the engine then aborts one transaction, which is safe to repeat as a whole.
        """
        for attempt in range(1, DEADLOCK_RETRIES + 1):
            try:
                with self.transaction() as session:
                    return work(session)
            except DBAPIError as error:
                if attempt == DEADLOCK_RETRIES or not _is_retryable(error):
                    raise
                logger.info("transaction_retried", attempt=attempt, error=str(error.orig))
                # Jittered back-off, so the transactions that collided do not collide again.
                time.sleep(random.uniform(0.01, 0.05) * attempt)
        raise AssertionError("unreachable")

    def read(self, work: Callable[[Session], T]) -> T:
        with self.reading() as session:
            return work(session)

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only unit of work; never takes SQLite's write lock."""
        with self._read_sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            self.read_engine.dispose()

    @functools.cached_property
    def _write_sessions(self) -> sessionmaker[Session]:
        return sessionmaker(self.write_engine, expire_on_commit=False)

    @functools.cached_property
    def _read_sessions(self) -> sessionmaker[Session]:
        return sessionmaker(self.read_engine, expire_on_commit=False)


# The server reads and changes rows by key, a thousand ids at a time. With PostgreSQL's default
# random_page_cost of 4 (a spinning disk's), its planner reads a batch of 1,000 ids out of a
# task table of 20,000 to 80,000 rows by scanning the whole table (17 ms, against 4 ms through
# the primary key), and scans again for every batch; 1.1 is the usual figure for SSDs and for
# tables in memory, which a shared server's busy tables are. Set per connection, so it applies
# only to herdsman's own sessions.
POSTGRESQL_RANDOM_PAGE_COST = 1.1

DEFAULT_POOL_SIZE = 10
DEFAULT_POOL_OVERFLOW = 20


def make_database(
    url: str, *, pool_size: int = DEFAULT_POOL_SIZE, pool_overflow: int = DEFAULT_POOL_OVERFLOW
) -> Database:
    """Engines for ``url`` with each engine's settings applied on every new connection.

    ``pool_size`` connections stay open per process on PostgreSQL and MariaDB, up to
    ``pool_overflow`` more while requests queue for them; SQLite opens what it needs.
    """
    if url.startswith("sqlite"):
        return Database(
            url,
            _sqlite_engine(url, immediate=True),
            _sqlite_engine(url, immediate=False),
            write_lock=threading.Lock(),
        )
    engine = _server_engine(url, pool_size, pool_overflow)
    return Database(url, engine, engine)


def _server_engine(url: str, pool_size: int, pool_overflow: int) -> Engine:
    options: dict[str, Any] = {
        "pool_pre_ping": True,
        "pool_size": pool_size,
        "max_overflow": pool_overflow,
    }
    if url.startswith("mysql"):
        # READ COMMITTED as on PostgreSQL, so both engines see the same concurrency; MariaDB's
        # default REPEATABLE READ would also hold gap locks during bulk get-or-create.
        options.update(isolation_level="READ COMMITTED", pool_recycle=3600)
    engine = create_engine(url, **options)
    if url.startswith("postgresql"):

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # A SET on the new session, not libpq's "options": those the URL may carry
            # (a search_path, say) stay as they are.
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f"SET random_page_cost = {POSTGRESQL_RANDOM_PAGE_COST}")
            dbapi_connection.commit()

    return engine


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event, not the driver, decide how transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # Identity indexes are hashes, so inserts touch pages all over their B-trees; a page
        # cache of 2 MB (the default) thrashes from a few hundred thousand tasks on.
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _is_retryable(error: DBAPIError) -> bool:
    original = error.orig
    if getattr(original, "sqlstate", None) in _RETRYABLE_PGCODES:
        return True
    args: tuple[Any, ...] = tuple(getattr(original, "args", ()))
    return len(args) > 0 and args[0] in _RETRYABLE_MYSQL_CODES
