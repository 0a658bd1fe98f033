"""Load benchmark: one shared server, many workflows at once, several server processes.

For each number of server processes (``--server-workers``, default 1 and 2) and each number of
concurrent workflows K (``--clients``, default 1, 8 and 32), on a fresh PostgreSQL or MariaDB
database (``--engine``): K client processes each bind a workflow of ``--tasks`` dummy tasks in
``--layers`` layers, wait until all are bound, then run them at once on the dummy cluster. A
reader polls the routes the GUI and the CLI read meanwhile; with ``--big-bind N`` another
process binds an N-task workflow during the runs. With ``--prune N`` (PostgreSQL) a finished
workflow of N tasks, ended a month ago, is made before the runs (see ``finished_workflow.py``)
and ``herdsman server prune --older-than 7`` archives and removes it while they run; compare
the tasks/s with a run without ``--prune``.

Printed per configuration: aggregate tasks/s (all tasks over the time from the common start to
the last run's end), server CPU per task (summed over every server process), p50/p99 server-side
latency of the worker, swarm, distributor and GUI/CLI routes (from each server process's request
timings, ``server.timing_dir``), database statements and commits per task during the runs, and
the checks: every task done, exactly one attempt per task, no 5xx.

Usage:
    python benchmarks/load.py --engine postgresql
    python benchmarks/load.py --engine mariadb --server-workers 2 --clients 8 --tasks 10000
    python benchmarks/load.py --clients 8 --big-bind 1000000
    python benchmarks/load.py --server-workers 2 --clients 8 --prune 1000000
Admin URLs (a user that may create databases): --admin-url, defaults below.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import create_engine, text

from finished_workflow import grow_finished_workflow
from herdsman.core.config import normalize_database_url
from herdsman.core.ready_file import read_ready_file

__all__ = ["LoadResult", "main", "run_load"]

DEFAULT_ADMIN_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mariadb": "mysql://root@127.0.0.1:3306",
}
SERVER_START_SECONDS = 120.0
READER_PAUSE_SECONDS = 0.2
ROUTE_GROUPS = ("worker", "distributor", "swarm", "feed", "gui", "client")
# The change feed's long-polls wait for changes by design; their time is not latency.
FEED_ROUTE = "/workflows/{workflow_id}/changes"


@dataclass
class LoadResult:
    engine: str
    server_workers: int
    clients: int
    tasks_per_client: int
    tasks: int = 0
    run_seconds: float = 0.0
    tasks_per_second: float = 0.0
    server_cpu_seconds: float = 0.0
    server_cpu_us_per_task: float = 0.0
    database_cpu_us_per_task: float = 0.0
    client_cpu_us_per_task: float = 0.0
    machine_cpu_us_per_task: float = 0.0
    statements_per_task: float = 0.0
    commits_per_task: float = 0.0
    latency_ms: dict[str, tuple[int, float, float]] = field(default_factory=dict)
    reader_ms: tuple[int, float, float] = (0, 0.0, 0.0)
    errors_5xx: int = 0
    not_done: int = 0
    attempts: int = 0
    tasks_with_one_attempt: int = 0
    statuses: list[str] = field(default_factory=list)
    big_bind_seconds: float | None = None
    # The reader's figures from the runs' end to the big bind's: reads beside the bind alone.
    bind_reader_ms: tuple[int, float, float] = (0, 0.0, 0.0)
    prune_tasks: int = 0
    prune_seconds: float | None = None
    prune_finished_in_run: bool = False
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def exactly_once(self) -> bool:
        return self.not_done == 0 and self.attempts == self.tasks == self.tasks_with_one_attempt

    def line(self) -> str:
        groups = "  ".join(
            f"{group} p50/p99 {p50:.1f}/{p99:.1f} ms (n={n})"
            for group, (n, p50, p99) in self.latency_ms.items()
        )
        reader_n, reader_p50, reader_p99 = self.reader_ms
        big = ""
        if self.big_bind_seconds:
            n, p50, p99 = self.bind_reader_ms
            big = (
                f"  big bind {self.big_bind_seconds:.1f} s, reader beside the bind alone "
                f"p50/p99 {p50:.1f}/{p99:.1f} ms (n={n})"
            )
        if self.prune_seconds is not None:
            within = "within" if self.prune_finished_in_run else "outlasting"
            big += (
                f"  prune of {self.prune_tasks:,} tasks {self.prune_seconds:.1f} s "
                f"({within} the runs)"
            )
        return (
            f"{self.engine} workers={self.server_workers} K={self.clients} "
            f"tasks={self.tasks:,}: {self.tasks_per_second:,.0f} tasks/s, "
            f"CPU µs/task: server {self.server_cpu_us_per_task:,.0f}, database "
            f"{self.database_cpu_us_per_task:,.0f}, clients {self.client_cpu_us_per_task:,.0f}, "
            f"machine {self.machine_cpu_us_per_task:,.0f}; "
            f"{self.statements_per_task:.2f} statements and {self.commits_per_task:.2f} "
            f"commits/task; {groups}; reader p50/p99 {reader_p50:.1f}/{reader_p99:.1f} ms "
            f"(n={reader_n}); 5xx={self.errors_5xx}; exactly once: {self.exactly_once} "
            f"(attempts {self.attempts:,}, not done {self.not_done}){big}; "
            f"load average {self.load_average[0]:.2f}"
        )


# --- databases -------------------------------------------------------------------------------


def create_database(engine: str, admin_url: str, name: str) -> str:
    """A new empty database ``name``; its SQLAlchemy URL."""
    admin = normalize_database_url(admin_url)
    if engine == "postgresql":
        connection_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with connection_engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        connection_engine.dispose()
        return admin.rsplit("/", 1)[0] + f"/{name}"
    connection_engine = create_engine(admin)
    with connection_engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
    connection_engine.dispose()
    return admin.rstrip("/").split("?")[0] + f"/{name}"


def drop_database(engine: str, admin_url: str, name: str) -> None:
    admin = normalize_database_url(admin_url)
    if engine == "postgresql":
        connection_engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    else:
        connection_engine = create_engine(admin)
        statement = f"DROP DATABASE IF EXISTS `{name}`"
    with connection_engine.connect() as connection:
        connection.execute(text(statement))
    connection_engine.dispose()


DATABASE_PROCESS_NAMES = {"postgresql": {"postgres"}, "mariadb": {"mariadbd", "mysqld"}}


def database_cpu_seconds(engine: str) -> float:
    """CPU of the local database server's processes so far, with that of its processes that
    ended (PostgreSQL's autovacuum workers, closed connections), which their parent reaped."""
    names = DATABASE_PROCESS_NAMES[engine]
    total = 0.0
    for process in psutil.process_iter(["name", "cpu_times"]):
        times = process.info["cpu_times"]
        if process.info["name"] in names and times is not None:
            total += times.user + times.system + times.children_user + times.children_system
    return total


def _machine_cpu_seconds() -> float:
    """CPU the whole machine spent so far, every process and the kernel: what the parts
    measured apart leave out (processes that came and went, interrupts) shows against it."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def _own_cpu_seconds() -> float:
    """CPU of this process and of its children that ended and were waited for, with their
    own ended children: in a client, the swarm and the distributor it started."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


# --- the server ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadServer:
    url: str
    token: str
    pid: int
    timing_dir: Path

    def cpu_seconds(self) -> float:
        """CPU of the server's processes so far: the supervisor and every server process."""
        root = psutil.Process(self.pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
        return total


@contextmanager
def load_server(database_url: str, workers: int, state_dir: Path) -> Iterator[LoadServer]:
    """``python -m herdsman.server --workers N`` on ``database_url``, with request timings."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ready_file = state_dir / "ready.json"
    timing_dir = state_dir / "timings"
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERDSMAN_")}
    env.update(
        HERDSMAN_DATA_DIR=str(state_dir / "data"),
        HERDSMAN_CONFIG_FILE=str(state_dir / "no-config.yaml"),
        HERDSMAN_AUTH__KEY_FILE=str(state_dir / "server.key"),
        HERDSMAN_SERVER__TIMING_DIR=str(timing_dir),
        HERDSMAN_LOG_LEVEL="warning",
    )
    command = [
        sys.executable,
        "-m",
        "herdsman.server",
        "--port",
        "0",
        "--database-url",
        database_url,
        "--ready-file",
        str(ready_file),
        "--workers",
        str(workers),
    ]
    log = (state_dir / "server.log").open("ab")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        info = None
        while info is None:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the server did not start; its log:\n"
                    + (state_dir / "server.log").read_text(errors="replace")[-3000:]
                )
            time.sleep(0.1)
            info = read_ready_file(ready_file)
        yield LoadServer(info.url, info.token or "", process.pid, timing_dir)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


# --- clients ---------------------------------------------------------------------------------


def _client_environment(server: LoadServer, state_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERDSMAN_")}
    env.update(
        HERDSMAN_SERVER_URL=server.url,
        HERDSMAN_TOKEN=server.token,
        HERDSMAN_DATA_DIR=str(state_dir / "client-data"),
        HERDSMAN_CONFIG_FILE=str(state_dir / "no-config.yaml"),
        HERDSMAN_LOG_LEVEL="warning",
    )
    return env


def client(name: str, tasks: int, layers: int, run: bool) -> None:
    """One client process: bind, say ``bound <id>``, wait for ``go`` on stdin, run, report."""
    from herdsman import Tool

    tool = Tool("load-benchmark")
    tool.set_default_cluster_name("dummy")
    step = tool.get_task_template("step", "true {layer} {i}", node_args=["layer", "i"])
    workflow = tool.create_workflow(workflow_args=f"{name}-{time.time()}")
    per_layer = max(1, tasks // layers)
    previous = None
    for layer in range(layers):
        current = step.create_tasks(layer=layer, i=range(per_layer))
        if previous is not None:
            for upstream, task in zip(previous, current, strict=True):
                task.add_upstream(upstream)
        workflow.add_tasks(current)
        previous = current
    if not run:  # the big bind: timed from the common start
        sys.stdin.readline()
        start = time.time()
        workflow.bind()
        print(json.dumps({"bind_seconds": time.time() - start}), flush=True)
        return
    workflow_id = workflow.bind()
    print(f"bound {workflow_id}", flush=True)
    sys.stdin.readline()
    start = time.time()
    cpu_before = _own_cpu_seconds()
    status = workflow.run()
    end = time.time()
    cpu = _own_cpu_seconds() - cpu_before
    print(
        json.dumps(
            {
                "workflow_id": workflow_id,
                "status": status,
                "start": start,
                "end": end,
                "tasks": len(workflow.tasks),
                "cpu_seconds": cpu,
            }
        ),
        flush=True,
    )


def _spawn_client(
    env: dict[str, str], name: str, tasks: int, layers: int, run: bool, log_dir: Path
) -> subprocess.Popen[str]:
    """A client process; its progress lines and errors go to ``log_dir/<name>.log``."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--client",
        name,
        "--tasks",
        str(tasks),
        "--layers",
        str(layers),
    ]
    if not run:
        command.append("--bind-only")
    with (log_dir / f"{name}.log").open("ab") as log:
        return subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )


def _finished_workflow(env: dict[str, str], log_dir: Path) -> int:
    """A one-task workflow bound and run to its end by a client; its id."""
    proc = _spawn_client(env, "load-old", 1, 1, run=True, log_dir=log_dir)
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    if not line.startswith("bound "):
        raise RuntimeError(f"the finished workflow's client failed: {line!r}; logs in {log_dir}")
    proc.stdin.write("go\n")
    proc.stdin.flush()
    proc.stdout.read()
    if proc.wait() != 0:
        raise RuntimeError(f"the finished workflow's run failed; logs in {log_dir}")
    return int(line.split()[1])


def _start_prune(database_url: str, state_dir: Path) -> subprocess.Popen[bytes]:
    """``herdsman server prune`` of workflows ended over a week ago, archives included; it
    touches ``prune.end`` when done, so its duration is known however late it is waited for."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERDSMAN_")}
    env.update(
        HERDSMAN_DATA_DIR=str(state_dir / "prune-data"),
        HERDSMAN_CONFIG_FILE=str(state_dir / "no-config.yaml"),
    )
    herdsman = Path(sys.executable).with_name("herdsman")
    script = (
        f'"{herdsman}" server prune --database-url "{database_url}" --older-than 7 '
        f'--archive-dir "{state_dir / "archive"}" && touch "{state_dir / "prune.end"}"'
    )
    with (state_dir / "prune.log").open("ab") as log:
        return subprocess.Popen(["sh", "-c", script], env=env, stdout=log, stderr=log)


class Reader:
    """Polls the routes the GUI and the CLI read, as a person watching would, and times them."""

    def __init__(self, server: LoadServer, workflow_ids: list[int]) -> None:
        self._server = server
        self._workflow_ids = workflow_ids
        self._stop = threading.Event()
        self.seconds: list[float] = []
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        headers = {"authorization": f"Bearer {self._server.token}"}
        with httpx.Client(base_url=f"{self._server.url}/api/v1", headers=headers) as http:
            turn = 0
            while not self._stop.wait(READER_PAUSE_SECONDS):
                workflow_id = self._workflow_ids[turn % len(self._workflow_ids)]
                turn += 1
                for path, params in (
                    ("/workflow_summaries", {}),
                    (f"/workflows/{workflow_id}", {}),
                    (f"/workflows/{workflow_id}/tasks", {"limit": 100}),
                ):
                    start = time.perf_counter()
                    try:
                        response = http.get(path, params=params, timeout=120)
                    except httpx.HTTPError as error:
                        self.errors.append(f"{path}: {error}")
                        continue
                    self.seconds.append(time.perf_counter() - start)
                    if response.status_code >= 500:
                        self.errors.append(f"{path}: {response.status_code}")


# --- one configuration -----------------------------------------------------------------------


def _percentiles_ms(seconds: list[float]) -> tuple[int, float, float]:
    if not seconds:
        return 0, 0.0, 0.0
    if len(seconds) == 1:
        return 1, seconds[0] * 1000, seconds[0] * 1000
    cuts = statistics.quantiles(seconds, n=100, method="inclusive")
    return len(seconds), cuts[49] * 1000, cuts[98] * 1000


def _count_between(samples: list[list[float]], start: float, end: float) -> tuple[int, int]:
    """Statements and commits of one process between two wall-clock times (nearest samples)."""

    def at(moment: float) -> tuple[int, int]:
        before = [s for s in samples if s[0] <= moment]
        chosen = before[-1] if before else samples[0]
        return int(chosen[1]), int(chosen[2])

    first, last = at(start), at(end)
    return last[0] - first[0], last[1] - first[1]


def run_load(
    *,
    engine: str,
    admin_url: str,
    server_workers: int,
    clients: int,
    tasks: int,
    layers: int = 10,
    big_bind: int = 0,
    prune: int = 0,
    reader: bool = True,
    state_dir: Path | None = None,
) -> LoadResult:
    """One configuration on a fresh database (dropped afterwards); see the module docstring."""
    result = LoadResult(engine, server_workers, clients, tasks)
    name = f"herdsman_load_{os.getpid()}_{server_workers}_{clients}_{time.time_ns() % 10**8}"
    database_url = create_database(engine, admin_url, name)
    own_dir = state_dir is None
    directory = Path(tempfile.mkdtemp(prefix="herdsman-load-")) if own_dir else state_dir
    assert directory is not None
    try:
        with (
            load_server(database_url, server_workers, directory / "server") as server,
            contextlib.ExitStack() as stack,  # ends the clients before the server
        ):
            env = _client_environment(server, directory)
            procs: list[subprocess.Popen[str]] = []
            stack.callback(_stop_all, procs)
            if prune:
                old = _finished_workflow(env, directory)
                seconds = grow_finished_workflow(database_url, old, prune)
                print(f"made a finished workflow of {prune:,} tasks in {seconds:.0f} s", flush=True)
                result.prune_tasks = prune
            procs += [
                _spawn_client(env, f"load-{i}", tasks, layers, run=True, log_dir=directory)
                for i in range(clients)
            ]
            workflow_ids = []
            for proc in procs:
                assert proc.stdout is not None
                line = proc.stdout.readline()
                if not line.startswith("bound "):
                    raise RuntimeError(
                        f"a client failed before its run: {line!r}; see the logs in {directory}"
                    )
                workflow_ids.append(int(line.split()[1]))
            big = None
            if big_bind:
                big = _spawn_client(env, "load-big", big_bind, layers, run=False, log_dir=directory)
                procs.append(big)
            cpu_before = server.cpu_seconds()
            database_before = database_cpu_seconds(engine)
            machine_before = _machine_cpu_seconds()
            go = time.time()
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            pruning = _start_prune(database_url, directory) if prune else None
            reports = []
            with Reader(server, workflow_ids) if reader else _nothing() as polling:
                for proc in procs:
                    if proc is big:
                        continue
                    assert proc.stdout is not None
                    out = proc.stdout.read()
                    if proc.wait() != 0:
                        raise RuntimeError(f"a client failed: {out[-2000:]}; logs in {directory}")
                    reports.append(json.loads(out.strip().splitlines()[-1]))
                end = max(report["end"] for report in reports)
                result.server_cpu_seconds = server.cpu_seconds() - cpu_before
                database_cpu = database_cpu_seconds(engine) - database_before
                machine_cpu = _machine_cpu_seconds() - machine_before
            if pruning is not None:
                result.prune_finished_in_run = pruning.poll() is not None
                if pruning.wait() != 0:
                    raise RuntimeError(f"the prune failed; see {directory / 'prune.log'}")
                result.prune_seconds = (directory / "prune.end").stat().st_mtime - go
            if big is not None:
                assert big.stdout is not None
                # The reads go on while the bind outlasts the runs: the bind alone's effect.
                with Reader(server, workflow_ids) if reader else _nothing() as bind_polling:
                    out = big.stdout.read()
                    if big.wait() != 0:
                        raise RuntimeError(f"the big bind failed: {out[-2000:]}")
                result.big_bind_seconds = json.loads(out.strip().splitlines()[-1])["bind_seconds"]
                if bind_polling is not None:
                    result.bind_reader_ms = _percentiles_ms(bind_polling.seconds)
                    if bind_polling.errors:
                        raise RuntimeError(f"the reader failed: {bind_polling.errors[:5]}")
            if polling is not None:
                result.reader_ms = _percentiles_ms(polling.seconds)
                if polling.errors:
                    raise RuntimeError(f"the reader failed: {polling.errors[:5]}")
            result.load_average = os.getloadavg()
        result.tasks = sum(report["tasks"] for report in reports)
        result.statuses = sorted({report["status"] for report in reports})
        result.run_seconds = end - go
        result.tasks_per_second = result.tasks / result.run_seconds
        result.server_cpu_us_per_task = 1e6 * result.server_cpu_seconds / result.tasks
        result.database_cpu_us_per_task = 1e6 * database_cpu / result.tasks
        client_cpu = sum(report["cpu_seconds"] for report in reports)
        result.client_cpu_us_per_task = 1e6 * client_cpu / result.tasks
        result.machine_cpu_us_per_task = 1e6 * machine_cpu / result.tasks
        _read_timings(result, server.timing_dir, go, end)
        _check_exactly_once(result, database_url, workflow_ids)
    finally:
        drop_database(engine, admin_url, name)
    if own_dir:  # kept when the run failed, for the logs its error names
        shutil.rmtree(directory, ignore_errors=True)
    return result


def _stop_all(procs: list[subprocess.Popen[str]]) -> None:
    """Client processes still running when the benchmark stops (an error, Ctrl-C) end too."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def _read_timings(result: LoadResult, timing_dir: Path, start: float, end: float) -> None:
    by_group: dict[str, list[float]] = defaultdict(list)
    statements = commits = 0
    for path in timing_dir.glob("timing-*.json"):
        document: dict[str, Any] = json.loads(path.read_text())
        more_statements, more_commits = _count_between(document["samples"], start, end)
        statements += more_statements
        commits += more_commits
        for key, route in document["routes"].items():
            group = "feed" if key.endswith(FEED_ROUTE) else key.split(" ", 1)[0]
            by_group[group].extend(
                seconds for ended, seconds in route["requests"] if start <= ended <= end
            )
            result.errors_5xx += route["errors_5xx"]  # over the server's whole life
    result.statements_per_task = statements / result.tasks
    result.commits_per_task = commits / result.tasks
    result.latency_ms = {
        group: _percentiles_ms(by_group[group]) for group in ROUTE_GROUPS if by_group.get(group)
    }


def _check_exactly_once(result: LoadResult, database_url: str, workflow_ids: list[int]) -> None:
    engine = create_engine(database_url)
    ids = ", ".join(str(int(w)) for w in workflow_ids)
    with engine.connect() as connection:
        result.not_done = int(
            connection.execute(
                text(f"SELECT COUNT(*) FROM task WHERE workflow_id IN ({ids}) AND status <> 'D'")
            ).scalar_one()
        )
        result.attempts = int(
            connection.execute(
                text(
                    "SELECT COUNT(*) FROM task_instance ti JOIN task t ON t.id = ti.task_id "
                    f"WHERE t.workflow_id IN ({ids}) AND ti.status = 'D'"
                )
            ).scalar_one()
        )
        result.tasks_with_one_attempt = int(
            connection.execute(
                text(
                    "SELECT COUNT(*) FROM (SELECT ti.task_id FROM task_instance ti "
                    f"JOIN task t ON t.id = ti.task_id WHERE t.workflow_id IN ({ids}) "
                    "GROUP BY ti.task_id HAVING COUNT(*) = 1) once"
                )
            ).scalar_one()
        )
    engine.dispose()


# --- command line ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=sorted(DEFAULT_ADMIN_URLS), default="postgresql")
    parser.add_argument("--admin-url", help="a URL that may create databases [default per engine]")
    parser.add_argument("--server-workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--clients", type=int, nargs="*", default=[1, 8, 32])
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks per client workflow")
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--big-bind", type=int, default=0, help="bind this many tasks meanwhile")
    parser.add_argument(
        "--prune", type=int, default=0, help="prune a finished workflow of N tasks meanwhile"
    )
    parser.add_argument("--no-reader", action="store_true")
    parser.add_argument("--json", action="store_true", help="one JSON document per result")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--bind-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client(args.client, args.tasks, args.layers, run=not args.bind_only)
        return
    admin_url = args.admin_url or DEFAULT_ADMIN_URLS[args.engine]
    for workers in args.server_workers:
        for clients in args.clients:
            result = run_load(
                engine=args.engine,
                admin_url=admin_url,
                server_workers=workers,
                clients=clients,
                tasks=args.tasks,
                layers=args.layers,
                big_bind=args.big_bind,
                prune=args.prune,
                reader=not args.no_reader,
            )
            if args.json:
                print(json.dumps(result.__dict__ | {"exactly_once": result.exactly_once}))
            else:
                print(result.line(), flush=True)


if __name__ == "__main__":
    main()
