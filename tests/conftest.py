"""Shared test fixtures: isolated settings, databases on three engines, real server processes.

Integration tests run against every engine herdsman supports: a test that asks for ``server``
(or ``database_url``) runs once per engine, with ids ``sqlite``, ``postgresql`` and
``mariadb``. Each engine gets a freshly created database with a unique name, dropped at the end
of the session, so parallel workers (pytest-xdist) and parallel sessions never share data.

Choosing engines:

* ``--engines sqlite,postgresql`` or env ``HERDSMAN_TEST_ENGINES`` restricts the set
  (default: all three).
* An engine whose server cannot be reached makes its tests SKIP, saying so. With env
  ``HERDSMAN_REQUIRE_DATABASES=1`` (as in CI) they FAIL instead: a green CI run must have
  exercised every engine.
* ``HERDSMAN_TEST_POSTGRESQL`` and ``HERDSMAN_TEST_MARIADB`` override the admin URLs
  (defaults: ``postgresql://postgres@127.0.0.1:5432/postgres``, ``mysql://root@127.0.0.1:3306``).

Every process a fixture starts is registered and killed (process group included) at the end
of the session, on failure too, so no server outlives the test run.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from sqlalchemy.engine import make_url
from tests.support.tokens import admin_token, key_file, user_token

from herdsman.core.requester import Requester
from herdsman.server.runner import ServerInfo, read_ready_file

ALL_ENGINES = ("sqlite", "postgresql", "mariadb")
DEFAULT_ADMIN_URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/postgres",
    "mariadb": "mysql://root@127.0.0.1:3306",
}
SERVER_START_TIMEOUT = 60.0
# Env vars that steer the test suite itself; every other HERDSMAN_* variable is a setting and
# is removed so that tests never see the developer's configuration.
TEST_CONTROL_VARIABLES = frozenset(
    {
        "HERDSMAN_REQUIRE_DATABASES",
        "HERDSMAN_TEST_ENGINES",
        "HERDSMAN_TEST_POSTGRESQL",
        "HERDSMAN_TEST_MARIADB",
        "HERDSMAN_TEST_SLURM",
        "HERDSMAN_REQUIRE_SLURM",
        "HERDSMAN_REQUIRE_BROWSER",
        "HERDSMAN_SCREENSHOTS_DIR",
    }
)


@dataclass(frozen=True)
class RunningServer:
    """A herdsman server process started for the tests."""

    url: str
    database_url: str
    engine: str
    pid: int


# --- options and collection -----------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--engines",
        default=os.environ.get("HERDSMAN_TEST_ENGINES", ",".join(ALL_ENGINES)),
        help="comma-separated database engines for integration tests "
        f"(default: env HERDSMAN_TEST_ENGINES or {','.join(ALL_ENGINES)})",
    )
    faults = parser.getgroup("faults", "fault-injection trials (tests/faults)")
    faults.addoption(
        "--fault-trials",
        type=int,
        default=1,
        help="trials of each fault kind per engine (default 1)",
    )
    faults.addoption(
        "--fault-seed",
        type=int,
        default=None,
        help="seed of the first trial; trial i uses seed + i (default: random, in the header)",
    )
    faults.addoption(
        "--fault-engines",
        default="sqlite",
        help="engines (of --engines) the fault trials run on, or 'all' (default: sqlite)",
    )
    faults.addoption(
        "--fault-report",
        default=None,
        help="append one JSON line per fault trial to this file",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Choose the fault-injection seed once: xdist workers take their controller's choice.

    Give this process the test user's token for the servers the suite starts (module and
    session fixtures run before ``isolated_settings`` sets it again per test).
    """
    os.environ["HERDSMAN_TOKEN"] = user_token()
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "fault_seed" in workerinput:
        config.option.fault_seed = workerinput["fault_seed"]
    elif config.option.fault_seed is None:
        config.option.fault_seed = secrets.randbelow(1_000_000)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: object) -> None:
    """xdist: hand the controller's fault seed to each worker."""
    node.workerinput["fault_seed"] = node.config.option.fault_seed  # type: ignore[attr-defined]


def pytest_report_header(config: pytest.Config) -> str:
    return f"fault seed: {config.option.fault_seed} (reproduce with --fault-seed)"


def _selected_engines(config: pytest.Config) -> list[str]:
    raw = str(config.getoption("--engines"))
    engines = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(engines) - set(ALL_ENGINES))
    if unknown:
        raise pytest.UsageError(
            f"unknown engine(s) {', '.join(unknown)}; choose from {', '.join(ALL_ENGINES)}"
        )
    return engines


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "engine" in metafunc.fixturenames:
        engines = _selected_engines(metafunc.config)
        metafunc.parametrize("engine", engines, indirect=True, ids=engines, scope="session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark tests by folder, so ``-m "not integration"`` runs the fast ones only."""
    root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(root).parts if item.path.is_relative_to(root) else ()
        if parts and parts[0] in ("integration", "e2e", "faults", "browser"):
            item.add_marker(getattr(pytest.mark, parts[0]))


# --- settings isolation ---------------------------------------------------------------------


def _clean_environment() -> dict[str, str]:
    """The environment minus herdsman settings: what child processes start from."""
    return {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("HERDSMAN_") or key in TEST_CONTROL_VARIABLES
    }


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point data_dir and the config file into ``tmp_path``; drop the user's HERDSMAN_* env.

    Sets ``HERDSMAN_TOKEN`` to a user token of the test user for the servers the suite starts.
    Returns the data directory. A test may still set variables (``HERDSMAN_SERVER_URL`` …)
    with ``monkeypatch`` after this fixture ran.
    """
    for key in os.environ:
        if key.startswith("HERDSMAN_") and key not in TEST_CONTROL_VARIABLES:
            monkeypatch.delenv(key)
    data_dir = tmp_path / "herdsman-data"
    monkeypatch.setenv("HERDSMAN_DATA_DIR", str(data_dir))
    # The test user's own token for the servers the suite starts (an embedded server's
    # clients use the token in its ready file instead).
    monkeypatch.setenv("HERDSMAN_TOKEN", user_token())
    monkeypatch.setenv("HERDSMAN_CONFIG_FILE", str(tmp_path / "herdsman-config.yaml"))
    return data_dir


# --- processes ------------------------------------------------------------------------------


class ProcessRegistry:
    """Processes started by tests; whatever is still alive at the end is killed."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []
        # A safety net for exits that skip fixture teardown (an xdist worker torn down hard).
        atexit.register(self.stop_all)

    def spawn(self, command: list[str], **options: object) -> subprocess.Popen[bytes]:
        """Start ``command`` in its own process group, so it and its children die together."""
        options.setdefault("start_new_session", True)
        process: subprocess.Popen[bytes] = subprocess.Popen(command, **options)  # type: ignore[call-overload]
        self._processes.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout``, and reap."""
        if process not in self._processes:
            return  # stopped before; its pid may belong to someone else by now
        self._processes.remove(process)
        if process.poll() is None:
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        _signal_group(process.pid, signal.SIGKILL)  # stragglers left in its group

    def stop_all(self) -> None:
        for process in reversed(list(self._processes)):
            self.stop(process)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def kill_processes_mentioning(text: str) -> list[int]:
    """Kill every process whose command line contains ``text``; returns their pids.

    For processes a test did not start itself (the embedded server, started detached by the
    library): their command line names the test's own temporary directory.
    """
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if text in cmdline and process.pid != os.getpid():
            found.append(process)
    for process in found:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()
    psutil.wait_procs(found, timeout=10)
    return [process.pid for process in found]


@pytest.fixture(scope="session")
def processes() -> Iterator[ProcessRegistry]:
    """Start helper processes through this; all are stopped at the end of the session."""
    registry = ProcessRegistry()
    try:
        yield registry
    finally:
        registry.stop_all()


@pytest.fixture(scope="session")
def herdsman_executable() -> str:
    """The ``herdsman`` console script of the environment running the tests."""
    beside = Path(sys.executable).parent / "herdsman"
    if beside.exists():
        return str(beside)
    found = shutil.which("herdsman")
    if found is None:
        pytest.fail("the herdsman console script is not installed; run pip install -e '.[test]'")
    return found


def start_server_process(
    processes: ProcessRegistry,
    *,
    database_url: str,
    state_dir: Path,
    extra_args: tuple[str, ...] = (),
    port: int = 0,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], ServerInfo]:
    """Start ``python -m herdsman.server`` and wait for its ready file; its log is in state_dir.

    ``port`` 0 picks a free one; a fixed port lets a test restart the server at the same URL
    (a ready file left by a killed server is removed first). ``extra_env`` adds settings.
    Fails the test with the server's log if it exits or stays silent.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    ready_file = state_dir / "ready.json"
    ready_file.unlink(missing_ok=True)
    log_file = state_dir / "server.log"
    env = _clean_environment()
    env["HERDSMAN_AUTH__KEY_FILE"] = str(key_file())
    env.update(extra_env or {})
    env["HERDSMAN_DATA_DIR"] = str(state_dir / "data")
    env["HERDSMAN_CONFIG_FILE"] = str(state_dir / "no-config.yaml")
    command = [
        sys.executable,
        "-m",
        "herdsman.server",
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--ready-file",
        str(ready_file),
        *extra_args,
    ]
    with log_file.open("ab") as log:
        process = processes.spawn(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"herdsman server exited with {process.returncode} before it was ready:\n"
                + log_file.read_text(errors="replace")[-4000:]
            )
        info = read_ready_file(ready_file)
        if info is not None:
            return process, info
        time.sleep(0.05)
    processes.stop(process)
    pytest.fail(
        f"herdsman server was not ready after {SERVER_START_TIMEOUT:.0f} s:\n"
        + log_file.read_text(errors="replace")[-4000:]
    )


# --- databases ------------------------------------------------------------------------------


class DatabaseFactory:
    """Creates uniquely named databases on each engine and drops them all at the end."""

    def __init__(self, sqlite_dir: Path, require: bool) -> None:
        self._sqlite_dir = sqlite_dir
        self._require = require
        self._created: list[tuple[str, str]] = []  # (engine, database name)
        self._unreachable: dict[str, str] = {}

    def create(self, engine: str) -> str:
        """A new, empty database on ``engine``; skips (or fails) when it cannot be reached."""
        name = f"herdsman_test_{secrets.token_hex(6)}"
        if engine == "sqlite":
            return f"sqlite:///{self._sqlite_dir / (name + '.sqlite')}"
        if engine in self._unreachable:
            self._give_up(engine, self._unreachable[engine])
        admin_url = os.environ.get(f"HERDSMAN_TEST_{engine.upper()}", DEFAULT_ADMIN_URLS[engine])
        try:
            if engine == "postgresql":
                _postgresql_execute(admin_url, f'CREATE DATABASE "{name}"')
            else:
                _mariadb_execute(
                    admin_url,
                    f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
                )
        except Exception as error:
            self._unreachable[engine] = (
                f"{engine} at {_redact(admin_url)} is not reachable: {error}"
            )
        if engine in self._unreachable:  # outside the except: no chained traceback in reports
            self._give_up(engine, self._unreachable[engine])
        self._created.append((engine, name))
        return _database_url(engine, admin_url, name)

    def drop_all(self) -> None:
        for engine, name in reversed(self._created):
            admin_url = os.environ.get(
                f"HERDSMAN_TEST_{engine.upper()}", DEFAULT_ADMIN_URLS[engine]
            )
            try:
                if engine == "postgresql":
                    _postgresql_execute(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                else:
                    _mariadb_execute(admin_url, f"DROP DATABASE IF EXISTS `{name}`")
            except Exception as error:  # a failed drop must not hide the test results
                print(f"warning: could not drop test database {name} on {engine}: {error}")
        self._created.clear()

    def _give_up(self, engine: str, reason: str) -> None:
        if self._require:
            pytest.fail(
                f"{reason} (HERDSMAN_REQUIRE_DATABASES=1 requires every engine)", pytrace=False
            )
        pytest.skip(reason)


def _postgresql_execute(admin_url: str, statement: str) -> None:
    import psycopg

    url = make_url(admin_url)
    with psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password or None,
        dbname=url.database or "postgres",
        autocommit=True,
        connect_timeout=5,
    ) as connection:
        connection.execute(statement.encode())


def _mariadb_execute(admin_url: str, statement: str) -> None:
    import pymysql

    url = make_url(admin_url)
    connection = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        connect_timeout=5,
        autocommit=True,
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


def _database_url(engine: str, admin_url: str, name: str) -> str:
    url = make_url(admin_url)
    if engine == "postgresql":
        url = url.set(drivername="postgresql+psycopg", database=name)
    else:
        url = url.set(drivername="mysql+pymysql", database=name, query={"charset": "utf8mb4"})
    return url.render_as_string(hide_password=False)


def _redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseFactory]:
    require = os.environ.get("HERDSMAN_REQUIRE_DATABASES", "") not in ("", "0")
    factory = DatabaseFactory(tmp_path_factory.mktemp("sqlite"), require)
    try:
        yield factory
    finally:
        factory.drop_all()


@pytest.fixture(scope="session")
def engine(request: pytest.FixtureRequest) -> str:
    """The database engine under test; parametrized by ``pytest_generate_tests``."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def database_url(engine: str, database_factory: DatabaseFactory) -> str:
    """A database on ``engine``, shared by the session's server for that engine."""
    return database_factory.create(engine)


@pytest.fixture
def fresh_database_url(engine: str, database_factory: DatabaseFactory) -> str:
    """A new empty database on ``engine`` for one test (dropped at the end of the session)."""
    return database_factory.create(engine)


# --- servers --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server(
    engine: str,
    database_url: str,
    processes: ProcessRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningServer]:
    """A real server process on ``engine``'s test database, for the whole session."""
    state_dir = tmp_path_factory.mktemp(f"server-{engine}")
    # A reaper pass every second, so tests of lost swarms wait seconds, not half a minute.
    process, info = start_server_process(
        processes,
        database_url=database_url,
        state_dir=state_dir,
        extra_env={"HERDSMAN_REAPER__INTERVAL": "1"},
    )
    url = info.url
    try:
        httpx.get(f"{url}/api/v1/health", timeout=10).raise_for_status()
        yield RunningServer(url=url, database_url=database_url, engine=engine, pid=process.pid)
    finally:
        processes.stop(process)


@pytest.fixture
def requester(server: RunningServer) -> Iterator[Requester]:
    """An admin's requester for the engine's server (routes of every caller), closed after."""
    with Requester(server.url, token=admin_token(), timeout=60, retries=3) as client:
        yield client


@pytest.fixture
def embedded_data_dir(isolated_settings: Path) -> Iterator[Path]:
    """The isolated data_dir, for tests that start the embedded server.

    The embedded server is started detached by the library, not by the test, so the
    registry cannot stop it: afterwards it is stopped the library's way, and then any process
    whose command line names this data_dir is killed, in case a test left one behind.
    """
    from herdsman.client.embedded import stop_embedded_server
    from herdsman.core.config import Settings

    try:
        yield isolated_settings
    finally:
        try:
            stop_embedded_server(Settings(data_dir=isolated_settings), timeout=5)
        finally:
            kill_processes_mentioning(str(isolated_settings))
