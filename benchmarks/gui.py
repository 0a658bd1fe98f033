"""GUI benchmark: every page and fragment of the web GUI on a workflow of a million tasks.

Seeds a fresh database through the real schema (migrated to head, kept counts included) with
one workflow of N tasks (default 1,000,000) in five templates, with a realistic history --
attempts and retries, errors in a few hundred signature groups, usage figures of every done
attempt, dependencies between two templates, ten hours of status changes -- plus 1,000 small
workflows of ten tasks. Rows go in by bulk SQL inserts, not by running tasks. Then starts a
real server on it (the embedded one, as a user's first client does) and measures, for each
page: the p95 of ~20 requests' times, the answer's size, and the time headless Chromium takes
to load the page (``load`` event; Playwright driving /usr/bin/chromium). The task CSV is
measured to its first bytes. Targets: p95 <= 200 ms, <= 300 KB, browser load <= 1 s.

    python benchmarks/gui.py                            # SQLite, 1,000,000 tasks
    python benchmarks/gui.py --tasks 100000             # smaller
    python benchmarks/gui.py --engine postgresql --database-url postgresql+psycopg://...

The PostgreSQL database named by --database-url must exist and be empty.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import json
import math
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from herdsman.client.embedded import embedded_server_status, ensure_server, stop_embedded_server
from herdsman.core.config import Settings
from herdsman.server.database import sql
from herdsman.server.database.engine import Database, make_database
from herdsman.server.database.error_counts import recount_errors
from herdsman.server.database.migrate import upgrade
from herdsman.server.database.models import HISTORY_SECONDS
from herdsman.server.database.task_counts import recount_workflow
from herdsman.server.database.usage_totals import recount_usage

TEMPLATES = ("prepare", "simulate", "fit", "summarise", "report")
SMALL_WORKFLOWS = 1000
SMALL_TASKS = 10
ERROR_GROUPS = 300
HOURS = 10
CHUNK = 20_000
REPEATS = 20
PAGE_BUDGET_S = 60.0  # a page slower than this is measured fewer times (at least 3)
P95_MS, SIZE_KB, LOAD_MS = 200.0, 300.0, 1000.0
USER = getpass.getuser()  # the embedded server's owner, who sees their own workflows


@dataclass(frozen=True)
class Seeded:
    big_workflow_id: int
    failed_task_id: int
    done_task_id: int
    signature: str


# --- seeding ---------------------------------------------------------------------------------


def _insert(
    session: Any, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    quote = session.get_bind().dialect.identifier_preparer.quote
    statement = (
        f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES {sql.in_list(len(columns))}"
    )
    for start in range(0, len(rows), CHUNK):
        sql.execute_many(session, statement, rows[start : start + CHUNK])


def seed(database_url: str, tasks: int) -> Seeded:
    """Fill a freshly migrated database; returns what the measured pages need."""
    database = make_database(database_url)
    upgrade(database)
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    start = now - dt.timedelta(hours=HOURS)

    def stamp(session: Any, moment: dt.datetime) -> Any:
        return sql.timestamp(session, moment)

    def fill(session: Any) -> Seeded:
        t0 = stamp(session, start)
        cluster_id, queue_id = sql.fetch_all(
            session,
            "SELECT c.id, q.id FROM cluster c JOIN queue q ON q.cluster_id = c.id "
            "WHERE c.name = 'dummy'",
        )[0]
        _insert(session, "tool", ("id", "name", "created_date"), [(1, "gui-benchmark", t0)])
        _insert(session, "tool_version", ("id", "tool_id", "created_date"), [(1, 1, t0)])
        names = (*TEMPLATES, "small")
        _insert(
            session,
            "task_template",
            ("id", "tool_version_id", "name"),
            [(i + 1, 1, name) for i, name in enumerate(names)],
        )
        _insert(
            session,
            "task_template_version",
            ("id", "task_template_id", "command_template", "version_hash", "created_date"),
            [
                (i + 1, i + 1, f"{name} --part {{n}}", f"{i + 1:064x}", t0)
                for i, name in enumerate(names)
            ],
        )
        _insert(
            session,
            "task_resources",
            ("id", "hash", "kind", "queue_id", "requested"),
            [(1, "1" * 64, "validated", queue_id, '{"memory": 2, "runtime": 3600, "cores": 1}')],
        )
        small_first = 1
        big_id = SMALL_WORKFLOWS + 1  # the newest: first in the listing
        # DAGs: one per workflow.
        _insert(
            session,
            "dag",
            ("id", "user", "hash", "created_date", "completed_date"),
            [(i, USER, f"{i:064x}", t0, t0) for i in range(1, big_id + 1)],
        )
        per_template = math.ceil(tasks / len(TEMPLATES))
        small_ttv = len(TEMPLATES) + 1
        # Nodes: the big workflow's, then ten shared by every small workflow.
        node_rows = [(n + 1, n // per_template + 1, n) for n in range(tasks)]
        node_rows += [(tasks + k + 1, small_ttv, k) for k in range(SMALL_TASKS)]
        _insert(session, "node", ("id", "task_template_version_id", "node_args_hash"), node_rows)
        # Edges: each "summarise" task depends on its "fit" task, one to one.
        fit, summarise = TEMPLATES.index("fit"), TEMPLATES.index("summarise")
        edges = [
            (big_id, summarise * per_template + k + 1, fit * per_template + k + 1)
            for k in range(per_template)
            if summarise * per_template + k < tasks
        ]
        _insert(session, "edge", ("dag_id", "downstream_node_id", "upstream_node_id"), edges)
        workflow_columns = (
            "id", "tool_version_id", "dag_id", "workflow_args_hash", "task_hash", "name",
            "description", "workflow_args", "user", "max_concurrently_running",
            "bound_max_concurrently_running", "num_tasks", "change_seq", "bound_date", "status",
            "status_date", "created_date",
        )  # fmt: skip
        workflows = [
            (i, 1, i, f"{i:064x}", f"{i:064x}", f"small-{i}", "", f"--run {i}", USER, 100,
             100, SMALL_TASKS, 0, t0, "D", t0, stamp(session, start + dt.timedelta(seconds=i)))
            for i in range(small_first, big_id)
        ]  # fmt: skip
        workflows.append(
            (big_id, 1, big_id, f"{big_id:064x}", f"{big_id:064x}", "big", "a million tasks",
             "--year 2026", USER, 2000, 2000, tasks, 0, t0, "R", t0, t0)
        )  # fmt: skip
        _insert(session, "workflow", workflow_columns, workflows)
        array_columns = (
            "id", "workflow_id", "task_template_version_id", "name", "max_concurrently_running",
            "bound_max_concurrently_running", "created_date",
        )  # fmt: skip
        arrays = [(i, i, small_ttv, "small", 100, 100, t0) for i in range(1, big_id)]
        arrays += [
            (big_id + k, big_id, k + 1, name, 1000, 1000, t0) for k, name in enumerate(TEMPLATES)
        ]
        _insert(session, "array", array_columns, arrays)
        run_columns = (
            "id", "workflow_id", "user", "host", "herdsman_version", "status", "status_date",
            "status_message", "heartbeat_date", "created_date",
        )  # fmt: skip
        runs = [(i, i, USER, "node1", "0", "D", t0, "", t0, t0) for i in range(1, big_id)]
        runs.append((big_id, big_id, USER, "login1", "0", "R", t0, "", stamp(session, now), t0))
        _insert(session, "workflow_run", run_columns, runs)

        task_columns = (
            "id", "workflow_id", "node_id", "array_id", "task_args_hash", "name", "command",
            "cluster_id", "original_resources_id", "task_resources_id", "resource_scales",
            "fallback_queues", "max_attempts", "num_attempts", "status", "status_date",
            "peak_wall_time", "peak_rss",
        )  # fmt: skip
        instance_columns = (
            "id", "workflow_run_id", "task_id", "array_id", "task_resources_id", "status",
            "status_date", "submitted_date", "host", "exit_code", "wall_time", "cpu_time",
            "max_rss", "requested_memory", "requested_runtime", "requested_cores", "stderr_tail",
        )  # fmt: skip
        error_columns = (
            "id", "task_instance_id", "workflow_id", "error_time", "description", "signature",
            "exit_class", "task_id", "array_id",
        )  # fmt: skip
        signatures = [f"{rng.getrandbits(64):016x}" for _ in range(ERROR_GROUPS)]
        task_rows: list[tuple[Any, ...]] = []
        instance_rows: list[tuple[Any, ...]] = []
        error_rows: list[tuple[Any, ...]] = []
        failed_task = done_task = 0

        def attempt(
            task_id: int, array_id: int, run_id: int, status: str, when: Any
        ) -> tuple[float, int]:
            """One attempt (with its error if it failed); what it ran and used."""
            instance_id = len(instance_rows) + 1
            wall, rss = rng.uniform(30, 3000), rng.randint(1 << 27, 1 << 31)
            instance_rows.append(
                (instance_id, run_id, task_id, array_id, 1, status, when, when, "node1",
                 0 if status == "D" else 1, wall, wall * 0.9, rss,
                 2 << 30, 3600.0, 1, None if status == "D" else "Traceback ...\nValueError")
            )  # fmt: skip
            if status == "E":
                group = min(int(rng.paretovariate(1.2)) - 1, ERROR_GROUPS - 1)
                error_rows.append(
                    (len(error_rows) + 1, instance_id, workflow_of[array_id], when,
                     f"exit code 1 | ValueError: bad value {rng.randint(0, 10**6)} in group "
                     f"{group}", signatures[group], "command error", task_id, array_id)
                )  # fmt: skip
            return wall, rss

        workflow_of = {array[0]: array[1] for array in arrays}
        for n in range(tasks):
            task_id = n + 1
            template = n // per_template
            array_id = big_id + template
            when = stamp(session, start + dt.timedelta(seconds=n * HOURS * 3600 / tasks))
            roll = rng.random()
            if roll < 0.80:
                status, attempts = "D", 1 if rng.random() < 0.95 else rng.randint(2, 3)
            elif roll < 0.81:
                status, attempts = "F", 3
            elif roll < 0.812:
                status, attempts = "R", 1
            elif roll < 0.815:
                status, attempts = "Q", 1
            else:
                status, attempts = "G", 0
            used = [
                attempt(task_id, array_id, big_id, _attempt_status(status, k == attempts - 1), when)
                for k in range(attempts)
            ]
            peak_wall = max((wall for wall, _ in used), default=None)
            peak_rss = max((rss for _, rss in used), default=None)
            if status == "F" and not failed_task:
                failed_task = task_id
            if status == "D" and not done_task:
                done_task = task_id
            task_rows.append(
                (task_id, big_id, n + 1, array_id, n, f"{TEMPLATES[template]}_{n}",
                 f"{TEMPLATES[template]} --part {n}", cluster_id, 1, 1, "", "", 3, attempts,
                 status, when, peak_wall, peak_rss)
            )  # fmt: skip
        next_task = tasks + 1
        for workflow_id in range(small_first, big_id):
            for k in range(SMALL_TASKS):
                task_rows.append(
                    (next_task, workflow_id, tasks + k + 1, workflow_id, k, f"small_{k}",
                     f"small --part {k}", cluster_id, 1, 1, "", "", 3, 1, "D", t0,
                     *attempt(next_task, workflow_id, workflow_id, "D", t0))
                )  # fmt: skip
                next_task += 1
        _insert(session, "task", task_columns, task_rows)
        _insert(session, "task_instance", instance_columns, instance_rows)
        _insert(session, "task_instance_error_log", error_columns, error_rows)
        for workflow_id in range(small_first, big_id + 1):
            recount_workflow(session, workflow_id)
        recount_errors(session, big_id)
        for workflow_id in range(small_first, big_id + 1):
            recount_usage(session, workflow_id)
        # Ten hours of changes in ten-second intervals: tasks flowing G -> Q -> I -> O -> R -> D.
        history: list[tuple[Any, ...]] = []
        first = int((start - dt.datetime(1970, 1, 1)).total_seconds()) // HISTORY_SECONDS
        intervals = HOURS * 3600 // HISTORY_SECONDS
        flow = max(1, tasks // intervals)
        for k in range(intervals):
            bucket = (first + k) * HISTORY_SECONDS
            history += [
                (big_id, bucket, "G", 0, flow),
                (big_id, bucket, "Q", flow, flow),
                (big_id, bucket, "I", flow, flow),
                (big_id, bucket, "O", flow, flow),
                (big_id, bucket, "R", flow, flow),
                (big_id, bucket, "D", flow, 0),
            ]
        _insert(
            session,
            "task_status_history",
            ("workflow_id", "bucket_start", "status", "entered", "exited"),
            history,
        )
        return Seeded(big_id, failed_task, done_task, signatures[0])

    try:
        seeded = database.write(fill)
        _analyze(database)
        return seeded
    finally:
        database.dispose()


def _analyze(database: Database) -> None:
    """PostgreSQL's statistics, as autovacuum gathers them soon after a bind this big: a
    planner without them takes a million-row table for a small one."""
    if database.dialect != "postgresql":
        return
    with database.write_engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")


def _attempt_status(task_status: str, last: bool) -> str:
    """An attempt's status: the earlier attempts of a task failed; its last one ended (or
    is still going) as the task's status says."""
    if not last or task_status == "F":
        return "E"
    return {"D": "D", "R": "R"}.get(task_status, "Q")


# --- measuring -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    name: str
    path: str
    p95_ms: float
    median_ms: float
    size_kb: float
    load_ms: float | None


def pages(seeded: Seeded) -> list[tuple[str, str, bool]]:
    """(name, path, whether a browser loads it as a page)."""
    w, failed, done = seeded.big_workflow_id, seeded.failed_task_id, seeded.done_task_id
    return [
        ("workflows", "/", True),
        ("workflows, filtered", "/?status=R&name=big", True),
        ("workflows, page 2", f"/?before={w - 50}", True),
        ("workflow", f"/workflows/{w}", True),
        ("timeline fragment", f"/workflows/{w}/timeline", False),
        ("timeline JSON", f"/api/v1/workflows/{w}/timeline", False),
        ("usage totals fragment", f"/workflows/{w}/usage-totals", False),
        ("resources, template fit", f"/workflows/{w}/resources/{w + TEMPLATES.index('fit')}", True),
        ("tasks", f"/workflows/{w}/tasks", True),
        ("tasks, status F", f"/workflows/{w}/tasks?status=F", True),
        ("tasks, template fit", f"/workflows/{w}/tasks?template=fit", True),
        ("tasks, sort runtime", f"/workflows/{w}/tasks?sort=runtime", True),
        ("tasks, sort memory", f"/workflows/{w}/tasks?sort=memory", True),
        # The first page among the tasks without a runtime (the cursor past every id).
        (
            "tasks, sort runtime, none yet",
            f"/workflows/{w}/tasks?sort=runtime&after=-:{2**62}",
            True,
        ),
        ("tasks, sort attempts", f"/workflows/{w}/tasks?sort=attempts", True),
        ("tasks, >= 2 attempts", f"/workflows/{w}/tasks?attempts=2", True),
        ("tasks, error group", f"/workflows/{w}/tasks?signature={seeded.signature}", True),
        ("tasks CSV, first bytes", f"/workflows/{w}/tasks.csv", False),
        ("errors", f"/workflows/{w}/errors", True),
        ("task (failed)", f"/tasks/{failed}", True),
        ("task (done)", f"/tasks/{done}", True),
        ("task upstream", f"/tasks/{done}/upstream", False),
        ("status change preview", f"/workflows/{w}/status-change?status=F&target=G", True),
    ]


def _time_request(client: httpx.Client, path: str, first_bytes: bool) -> tuple[float, int]:
    begun = time.perf_counter()
    with client.stream("GET", path) as answer:
        if answer.status_code != 200:
            raise RuntimeError(f"GET {path} answered {answer.status_code}")
        size = 0
        for chunk in answer.iter_bytes():
            size += len(chunk)
            if first_bytes:
                break
    return (time.perf_counter() - begun) * 1000, size


def measure(url: str, token: str, seeded: Seeded, repeats: int) -> list[Measured]:
    found: dict[str, tuple[float, float, float]] = {}
    with httpx.Client(base_url=url, timeout=120, follow_redirects=False) as client:
        answer = client.post("/sign-in", data={"token": token, "next": "/"})
        if answer.status_code != 303:
            raise RuntimeError(f"sign-in answered {answer.status_code}: {answer.text[:500]}")
        client.headers["Authorization"] = f"Bearer {token}"
        for name, path, _ in pages(seeded):
            first_bytes = path.endswith(".csv")
            _time_request(client, path, first_bytes)  # warm
            times, sizes = [], []
            begun = time.perf_counter()
            for _ in range(repeats):
                spent, size = _time_request(client, path, first_bytes)
                times.append(spent)
                sizes.append(size)
                if len(times) >= 3 and time.perf_counter() - begun > PAGE_BUDGET_S:
                    break
            times.sort()
            p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
            found[name] = (p95, statistics.median(times), max(sizes) / 1024)
            print(
                f"  {name}: p95 {p95:.0f} ms over {len(times)} requests",
                file=sys.stderr,
                flush=True,
            )
    loads = browser_loads(url, token, seeded)
    return [Measured(name, path, *found[name], loads.get(name)) for name, path, _ in pages(seeded)]


def browser_loads(url: str, token: str, seeded: Seeded) -> dict[str, float]:
    """Each page's load time in headless Chromium (navigation start to the load event)."""
    from playwright.sync_api import sync_playwright

    loads: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(url + "/sign-in")
            page.fill("#token", token)
            page.click("#sign-in button[type=submit]")
            page.wait_for_url(url + "/")
            for name, path, as_page in pages(seeded):
                if not as_page:
                    continue
                samples = []
                for _ in range(3):
                    page.goto(url + path, wait_until="load")
                    timing = page.evaluate(
                        "() => { const n = performance.getEntriesByType('navigation')[0];"
                        " return n.loadEventEnd - n.startTime; }"
                    )
                    samples.append(float(timing))
                loads[name] = statistics.median(samples)
            if problems:
                print("browser problems:", *problems, sep="\n  ", file=sys.stderr)
        finally:
            browser.close()
    return loads


def table(rows: list[Measured]) -> str:
    lines = [
        f"{'page':26} {'p95 ms':>8} {'median':>8} {'KB':>8} {'load ms':>8}  within targets",
    ]
    for row in rows:
        load = f"{row.load_ms:8.0f}" if row.load_ms is not None else f"{'-':>8}"
        ok = (
            row.p95_ms <= P95_MS
            and row.size_kb <= SIZE_KB
            and (row.load_ms is None or row.load_ms <= LOAD_MS)
        )
        lines.append(
            f"{row.name:26} {row.p95_ms:8.1f} {row.median_ms:8.1f} {row.size_kb:8.1f} {load}  "
            f"{'yes' if ok else 'NO'}"
        )
    return "\n".join(lines)


@contextmanager
def running_server(data_dir: Path, database_url: str | None) -> Iterator[tuple[str, str]]:
    settings = Settings(data_dir=data_dir, server_url=None, database_url=database_url)
    address = ensure_server(settings)
    if embedded_server_status(settings) is None or address.token is None:
        raise RuntimeError(f"the server in {data_dir} did not record itself")
    try:
        yield address.url, address.token
    finally:
        stop_embedded_server(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", default=None, help="an empty PostgreSQL database")
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="keep the seeded database here, and measure one seeded before without seeding",
    )
    args = parser.parse_args()
    if args.engine == "postgresql" and not args.database_url:
        parser.error("--engine postgresql needs --database-url of an empty database")
    with tempfile.TemporaryDirectory(prefix="herdsman-gui-bench-") as tmp:
        data_dir = args.data_dir or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        settings = Settings(data_dir=data_dir, server_url=None, database_url=args.database_url)
        database_url = settings.resolved_database_url()
        record = data_dir / "seeded.json"
        if record.exists():
            seeded = Seeded(**json.loads(record.read_text()))
            database = make_database(database_url)
            upgrade(database)  # a seed made before a newer migration gets it
            database.dispose()
        else:
            begun = time.perf_counter()
            seeded = seed(database_url, args.tasks)
            record.write_text(json.dumps(seeded.__dict__))
            print(
                f"seeded {args.tasks:,} tasks + {SMALL_WORKFLOWS:,} small workflows on "
                f"{args.engine} in {time.perf_counter() - begun:.0f} s",
                file=sys.stderr,
            )
        with running_server(data_dir, args.database_url) as (url, token):
            rows = measure(url, token, seeded, args.repeats)
    print(table(rows))
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], indent=1))


if __name__ == "__main__":
    main()
