"""Database bytes per task, and the speed of pruning, for one layered dummy workflow.

For N tasks (10 layers, each task depending on the one at its index in the layer before):

1. bind it, and measure every table's size (table and its indexes);
2. run it on the dummy cluster, and measure again;
3. make it look ended long ago, prune it (archive included) and time that: rows per second.

Sizes: SQLite from ``dbstat`` (pages of each table and index, after a WAL checkpoint) plus the
file; PostgreSQL ``pg_table_size`` and ``pg_indexes_size``; MariaDB ``data_length`` and
``index_length`` of ``information_schema.tables`` after ``ANALYZE TABLE``. Each engine runs on
a new database (PostgreSQL and MariaDB: created on the local servers, dropped afterwards).

    python benchmarks/storage.py --engine sqlite --tasks 100000
    python benchmarks/storage.py --engine postgresql --tasks 100000
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import bench_server

ADMIN_URLS = {
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/",
}
LAYERS = 10


@contextmanager
def new_database(engine: str) -> Iterator[str | None]:
    """A fresh database's URL on ``engine`` (None for SQLite: the embedded default)."""
    if engine == "sqlite":
        yield None
        return
    name = f"herdsman_bench_{secrets.token_hex(4)}"
    admin = create_engine(ADMIN_URLS[engine], isolation_level="AUTOCOMMIT")
    create = (
        f'CREATE DATABASE "{name}"'
        if engine == "postgresql"
        else f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
    )
    with admin.connect() as connection:
        connection.execute(text(create))
    try:
        yield str(make_url(ADMIN_URLS[engine]).set(database=name).render_as_string(False))
    finally:
        drop = (
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
            if engine == "postgresql"
            else f"DROP DATABASE IF EXISTS `{name}`"
        )
        with admin.connect() as connection:
            connection.execute(text(drop))
        admin.dispose()


def table_sizes(engine: Engine, by_index: bool = False) -> dict[str, int]:
    """Bytes per table, its indexes included (``by_index``: each index apart, SQLite and
    PostgreSQL)."""
    dialect = engine.dialect.name
    with engine.connect() as connection:
        if dialect == "sqlite":
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            owner = dict(
                connection.exec_driver_sql(
                    "SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"
                ).all()
            )
            sizes: dict[str, int] = {}
            for name, size in connection.exec_driver_sql(
                "SELECT name, sum(pgsize) FROM dbstat GROUP BY name"
            ).all():
                table = name if by_index else owner.get(name, name)
                sizes[table] = sizes.get(table, 0) + int(size)
            return sizes
        if dialect == "postgresql" and by_index:
            rows = connection.exec_driver_sql(
                "SELECT relname, pg_relation_size(oid) FROM pg_class "
                "WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'i')"
            ).all()
            return {name: int(size) for name, size in rows}
        if dialect == "postgresql":
            rows = connection.exec_driver_sql(
                "SELECT relname, pg_table_size(relid) + pg_indexes_size(relid) "
                "FROM pg_catalog.pg_statio_user_tables"
            ).all()
            return {name: int(size) for name, size in rows}
        tables = [row[0] for row in connection.exec_driver_sql("SHOW TABLES").all()]
        for table in tables:
            connection.exec_driver_sql(f"ANALYZE TABLE `{table}`").all()
        if by_index:
            rows = connection.exec_driver_sql(
                "SELECT concat(table_name, '.', index_name), stat_value * @@innodb_page_size "
                "FROM mysql.innodb_index_stats WHERE database_name = DATABASE() "
                "AND stat_name = 'size'"
            ).all()
            return {name: int(size) for name, size in rows}
        rows = connection.exec_driver_sql(
            "SELECT table_name, data_length + index_length FROM information_schema.tables "
            "WHERE table_schema = DATABASE()"
        ).all()
        return {name: int(size) for name, size in rows}


def show_sizes(label: str, sizes: dict[str, int], tasks: int, file_bytes: int | None) -> None:
    total = sum(sizes.values())
    print(f"\n{label}: {total / 2**20:,.1f} MiB in tables, {total / tasks:,.0f} B/task", end="")
    if file_bytes is not None:
        print(f"; file {file_bytes / 2**20:,.1f} MiB, {file_bytes / tasks:,.0f} B/task", end="")
    print()
    for name, size in sorted(sizes.items(), key=lambda item: -item[1])[:16]:
        if size:
            print(f"  {name:44} {size / 2**20:9.2f} MiB {size / tasks:8.1f} B/task")


def file_size(url: str) -> int | None:
    if not url.startswith("sqlite"):
        return None
    path = Path(make_url(url).database or "")
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql", "mariadb"], default="sqlite")
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--chunk-size", type=int, default=5_000)
    parser.add_argument("--no-run", action="store_true", help="Bind and prune only.")
    parser.add_argument("--by-index", action="store_true", help="Each index's size apart.")
    args = parser.parse_args()

    from herdsman import Tool
    from herdsman.core.requester import Requester
    from herdsman.server.database.engine import make_database
    from herdsman.server.domain.retention import prune

    with new_database(args.engine) as database_url, bench_server(database_url) as server:
        url = server.database_url
        engine = create_engine(url)
        requester = Requester(server.url, token=server.token)
        tool = Tool("storage-benchmark", requester=requester)
        tool.set_default_cluster_name("dummy")
        workflow = tool.create_workflow(name="storage", workflow_args=f"storage-{time.time()}")
        step = tool.get_task_template("step", "echo {layer} {i}", node_args=["layer", "i"])
        width = args.tasks // LAYERS
        previous = None
        for layer in range(LAYERS):
            current = step.create_tasks(layer=layer, i=range(width))
            if previous is not None:
                for upstream, task in zip(previous, current, strict=True):
                    task.add_upstream(upstream)
            workflow.add_tasks(current)
            previous = current
        tasks = len(workflow.tasks)
        started = time.perf_counter()
        workflow_id = workflow.bind()
        print(f"{args.engine}: {tasks:,} tasks bound in {time.perf_counter() - started:.2f} s")
        show_sizes("after bind", table_sizes(engine, args.by_index), tasks, file_size(url))
        if not args.no_run:
            started = time.perf_counter()
            status = workflow.run(progress=False)
            print(f"\nrun: {status} in {time.perf_counter() - started:.1f} s")
        else:
            with engine.begin() as connection:
                connection.execute(
                    text("UPDATE workflow SET status = 'F' WHERE id = :w"), {"w": workflow_id}
                )
        show_sizes("after run", table_sizes(engine, args.by_index), tasks, file_size(url))
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE workflow SET status_date = :d WHERE id = :w"),
                {"d": "2000-01-01 00:00:00", "w": workflow_id},
            )
        database = make_database(url)
        with tempfile.TemporaryDirectory(prefix="herdsman-archive-") as archives:
            report = prune(
                database,
                older_than_days=1,
                archive_dir=Path(archives),
                chunk_size=args.chunk_size,
            )
            pruned = report.pruned[0]
            archive_bytes = pruned.archive.stat().st_size if pruned.archive else 0
        database.dispose()
        print(
            f"\nprune: {pruned.total_rows:,} rows in {pruned.seconds:.1f} s "
            f"({pruned.total_rows / pruned.seconds:,.0f} rows/s, "
            f"{tasks / pruned.seconds:,.0f} tasks/s), archive {archive_bytes / 2**20:.1f} MiB "
            f"({archive_bytes / tasks:.0f} B/task) written in {pruned.archive_seconds:.1f} s"
        )
        for table, count in sorted(pruned.rows.items(), key=lambda item: -item[1]):
            print(f"  {table:26} {count:>10,}")
        show_sizes("after prune", table_sizes(engine), tasks, file_size(url))
        engine.dispose()
        requester.close()


if __name__ == "__main__":
    main()
