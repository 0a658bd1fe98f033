"""The reaper against real server processes and databases, on every engine.

Workflows and runs are made through the HTTP API. A server started here runs with its own
reaper disabled, so each pass under test is the test's own (called in-process, or through
``herdsman server reaper``), except in the test of the server's background reaper.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, event, func, insert, select, update
from tests.support.tokens import admin_token, key_file

import herdsman
from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import swarm as sschemas
from herdsman.core.schemas import worker as wschemas
from herdsman.core.schemas.queries import TaskAttemptsOut, TaskDetailOut, WorkflowDetailOut
from herdsman.server.database import models
from herdsman.server.database.engine import Database, make_database
from herdsman.server.database.migrate import upgrade
from herdsman.server.domain.reaper import ReapReport, reap
from herdsman.server.runner import read_ready_file

pytestmark = pytest.mark.integration

SERVER_START_TIMEOUT = 60.0
TEST_CONTROL_VARIABLES = frozenset(
    {
        "HERDSMAN_REQUIRE_DATABASES",
        "HERDSMAN_TEST_ENGINES",
        "HERDSMAN_TEST_POSTGRESQL",
        "HERDSMAN_TEST_MARIADB",
    }
)
LONG_AGO = dt.timedelta(hours=2)


# --- servers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    url: str
    database_url: str
    process: subprocess.Popen[bytes]
    log_file: Path


def start_server(
    processes: Any, database_url: str, state_dir: Path, settings: dict[str, str]
) -> Server:
    """``python -m herdsman.server`` with ``settings`` as HERDSMAN_* variables, once ready."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ready_file = state_dir / "ready.json"
    log_file = state_dir / "server.log"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("HERDSMAN_") or key in TEST_CONTROL_VARIABLES
    }
    env.update(
        HERDSMAN_DATA_DIR=str(state_dir / "data"),
        HERDSMAN_CONFIG_FILE=str(state_dir / "absent-config.yaml"),
        HERDSMAN_AUTH__KEY_FILE=str(key_file()),
        **settings,
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
        "--log-level",
        "info",
    ]
    with log_file.open("ab") as log:
        process = processes.spawn(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited early:\n{log_file.read_text()[-4000:]}")
        info = read_ready_file(ready_file)
        if info is not None:
            return Server(info.url, database_url, process, log_file)
        time.sleep(0.05)
    processes.stop(process)
    pytest.fail(f"the server was not ready in time:\n{log_file.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def quiet_server(
    engine: str,
    database_factory: Any,
    processes: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """A server on a database of its own, with its reaper disabled."""
    database_url = database_factory.create(engine)
    state_dir = tmp_path_factory.mktemp(f"reaper-{engine}")
    server = start_server(processes, database_url, state_dir, {"HERDSMAN_REAPER__ENABLED": "false"})
    try:
        yield server
    finally:
        processes.stop(server.process)


@pytest.fixture
def api(quiet_server: Server) -> Iterator[Requester]:
    with Requester(quiet_server.url, token=admin_token(), timeout=60, retries=3) as requester:
        yield requester


@pytest.fixture
def database(quiet_server: Server) -> Iterator[Database]:
    """The quiet server's database, for reaping in this process."""
    database = make_database(quiet_server.database_url)
    try:
        yield database
    finally:
        database.dispose()


# --- workflows and runs through the API -------------------------------------------------------


def bound_workflow(requester: Requester, name: str, tasks: int = 3) -> tuple[int, list[int]]:
    tool = Tool(f"{name}-{time.time_ns()}", requester=requester)
    tool.set_default_cluster_name("dummy")
    template = tool.get_task_template("step", "true {i}", node_args=["i"])
    workflow = tool.create_workflow(workflow_args=tool.name)
    created = template.create_tasks(i=range(tasks))
    workflow.add_tasks(created)
    workflow_id = workflow.bind()
    return workflow_id, [task.task_id for task in created if task.task_id is not None]


def create_run(
    requester: Requester, workflow_id: int, *, resume: bool = False, cold: bool = True
) -> sschemas.WorkflowRunOut:
    return requester.post(
        f"/workflows/{workflow_id}/runs",
        sschemas.WorkflowRunIn(resume=resume, reset_running_jobs=cold),
        sschemas.WorkflowRunOut,
    )


def new_run(requester: Requester, workflow_id: int) -> int:
    """A new run of a workflow that never ran, moved on to R (running)."""
    run_id = create_run(requester, workflow_id).workflow_run_id
    for status in "IOR":
        set_run_status(requester, run_id, status)
    return run_id


def set_run_status(requester: Requester, run_id: int, status: str) -> None:
    requester.put(
        f"/workflow_runs/{run_id}/status",
        sschemas.RunStatusIn(status=status),
        sschemas.RunStatusOut,
    )


def heartbeat(requester: Requester, run_id: int, seconds: float) -> sschemas.RunHeartbeatOut:
    return requester.post(
        f"/workflow_runs/{run_id}/heartbeat",
        sschemas.RunHeartbeatIn(next_report_seconds=seconds),
        sschemas.RunHeartbeatOut,
    )


def claim(requester: Requester, run_id: int, task_ids: list[int]) -> list[int]:
    """Queue the tasks and claim their instances (Q -> I); the instance ids."""
    requester.post(
        f"/workflow_runs/{run_id}/queue",
        sschemas.QueueTasksIn(task_ids=task_ids),
        sschemas.TaskStatusesOut,
    )
    claimed = requester.post(
        f"/workflow_runs/{run_id}/claim", dschemas.ClaimIn(), dschemas.ClaimedOut
    )
    return [instance.task_instance_id for instance in claimed.instances]


def finish_all(requester: Requester, run_id: int, task_ids: list[int]) -> None:
    requester.post(
        "/task_instances/finish_without_running",
        dschemas.FinishIn(task_instance_ids=claim(requester, run_id, task_ids)),
        dschemas.TransitionsOut,
    )


def run_status(requester: Requester, run_id: int) -> tuple[str, str]:
    """(run status, its workflow's status)."""
    reply = requester.get(f"/workflow_runs/{run_id}", sschemas.RunStatusOut)
    return reply.status, reply.workflow_status


def workflow_status(requester: Requester, workflow_id: int) -> str:
    return requester.get(f"/workflows/{workflow_id}", WorkflowDetailOut).status


def feed_position(requester: Requester, workflow_id: int) -> int:
    return requester.get(f"/workflows/{workflow_id}/changes", sschemas.ChangesOut).last_seq


# --- direct database edits, for states the API never leaves behind ---------------------------


def update_rows(database_url: str, model: type[models.Base], row_id: int, **values: Any) -> None:
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            table = model.__table__
            connection.execute(update(table).where(table.c.id == row_id).values(**values))
    finally:
        engine.dispose()


def insert_run(database_url: str, workflow_id: int, status: str, since: dt.datetime) -> int:
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            result = connection.execute(
                insert(models.WorkflowRun.__table__).values(
                    workflow_id=workflow_id,
                    user="tester",
                    host="nowhere",
                    herdsman_version="0",
                    status=status,
                    status_date=since,
                    heartbeat_date=since,
                    created_date=since,
                )
            )
            return int(result.inserted_primary_key[0])
    finally:
        engine.dispose()


def feed_size(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    select(func.count()).select_from(models.StatusChange)
                ).scalar_one()
            )
    finally:
        engine.dispose()


def lapsed_ids(report: ReapReport) -> dict[int, str]:
    return {run.workflow_run_id: run.status.value for run in report.lapsed}


def soon() -> dt.datetime:
    """A reaper's "now" just after runs that promised to report within milliseconds."""
    return models.utcnow() + dt.timedelta(seconds=5)


# --- lapsed runs ------------------------------------------------------------------------------


def test_a_lapsed_run_errors_its_workflow_fails_and_a_follower_sees_it(
    api: Requester, database: Database, quiet_server: Server
) -> None:
    workflow_id, _ = bound_workflow(api, "lapsed")
    run_id = new_run(api, workflow_id)
    heartbeat(api, run_id, 0.001)
    after = feed_position(api, workflow_id)
    seen: list[sschemas.ChangeOut] = []

    def follow() -> None:
        with Requester(quiet_server.url) as follower:
            reply = follower.get(
                f"/workflows/{workflow_id}/changes",
                sschemas.ChangesOut,
                params={"after": after, "timeout": 30, "kinds": "R"},
            )
            seen.extend(reply.changes)

    follower = threading.Thread(target=follow)
    follower.start()
    report = reap(database, now=soon())
    follower.join(timeout=60)

    assert lapsed_ids(report) == {run_id: "E"}
    assert run_status(api, run_id) == ("E", "F")
    assert [(c.kind, c.id, c.status) for c in seen] == [("R", run_id, "E")]
    # The swarm, should it come back, learns from its next heartbeat that its run is over.
    assert heartbeat(api, run_id, 60).status == "E"


def test_a_run_that_heartbeats_in_time_is_left_alone(api: Requester, database: Database) -> None:
    workflow_id, _ = bound_workflow(api, "alive")
    run_id = new_run(api, workflow_id)
    heartbeat(api, run_id, 3600)

    report = reap(database, now=soon())

    assert run_id not in lapsed_ids(report)
    assert run_status(api, run_id) == ("R", "R")


@pytest.mark.parametrize("status", ["G", "L"])
def test_a_lapsed_registered_or_linking_run_is_aborted(
    api: Requester, database: Database, quiet_server: Server, status: str
) -> None:
    workflow_id, _ = bound_workflow(api, f"unbound-{status}")
    run_id = insert_run(quiet_server.database_url, workflow_id, status, models.utcnow() - LONG_AGO)

    report = reap(database)

    assert lapsed_ids(report)[run_id] == "A"
    assert run_status(api, run_id) == ("A", "A")


def test_a_new_run_is_not_reaped_before_its_first_heartbeat_is_due(
    api: Requester, database: Database
) -> None:
    workflow_id, _ = bound_workflow(api, "starting")
    run_id = new_run(api, workflow_id)  # created, never heartbeated

    within = reap(database, now=models.utcnow() + dt.timedelta(seconds=60))
    assert run_id not in lapsed_ids(within)
    assert run_status(api, run_id) == ("R", "R")

    after = reap(database, now=models.utcnow() + dt.timedelta(hours=1))
    assert lapsed_ids(after)[run_id] == "E"
    assert run_status(api, run_id) == ("E", "F")


def test_a_lapsed_run_whose_tasks_are_all_done_is_done(api: Requester, database: Database) -> None:
    workflow_id, task_ids = bound_workflow(api, "finished")
    run_id = new_run(api, workflow_id)
    finish_all(api, run_id, task_ids)
    heartbeat(api, run_id, 0.001)

    report = reap(database, now=soon())

    assert lapsed_ids(report) == {run_id: "D"}
    assert run_status(api, run_id) == ("D", "D")


# --- resumed runs -----------------------------------------------------------------------------


@pytest.mark.parametrize("cold", [True, False], ids=["cold", "hot"])
def test_a_resumed_run_is_terminated_once_its_kill_requests_are_settled(
    api: Requester, database: Database, quiet_server: Server, cold: bool
) -> None:
    workflow_id, task_ids = bound_workflow(api, "resumed")
    old_run = new_run(api, workflow_id)
    # Claimed but not started: a cold and a hot resume both have it killed.
    (instance_id,) = claim(api, old_run, task_ids[:1])
    new = create_run(api, workflow_id, resume=True, cold=cold)
    told = "C" if cold else "H"
    assert (new.status, new.waiting_on) == ("G", [old_run])
    assert run_status(api, old_run) == (told, "H")

    report = reap(database)

    assert old_run not in {run.workflow_run_id for run in report.terminated}
    assert run_status(api, old_run) == (told, "H")

    # The kill was carried out (K -> F), but nothing released the run: the reaper does.
    update_rows(quiet_server.database_url, models.TaskInstance, instance_id, status="F")
    report = reap(database)

    terminated = {(r.workflow_run_id, r.previous.value, r.status.value) for r in report.terminated}
    assert (old_run, told, "T") in terminated
    assert run_status(api, old_run) == ("T", "H")
    assert run_status(api, new.workflow_run_id) == ("G", "H")
    # The waiting run can take the workflow over now.
    linked = api.post(f"/workflow_runs/{new.workflow_run_id}/link", None, sschemas.WorkflowRunOut)
    assert linked.status == "B"
    assert workflow_status(api, workflow_id) == "Q"


# --- attempts of ended runs that nobody attends -----------------------------------------------

UNATTENDED_AFTER = 600.0


def launch(requester: Requester, instance_ids: list[int]) -> None:
    """Record the instances as handed to the cluster (I -> O)."""
    requester.post(
        "/task_instances/launched",
        dschemas.LaunchedIn(
            items=[
                dschemas.LaunchedItem(task_instance_id=i, distributor_id=f"job{i}")
                for i in instance_ids
            ]
        ),
        dschemas.TransitionsOut,
    )


def report_running(requester: Requester, instance_id: int, next_report_seconds: float) -> None:
    requester.post(
        f"/task_instances/{instance_id}/running",
        wschemas.InstanceRunningIn(
            host="node1",
            pid=1234,
            herdsman_version=herdsman.__version__,
            next_report_seconds=next_report_seconds,
        ),
        wschemas.InstanceRunningOut,
    )


def attempts(requester: Requester, task_ids: list[int]) -> dict[int, tuple[str, str]]:
    """By the id of each task's last attempt: (the task's status, the attempt's status)."""
    found = {}
    for task_id in task_ids:
        reply = requester.get(f"/tasks/{task_id}/attempts", TaskAttemptsOut)
        found[reply.attempts[-1].id] = (reply.status, reply.attempts[-1].status)
    return found


def later(seconds: float) -> dt.datetime:
    return models.utcnow() + dt.timedelta(seconds=seconds)


def test_the_live_attempts_of_an_ended_unattended_run_are_closed(
    api: Requester, database: Database
) -> None:
    workflow_id, task_ids = bound_workflow(api, "abandoned", tasks=4)
    run_id = new_run(api, workflow_id)
    launched, silent, reporting, claimed = claim(api, run_id, task_ids)
    launch(api, [launched, silent, reporting])
    report_running(api, silent, 1.0)  # its worker crashed: no report after this one
    report_running(api, reporting, 30 * 24 * 3600.0)  # its worker reports on time
    set_run_status(api, run_id, "E")  # the swarm ended and its distributor was stopped

    attended = reap(database, now=later(UNATTENDED_AFTER / 2), unattended_after=UNATTENDED_AFTER)
    report = reap(database, now=later(2 * UNATTENDED_AFTER), unattended_after=UNATTENDED_AFTER)

    assert attended.abandoned_attempts == ()
    assert sorted(report.abandoned_attempts) == sorted([launched, silent, claimed])
    assert "3 abandoned attempt(s)" in report.summary()
    assert attempts(api, task_ids) == {
        launched: ("G", "E"),  # vanished before it ran: if its job starts, it is refused
        silent: ("G", "U"),
        reporting: ("R", "R"),  # left to report its own end
        claimed: ("G", "W"),
    }
    (silent_task,) = [
        task_id
        for task_id in task_ids
        if api.get(f"/tasks/{task_id}/attempts", TaskAttemptsOut).attempts[-1].id == silent
    ]
    # Given back without spending an attempt: the run ended, not the task.
    detail = api.get(f"/tasks/{silent_task}", TaskDetailOut)
    assert detail.num_attempts == 1 and detail.max_attempts > 1
    error = api.get(f"/tasks/{silent_task}/attempts", TaskAttemptsOut).attempts[-1].error
    assert error is not None and "no distributor has attended it" in error


def test_an_ended_run_whose_distributor_still_triages_is_left_alone(
    api: Requester, database: Database, quiet_server: Server
) -> None:
    workflow_id, task_ids = bound_workflow(api, "attended", tasks=1)
    run_id = new_run(api, workflow_id)
    (instance_id,) = claim(api, run_id, task_ids)
    launch(api, [instance_id])
    set_run_status(api, run_id, "E")
    update_rows(quiet_server.database_url, models.WorkflowRun, run_id, status_date=later(-3600))
    api.post(f"/workflow_runs/{run_id}/triage", dschemas.TriageIn(), dschemas.TriageOut)

    attended = reap(database, now=later(60), unattended_after=UNATTENDED_AFTER)
    deserted = reap(database, now=later(2 * UNATTENDED_AFTER), unattended_after=UNATTENDED_AFTER)

    assert attended.abandoned_attempts == ()
    assert deserted.abandoned_attempts == (instance_id,)


def test_a_live_run_s_attempts_are_its_distributor_s(api: Requester, database: Database) -> None:
    workflow_id, task_ids = bound_workflow(api, "live-run", tasks=1)
    run_id = new_run(api, workflow_id)
    (instance_id,) = claim(api, run_id, task_ids)
    launch(api, [instance_id])
    heartbeat(api, run_id, 30 * 24 * 3600.0)

    report = reap(database, now=later(2 * UNATTENDED_AFTER), unattended_after=UNATTENDED_AFTER)

    assert report.abandoned_attempts == ()
    assert attempts(api, task_ids) == {instance_id: ("O", "O")}


def test_a_resumed_run_whose_kills_nobody_confirms_is_released(
    api: Requester, database: Database
) -> None:
    workflow_id, task_ids = bound_workflow(api, "unconfirmed-kill", tasks=1)
    old_run = new_run(api, workflow_id)
    (instance_id,) = claim(api, old_run, task_ids)
    launch(api, [instance_id])
    new = create_run(api, workflow_id, resume=True, cold=True)
    assert run_status(api, old_run)[0] == "C"
    heartbeat(api, new.workflow_run_id, 30 * 24 * 3600.0)  # the new run's swarm waits on

    report = reap(database, now=later(2 * UNATTENDED_AFTER), unattended_after=UNATTENDED_AFTER)

    assert report.abandoned_attempts == (instance_id,)
    assert (old_run, "C", "T") in {
        (r.workflow_run_id, r.previous.value, r.status.value) for r in report.terminated
    }
    linked = api.post(f"/workflow_runs/{new.workflow_run_id}/link", None, sschemas.WorkflowRunOut)
    assert linked.status == "B"


# --- finished workflows -----------------------------------------------------------------------


def test_a_running_workflow_with_every_task_done_and_no_live_run_is_done(
    api: Requester, database: Database, quiet_server: Server
) -> None:
    workflow_id, task_ids = bound_workflow(api, "orphaned")
    run_id = new_run(api, workflow_id)
    finish_all(api, run_id, task_ids)
    # A run that ended without taking its workflow along: the workflow still says running.
    update_rows(quiet_server.database_url, models.WorkflowRun, run_id, status="S")
    assert workflow_status(api, workflow_id) == "R"

    report = reap(database)

    assert workflow_id in report.completed_workflows
    assert workflow_status(api, workflow_id) == "D"


def test_a_workflow_whose_run_is_live_is_not_marked_done(
    api: Requester, database: Database
) -> None:
    workflow_id, task_ids = bound_workflow(api, "live")
    run_id = new_run(api, workflow_id)
    finish_all(api, run_id, task_ids)
    heartbeat(api, run_id, 3600)

    report = reap(database)

    assert workflow_id not in report.completed_workflows
    assert run_status(api, run_id) == ("R", "R")


# --- idle passes, concurrent reapers ----------------------------------------------------------


def test_an_idle_pass_changes_nothing_and_only_reads(
    api: Requester, database: Database, quiet_server: Server
) -> None:
    workflow_id, _ = bound_workflow(api, "idle")
    run_id = new_run(api, workflow_id)
    heartbeat(api, run_id, 3600)
    reap(database)  # whatever earlier tests left to do is done now
    before = feed_size(quiet_server.database_url)
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.strip().split(None, 1)[0].upper())

    engines = {database.write_engine, database.read_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        report = reap(database)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)

    assert not report.changed
    assert report.summary() == "nothing to reap"
    assert feed_size(quiet_server.database_url) == before
    assert run_status(api, run_id) == ("R", "R")
    # Three indexed reads; no write transaction is opened for nothing.
    assert [s for s in statements if s != "BEGIN"] == ["SELECT"] * 3


def test_a_pass_on_an_empty_database_changes_nothing(fresh_database_url: str) -> None:
    database = make_database(fresh_database_url)
    try:
        upgrade(database)
        assert reap(database) == ReapReport()
    finally:
        database.dispose()


def test_concurrent_reapers_end_each_run_once(
    api: Requester, quiet_server: Server, database: Database
) -> None:
    reap(database)  # start from a settled database
    runs = []
    for index in range(4):
        workflow_id, _ = bound_workflow(api, f"contended-{index}")
        run_id = new_run(api, workflow_id)
        heartbeat(api, run_id, 0.001)
        runs.append((workflow_id, run_id))
    now = soon()
    reports: list[ReapReport] = []
    errors: list[BaseException] = []

    def reaper() -> None:
        # A database object of its own, as a reaper in another server process would have.
        own = make_database(quiet_server.database_url)
        try:
            reports.append(reap(own, now=now))
        except BaseException as error:
            errors.append(error)
        finally:
            own.dispose()

    threads = [threading.Thread(target=reaper) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors
    reaped = [run.workflow_run_id for report in reports for run in report.lapsed]
    assert sorted(reaped) == sorted(run_id for _, run_id in runs)
    for workflow_id, run_id in runs:
        assert run_status(api, run_id) == ("E", "F")
        changes = api.get(
            f"/workflows/{workflow_id}/changes", sschemas.ChangesOut, params={"kinds": "R:E"}
        ).changes
        assert [(c.id, c.status) for c in changes] == [(run_id, "E")]


# --- the standalone command and the server's own reaper ---------------------------------------


def test_the_reaper_command_once(
    api: Requester, database: Database, quiet_server: Server, herdsman_executable: str
) -> None:
    reap(database)  # start from a settled database
    workflow_id, _ = bound_workflow(api, "command")
    run_id = new_run(api, workflow_id)
    heartbeat(api, run_id, 3600)
    long_ago = models.utcnow() - LONG_AGO
    update_rows(quiet_server.database_url, models.WorkflowRun, run_id, heartbeat_date=long_ago)

    done = subprocess.run(
        [
            herdsman_executable,
            "server",
            "reaper",
            "--once",
            "--database-url",
            quiet_server.database_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )

    assert done.returncode == 0, done.stderr
    assert f"workflow run {run_id} (workflow {workflow_id}): R -> E" in done.stdout
    assert "reaper: 1 lapsed run(s) -> E (error)" in done.stdout
    assert run_status(api, run_id) == ("E", "F")


def test_the_server_reaps_in_the_background(
    engine: str,
    database_factory: Any,
    processes: Any,
    tmp_path: Path,
) -> None:
    server = start_server(
        processes,
        database_factory.create(engine),
        tmp_path / "server",
        {"HERDSMAN_REAPER__INTERVAL": "0.2"},
    )
    try:
        with Requester(server.url, token=admin_token(), timeout=60, retries=3) as requester:
            workflow_id, _ = bound_workflow(requester, "background")
            run_id = new_run(requester, workflow_id)
            after = feed_position(requester, workflow_id)
            heartbeat(requester, run_id, 0.001)
            seen: list[tuple[int, str]] = []
            deadline = time.monotonic() + 60
            while not seen and time.monotonic() < deadline:
                reply = requester.get(
                    f"/workflows/{workflow_id}/changes",
                    sschemas.ChangesOut,
                    params={"after": after, "timeout": 20, "kinds": "R"},
                )
                seen = [(c.id, c.status) for c in reply.changes]
                after = reply.last_seq
            assert seen == [(run_id, "E")]
            assert run_status(requester, run_id) == ("E", "F")
    finally:
        processes.stop(server.process)
    # Stopped with the server, cleanly.
    assert "reaper_stopped" in server.log_file.read_text()
