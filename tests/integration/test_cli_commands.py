"""The real ``herdsman`` executable against a real server holding done, failed and running
workflows: every command's table and its ``--json``, errors, and the older command names.

The CLI is an interface for people and scripts, so these tests read what they read: the text
of the table and the parsed JSON. They run on SQLite only; the routes behind them are tested
on every engine in ``test_report_routes.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import DatabaseFactory, ProcessRegistry, start_server_process
from tests.integration.report_workflows import (
    HOLD_MEMORY,
    DoneWorkflow,
    FailedWorkflow,
    RunningWorkflow,
    reports_tool,
    run_done_workflow,
    run_failed_workflow,
    start_running_workflow,
)
from tests.support.tokens import user_token

from herdsman import Tool
from herdsman.client.control import stop_workflow, update_task_statuses
from herdsman.core.errors import ConflictError, PermissionDeniedError
from herdsman.core.requester import Requester
from herdsman.core.schemas.queries import (
    KilledForResourcesOut,
    ResourceUsageOut,
    TaskDetailOut,
    TasksPageOut,
    WorkflowSummariesOut,
)
from herdsman.core.units import parse_memory

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Cli:
    """Runs the herdsman console script against the module's server."""

    executable: str
    env: dict[str, str]
    server_url: str

    def __call__(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if user is not None:  # another user: their own token
            env.update(HERDSMAN_TOKEN=user_token(user))
        return subprocess.run(
            [self.executable, *args], env=env, capture_output=True, text=True, check=False
        )

    def ok(self, *args: str) -> str:
        """stdout of a command that must succeed."""
        done = self(*args)
        assert done.returncode == 0, f"herdsman {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture(scope="module")
def cli(
    herdsman_executable: str,
    processes: ProcessRegistry,
    database_factory: DatabaseFactory,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Cli]:
    state = tmp_path_factory.mktemp("cli-server")
    process, info = start_server_process(
        processes, database_url=database_factory.create("sqlite"), state_dir=state / "server"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("HERDSMAN_")}
    env.update(
        HERDSMAN_SERVER_URL=info.url,
        HERDSMAN_DATA_DIR=str(state / "data"),
        HERDSMAN_CONFIG_FILE=str(state / "config.yaml"),
        HERDSMAN_TOKEN=user_token(),
    )
    try:
        yield Cli(herdsman_executable, env, info.url)
    finally:
        processes.stop(process)


@pytest.fixture(scope="module")
def requester(cli: Cli) -> Iterator[Requester]:
    with Requester(cli.server_url, timeout=60, retries=3) as client:
        yield client


@pytest.fixture(scope="module")
def tool(requester: Requester, tmp_path_factory: pytest.TempPathFactory) -> Tool:
    return reports_tool(requester, tmp_path_factory.mktemp("finished"), "cli-reports")


@pytest.fixture(scope="module")
def done_wf(tool: Tool) -> DoneWorkflow:
    return run_done_workflow(tool)


@pytest.fixture(scope="module")
def failed_wf(tool: Tool, done_wf: DoneWorkflow) -> FailedWorkflow:
    return run_failed_workflow(tool)  # after the done one: workflow ids follow this order


@pytest.fixture(scope="module")
def running(
    cli: Cli,
    requester: Requester,
    failed_wf: FailedWorkflow,  # created first, so the running workflow is the newest
    processes: ProcessRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningWorkflow]:
    env = dict(cli.env)
    env.pop("HERDSMAN_SERVER_URL")
    started = start_running_workflow(
        processes, cli.server_url, tmp_path_factory.mktemp("running"), "cli-running", env
    )
    try:
        yield started
    finally:
        with contextlib.suppress(ConflictError):  # stopped by a test already
            stop_workflow(requester, started.workflow_id)
        # Let its run end the way a stopped run does, stopping its distributor; a signal
        # would end the script before it could.
        with contextlib.suppress(subprocess.TimeoutExpired):
            started.process.wait(timeout=60)
        processes.stop(started.process)


# --- reading ---------------------------------------------------------------------------------


def test_workflow_status_counts_tasks_of_done_failed_and_running_workflows(
    cli: Cli, done_wf: DoneWorkflow, failed_wf: FailedWorkflow, running: RunningWorkflow
) -> None:
    ids = [running.workflow_id, failed_wf.workflow_id, done_wf.workflow_id]
    found = cli.json("workflow", "status", *(f"-w{i}" for i in ids))
    rows = {row["id"]: row for row in found["workflows"]}
    assert [row["id"] for row in found["workflows"]] == sorted(ids, reverse=True)
    counts = ("status", "tasks", "pending", "running", "done", "fatal", "retries")
    assert {key: rows[done_wf.workflow_id][key] for key in counts} == dict(
        status="D", tasks=3, pending=0, running=0, done=3, fatal=0, retries=0
    )
    # flaky failed twice (one retry) and crash once; "after" never ran.
    assert {key: rows[failed_wf.workflow_id][key] for key in counts} == dict(
        status="F", tasks=5, pending=1, running=0, done=2, fatal=2, retries=1
    )
    assert {key: rows[running.workflow_id][key] for key in counts} == dict(
        status="R", tasks=2, pending=0, running=1, done=1, fatal=0, retries=0
    )
    assert all(row["elapsed_seconds"] > 0 for row in rows.values())

    # Without -w: the current user's newest workflows.
    table = cli.ok("workflow", "status", "--limit", "3")
    lines = table.splitlines()
    assert lines[0].split() == [
        "WF", "ID", "NAME", "STATUS", "TASKS", "PENDING", "RUNNING", "DONE", "FATAL", "RETRIES",
        "SUBMITTED", "ELAPSED",
    ]  # fmt: skip
    assert lines[1].split()[:9] == [str(running.workflow_id), "cli-running-running", "running",
                                    "2", "0", "1", "1", "0", "0"]  # fmt: skip
    assert lines[2].split()[:9] == [str(failed_wf.workflow_id), "cli-reports-failed", "failed",
                                    "5", "1", "0", "2", "2", "1"]  # fmt: skip
    assert len(lines) == 4
    assert cli.ok("workflow", "status", "-u", "nobody-here").strip() == "no workflows found"


def test_workflow_tasks_filters_by_status(cli: Cli, failed_wf: FailedWorkflow) -> None:
    fatal = cli.json("workflow", "tasks", "-w", str(failed_wf.workflow_id), "-s", "FATAL")
    assert fatal["count"] == 2
    assert {(t["id"], t["num_attempts"]) for t in fatal["tasks"]} == {
        (failed_wf.flaky_id, 2),
        (failed_wf.crash_id, 1),
    }

    table = cli.ok("workflow", "tasks", "-w", str(failed_wf.workflow_id), "--limit", "4")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:-1]}
    assert table.splitlines()[0].split() == ["TASK", "ID", "NAME", "STATUS", "ATTEMPTS"]
    assert rows[str(failed_wf.flaky_id)][2:] == ["error_fatal", "2/2"]
    assert rows[str(failed_wf.prepare_id)][2:] == ["done", "1/3"]
    assert len(rows) == 4
    assert table.splitlines()[-1] == "4 of 5 tasks shown"


def test_workflow_logs_name_existing_files(cli: Cli, done_wf: DoneWorkflow) -> None:
    found = cli.json("workflow", "logs", "-w", str(done_wf.workflow_id), "--template", "model")
    assert found["count"] == 2
    assert {row["task_id"] for row in found["instances"]} == set(done_wf.model_ids)
    for row in found["instances"]:
        assert Path(row["stdout_path"]).parent == done_wf.log_dir
        assert Path(row["stdout_path"]).is_file() and Path(row["stderr_path"]).is_file()

    table = cli.ok("workflow", "logs", "-w", str(done_wf.workflow_id))
    assert table.splitlines()[0].split() == [
        "TASK", "ID", "TEMPLATE", "INSTANCE", "STATUS", "STDOUT", "STDERR",
    ]  # fmt: skip
    for row in found["instances"]:
        assert row["stdout_path"] in table and row["stderr_path"] in table
    assert table.splitlines()[-1] == "3 of 3 attempts shown"


def test_workflow_errors_are_grouped_by_message(cli: Cli, failed_wf: FailedWorkflow) -> None:
    found = cli.json("workflow", "errors", "-w", str(failed_wf.workflow_id))
    assert found["count"] == 3
    assert [(g["count"], g["task_ids"], g["sample"]) for g in found["groups"]] == [
        (2, [failed_wf.flaky_id], "exit code 3"),
        (1, [failed_wf.crash_id], "exit code 5"),
    ]
    table = cli.ok("workflow", "errors", "-w", str(failed_wf.workflow_id))
    lines = table.splitlines()
    assert lines[0].split() == ["COUNT", "TASKS", "LATEST", "SAMPLE"]
    assert lines[1].split()[:2] == ["2", str(failed_wf.flaky_id)]
    assert lines[1].endswith("exit code 3")
    assert lines[-1] == "3 errors in 2 groups"


def test_task_status_shows_every_attempt(
    cli: Cli, done_wf: DoneWorkflow, failed_wf: FailedWorkflow
) -> None:
    model_id = done_wf.model_ids[1]
    found = cli.json("task", "status", "-t", str(failed_wf.flaky_id), "-t", str(model_id))
    flaky, model = found
    assert (flaky["task_id"], flaky["status"]) == (failed_wf.flaky_id, "F")
    assert [(a["status"], a["exit_code"], a["error"]) for a in flaky["attempts"]] == [
        ("E", 3, "exit code 3"),
        ("E", 3, "exit code 3"),
    ]
    (attempt,) = model["attempts"]
    assert (attempt["status"], attempt["exit_code"], attempt["error"]) == ("D", 0, None)
    assert attempt["host"] and attempt["distributor_id"]
    assert attempt["wall_time"] > 0 and attempt["max_rss"] > 128 << 20

    table = cli.ok("task", "status", "-t", str(failed_wf.flaky_id))
    lines = table.splitlines()
    assert lines[0] == (
        f"task {failed_wf.flaky_id} (flaky_marker-{failed_wf.flaky_marker}) of workflow "
        f"{failed_wf.workflow_id}: error_fatal"
    )
    assert lines[1].split() == [
        "INSTANCE", "RUN", "STATUS", "HOST", "JOB", "ID", "EXIT", "WALL", "CPU", "MAX", "RSS",
        "ERROR",
    ]  # fmt: skip
    # The table's rows, then each attempt's stderr (issue 14).
    rows, output = lines[2 : 2 + len(flaky["attempts"])], lines[2 + len(flaky["attempts"]) :]
    for line, attempt in zip(rows, flaky["attempts"], strict=True):
        cells = line.split()
        assert cells[:3] == [str(attempt["id"]), str(attempt["workflow_run_id"]), "error"]
        assert cells[4:6] == [attempt["distributor_id"], "3"]
        assert line.endswith("exit code 3")
    assert output == [
        line
        for attempt in flaky["attempts"]
        for line in (f"instance {attempt['id']} stderr:", "  boom")
    ]


def test_task_dependencies_with_statuses(cli: Cli, failed_wf: FailedWorkflow) -> None:
    found = cli.json("task", "dependencies", "-t", str(failed_wf.flaky_id))
    assert found == {
        "task_id": failed_wf.flaky_id,
        "upstream": [{"id": failed_wf.prepare_id, "name": "prepare_n-2", "status": "D"}],
        "downstream": [{"id": failed_wf.after_id, "name": "prepare_n-3", "status": "G"}],
    }
    table = cli.ok("task", "dependencies", "-t", str(failed_wf.flaky_id))
    assert [line.rstrip() for line in table.splitlines()] == [
        f"upstream of task {failed_wf.flaky_id} (1)",
        "TASK ID  NAME         STATUS",
        f"{failed_wf.prepare_id:>7}  prepare_n-2  done",
        f"downstream of task {failed_wf.flaky_id} (1)",
        "TASK ID  NAME         STATUS",
        f"{failed_wf.after_id:>7}  prepare_n-3  registering",
    ]


def test_resources_usage_summarises_done_attempts(
    cli: Cli, done_wf: DoneWorkflow, requester: Requester
) -> None:
    found = cli.json("resources", "usage", "-t", "model", "-w", str(done_wf.workflow_id))
    (entry,) = found["templates"]
    assert (entry["task_template"], entry["cluster"], entry["attempts"]) == (
        "model",
        "sequential",
        2,
    )
    memory, runtime = entry["memory"], entry["runtime"]
    assert memory["count"] == runtime["count"] == 2
    assert memory["min"] <= memory["median"] <= memory["p95"] <= memory["max"]
    # The two tasks held 64 and 128 MiB on top of the same interpreter.
    assert memory["max"] - memory["min"] == pytest.approx(64 / 1024, abs=8 / 1024)
    assert memory["mean"] == pytest.approx((memory["min"] + memory["max"]) / 2)
    every_workflow = requester.get(
        "/resource_usage", ResourceUsageOut, params={"task_template": "model"}
    )
    assert every_workflow.templates[0].attempts == 3

    table = cli.ok("resources", "usage", "-t", "model", "-w", str(done_wf.workflow_id))
    lines = table.splitlines()
    assert lines[0].split() == [
        "TEMPLATE", "CLUSTER", "RESOURCE", "N", "MIN", "MEAN", "MEDIAN", "P95", "MAX",
    ]  # fmt: skip
    assert lines[1].split()[:4] == ["model", "sequential", "runtime", "2"]
    assert lines[2].split()[:4] == ["model", "sequential", "memory", "2"]
    assert lines[2].count("MiB") == 5


def test_resources_yaml_loads_back_through_yaml_file(
    cli: Cli, done_wf: DoneWorkflow, requester: Requester, tmp_path: Path
) -> None:
    text = cli.ok("resources", "yaml", "-w", str(done_wf.workflow_id))
    content = yaml.safe_load(text)
    assert set(content["task_template_resources"]) == {"prepare", "model"}
    model = content["task_template_resources"]["model"]["sequential"]
    usage = requester.get(
        "/resource_usage",
        ResourceUsageOut,
        params={"task_template": "model", "workflow_id": [done_wf.workflow_id]},
    )
    memory = usage.templates[0].memory
    assert memory is not None
    assert memory.max <= parse_memory(model["memory"]) < memory.max + 1 / 1024
    assert cli.json("resources", "yaml", "-w", str(done_wf.workflow_id)) == content

    path = tmp_path / "resources.yaml"
    cli.ok(
        "resources", "yaml", "-t", "model", "-w", str(done_wf.workflow_id), "-o", str(path),
        "--mem-strategy", "avg",
    )  # fmt: skip
    average = yaml.safe_load(path.read_text())["task_template_resources"]["model"]["sequential"]
    assert memory.mean <= parse_memory(average["memory"]) < memory.mean + 1 / 1024
    assert parse_memory(average["memory"]) < parse_memory(model["memory"])
    tool = Tool("cli-yaml-round-trip", requester=requester)
    tool.set_default_cluster_name("sequential")
    template = tool.get_task_template("model", HOLD_MEMORY, node_args=["mib"], yaml_file=path)
    task = template.create_task(mib=1)
    workflow = tool.create_workflow(workflow_args="cli-yaml-round-trip")
    workflow.add_task(task)
    workflow.bind()
    detail = requester.get(f"/tasks/{task.task_id}", TaskDetailOut)
    assert detail.resources.requested["memory"] == parse_memory(average["memory"])
    assert detail.resources.requested["runtime"] == average["runtime"]


# --- steering --------------------------------------------------------------------------------


def test_concurrency_of_a_running_workflow(cli: Cli, running: RunningWorkflow) -> None:
    workflow_id = str(running.workflow_id)
    assert cli.ok("workflow", "concurrency", "-w", workflow_id, "-m", "3").strip() == (
        f"workflow {workflow_id}: at most 3 tasks of the workflow at once (workflow limit 3)"
    )
    limits = cli.json("workflow", "concurrency", "-w", workflow_id, "-m", "2", "--template", "nap")
    assert limits["max_concurrently_running"] == 3
    assert list(limits["array_limits"].values()) == [2]


def test_owner_resets_and_updates_then_resumes_a_failed_workflow(
    cli: Cli, requester: Requester, running: RunningWorkflow, tmp_path: Path
) -> None:
    own = run_failed_workflow(reports_tool(requester, tmp_path, "cli-steering"))
    failed = str(own.workflow_id)

    refused = cli("workflow", "reset", "-w", failed, user="intruder")
    assert refused.returncode == 1
    assert "Traceback" not in refused.stderr
    assert refused.stderr.splitlines()[0].startswith(
        f"error: only the owner of workflow {failed} ("
    )
    assert refused.stderr.splitlines()[1] == "hint: ask the workflow's owner to do this"

    assert cli.ok("workflow", "reset", "-w", failed, "--partial").strip() == (
        f"workflow {failed}: tasks reset: 2; run them with `herdsman workflow resume -w {failed}`"
    )
    again = cli.json("workflow", "reset", "-w", failed, "--partial")
    assert again == {"workflow_id": own.workflow_id, "workflow_status": "F", "changed_task_ids": []}

    done = cli.ok("task", "update", "-t", str(own.crash_id), "-w", failed, "-s", "DONE")
    assert done.strip() == f"tasks set to done: 1 ({own.crash_id}); workflow {failed} is failed"
    # (In-process where the CLI's output is not what is under test: each call costs a second.)
    after = update_task_statuses(requester, own.workflow_id, [own.after_id], "D", recursive=False)
    assert after.changed_task_ids == [own.after_id]
    # Resetting prepare resets everything downstream of it that is not new: "after" was done.
    reset = cli.json("task", "update", "-t", str(own.prepare_id), "-w", failed, "-s", "REGISTERED")
    assert reset["changed_task_ids"] == sorted([own.prepare_id, own.after_id])
    statuses = requester.get(f"/workflows/{failed}/tasks", TasksPageOut)
    assert {task.id: task.status for task in statuses.tasks} == {
        own.prepare_id: "G",
        own.flaky_id: "G",
        own.after_id: "G",
        own.model_ids[0]: "D",
        own.crash_id: "D",
    }

    with pytest.raises(ConflictError, match=f"workflow {running.workflow_id} is running"):
        update_task_statuses(requester, running.workflow_id, [1], "D", recursive=False)

    own.flaky_marker.touch()
    resumed = cli("workflow", "resume", "-w", failed, "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"workflow_id": own.workflow_id, "status": "D"}
    assert f"workflow {failed}: 5/5 done (100%)" in resumed.stderr


# --- errors and older names ------------------------------------------------------------------


def test_errors_print_one_line_and_a_hint_unless_debug(cli: Cli) -> None:
    missing = cli("workflow", "tasks", "-w", "999999")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.splitlines() == [
        "error: workflow 999999 does not exist",
        "hint: check the name or id",
    ]
    debug = cli("--debug", "task", "status", "-t", "999999")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "NotFoundError" in debug.stderr


def test_older_command_names_are_hidden_aliases(cli: Cli, done_wf: DoneWorkflow) -> None:
    done = str(done_wf.workflow_id)
    old = cli("workflow_status", "-w", done, "--json")
    assert old.returncode == 0
    (row,) = json.loads(old.stdout)["workflows"]
    assert (row["id"], row["status"], row["done"]) == (done_wf.workflow_id, "D", 3)
    assert old.stderr.strip() == "note: `workflow_status` is now `herdsman workflow status`"
    paths = cli("get_filepaths", "-w", done)
    assert paths.returncode == 0
    assert paths.stdout.splitlines()[-1] == "3 of 3 attempts shown"
    assert paths.stderr.strip() == "note: `get_filepaths` is now `herdsman workflow logs`"
    listed = cli.ok("--help")
    assert "workflow_status" not in listed and "get_filepaths" not in listed
    assert "workflow" in listed and "resources" in listed


def test_stop_kills_the_running_workflow(
    cli: Cli, requester: Requester, running: RunningWorkflow, done_wf: DoneWorkflow
) -> None:
    workflow_id = str(running.workflow_id)
    with (
        Requester(cli.server_url, token=user_token("intruder")) as intruder,
        pytest.raises(PermissionDeniedError, match=f"only the owner of workflow {workflow_id}"),
    ):
        stop_workflow(intruder, running.workflow_id)
    stopped = cli.ok("workflow", "stop", "-w", workflow_id)
    assert stopped.startswith(f"workflow {workflow_id}: run ")
    assert stopped.strip().endswith("is stopped; its jobs are being killed")
    assert running.process.wait() == 0
    assert running.output.read_text().split() == [workflow_id, "S"]
    (row,) = requester.get(
        "/workflow_summaries", WorkflowSummariesOut, params={"workflow_id": [workflow_id]}
    ).workflows
    # The killed task waits for a resume; it is not left running.
    assert (row.status, row.done, row.running, row.pending) == ("H", 1, 0, 1)
    # Stopping again changes nothing and says so.
    assert cli.json("workflow", "stop", "-w", workflow_id)["status"] == "S"
    done = str(done_wf.workflow_id)
    finished_already = cli("workflow", "stop", "-w", done)
    assert finished_already.returncode == 1
    first_line = finished_already.stderr.splitlines()[0]
    assert first_line.startswith(f"error: workflow {done} is not running: its last run ")
    assert first_line.endswith(" ended as done (D)")


def test_ids_are_taken_as_arguments_too(
    cli: Cli, done_wf: DoneWorkflow, failed_wf: FailedWorkflow
) -> None:
    done, failed = str(done_wf.workflow_id), str(failed_wf.workflow_id)
    assert cli.json("workflow", "status", done, failed) == cli.json(
        "workflow", "status", "-w", done, "-w", failed
    )
    assert cli.json("workflow", "tasks", failed) == cli.json("workflow", "tasks", "-w", failed)
    assert cli.json("task", "status", str(done_wf.prepare_id)) == cli.json(
        "task", "status", "-t", str(done_wf.prepare_id)
    )
    assert cli.ok("workflow", "errors", failed).splitlines()[-1] == "3 errors in 2 groups"


def test_a_workflow_without_a_name_shows_its_tool_and_workflow_args(cli: Cli, tool: Tool) -> None:
    unnamed = tool.create_workflow(workflow_args="unnamed-args")
    unnamed.add_tasks(
        [tool.get_task_template("echo", "echo {n}", node_args=["n"]).create_task(n=1)]
    )
    workflow_id = unnamed.bind()

    row = cli.ok("workflow", "status", str(workflow_id)).splitlines()[1]

    assert row.split()[:3] == [str(workflow_id), f"{tool.name}:", "unnamed-args"]
    (found,) = cli.json("workflow", "status", str(workflow_id))["workflows"]
    assert (found["name"], found["tool"], found["workflow_args"]) == ("", tool.name, "unnamed-args")


# --- Jobmon's spellings ----------------------------------------------------------------------


def test_jobmon_flags_of_the_reading_commands(
    cli: Cli, done_wf: DoneWorkflow, failed_wf: FailedWorkflow
) -> None:
    done, failed = str(done_wf.workflow_id), str(failed_wf.workflow_id)
    # workflow_status -w -l -o json / --json / -n; and herdsman's own name with Jobmon's flags.
    as_output = json.loads(cli.ok("workflow_status", "-w", done, "-w", failed, "-o", "json"))
    assert as_output == cli.json("workflow", "status", "-w", done, "-w", failed)
    assert as_output == json.loads(cli.ok("workflow_status", "--workflow_id", done, "-w", failed,
                                          "-n"))  # fmt: skip
    newest = json.loads(cli.ok("workflow", "status", "-l", "1", "-o", "json"))
    assert len(newest["workflows"]) == 1
    mine = json.loads(cli.ok("workflow_status", "-u", failed_wf_user(cli, failed), "-l", "2",
                             "--json"))  # fmt: skip
    assert len(mine["workflows"]) == 2
    assert cli.ok("workflow_status", "-w", done, "-o", "table").splitlines()[0].split()[:3] == [
        "WF", "ID", "NAME",
    ]  # fmt: skip

    # workflow_tasks -w -s -l -o
    fatal = json.loads(cli.ok("workflow_tasks", "-w", failed, "-s", "fatal", "-l", "1", "-o",
                              "json"))  # fmt: skip
    assert (fatal["count"], len(fatal["tasks"])) == (2, 1)
    assert fatal["tasks"][0]["id"] == min(failed_wf.flaky_id, failed_wf.crash_id)

    # task_status -t -s -o: only the tasks in those statuses, each with its attempts.
    ids = [str(failed_wf.prepare_id), str(failed_wf.crash_id), str(failed_wf.after_id)]
    found = json.loads(
        cli.ok("task_status", *(f"-t{i}" for i in ids), "-s", "DONE", "-s", "FATAL", "-o", "json")
    )
    assert [(item["task_id"], item["status"]) for item in found] == [
        (failed_wf.prepare_id, "D"),
        (failed_wf.crash_id, "F"),
    ]
    assert [attempt["exit_code"] for attempt in found[1]["attempts"]] == [5]
    pending = json.loads(cli.ok("task_status", "--task_ids", ids[2], "-s", "PENDING", "--json"))
    assert [item["task_id"] for item in pending] == [failed_wf.after_id]


def failed_wf_user(cli: Cli, workflow_id: str) -> str:
    (row,) = cli.json("workflow", "status", workflow_id)["workflows"]
    return str(row["user"])


def test_version_and_dash_dash_version(cli: Cli) -> None:
    from herdsman import __version__

    assert cli.ok("version").strip() == __version__
    assert cli.ok("--version").strip() == f"herdsman, version {__version__}"


def test_update_task_status_reopens_a_done_workflow_and_workflow_resume_runs_it(
    cli: Cli, requester: Requester, tmp_path: Path
) -> None:
    own = run_done_workflow(reports_tool(requester, tmp_path, "cli-reopen"))
    workflow_id, model = str(own.workflow_id), str(own.model_ids[0])

    # Declaring a done workflow's tasks done is refused; setting one back to G reopens it (F).
    refused = cli("update_task_status", "-w", workflow_id, "-t", model, "-s", "D")
    assert refused.returncode == 1
    assert f"error: workflow {workflow_id} is done" in refused.stderr
    reopened = cli.json("update_task_status", "-w", workflow_id, "--task_ids", model,
                        "--new_status", "G")  # fmt: skip
    assert (reopened["changed_task_ids"], reopened["workflow_status"]) == ([own.model_ids[0]], "F")
    (row,) = cli.json("workflow", "status", workflow_id)["workflows"]
    assert (row["status"], row["done"], row["pending"]) == ("F", 2, 1)
    # herdsman's own spelling does the same for another task.
    again = cli.ok("task", "update", "-t", str(own.model_ids[1]), "-w", workflow_id, "-s", "G")
    assert again.strip() == (
        f"tasks set to registering: 1 ({own.model_ids[1]}); workflow {workflow_id} is failed"
    )

    # Jobmon's workflow_resume: -c must name a cluster the workflow's tasks run on.
    wrong = cli("workflow_resume", "-w", workflow_id, "-c", "multiprocess")
    assert wrong.returncode == 1
    assert f"workflow {workflow_id} has no task on cluster 'multiprocess'" in wrong.stderr
    resumed = cli("workflow_resume", "-w", workflow_id, "-c", "sequential",
                  "--reset-running-jobs", "-t", "30", "--force-cleanup", "-o", "json")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"workflow_id": own.workflow_id, "status": "D"}
    assert resumed.stderr.startswith("note: `workflow_resume` takes Jobmon's options")
    (row,) = cli.json("workflow", "status", workflow_id)["workflows"]
    assert (row["status"], row["done"]) == ("D", 3)
    attempts = cli.json("task", "status", model)[0]["attempts"]
    assert [attempt["status"] for attempt in attempts] == ["D", "D"]


def test_resume_scales_the_requests_of_tasks_killed_for_resources(
    cli: Cli, requester: Requester, tmp_path: Path
) -> None:
    # On sequential the wrapper holds each command to its runtime request; this one outlasts
    # every request it gets here, so each attempt is killed for resources (Z).
    tool = reports_tool(requester, tmp_path, "cli-rescale")
    template = tool.get_task_template("long", "sleep {seconds}", node_args=["seconds"])
    workflow = tool.create_workflow(workflow_args="cli-rescale")
    task = template.create_task(
        seconds=30, max_attempts=1, compute_resources={"runtime": 2, "queue": "all.q"}
    )
    workflow.add_task(task)
    assert workflow.run() == "E"
    workflow_id, task_id = str(workflow.workflow_id), str(task.task_id)

    def requested_runtimes() -> list[tuple[str, float | None]]:
        attempts = cli.json("task", "status", task_id)[0]["attempts"]
        return [(attempt["status"], attempt["requested_runtime"]) for attempt in attempts]

    assert requested_runtimes() == [("Z", 2)]
    # The resume reads every task it scales in one request.
    killed = requester.get(
        f"/workflows/{workflow_id}/killed_for_resources", KilledForResourcesOut
    ).tasks
    assert [(found.task_id, found.status, found.requested_runtime) for found in killed] == [
        (task.task_id, "F", 2)
    ]
    # As after a resource kill in a run: runtime scaled by the default 0.5, ceil(2 * 1.5) = 3.
    scaled = cli("workflow", "resume", "-w", workflow_id, "--json")
    assert scaled.returncode == 1
    assert json.loads(scaled.stdout) == {"workflow_id": workflow.workflow_id, "status": "E"}
    assert requested_runtimes() == [("Z", 2), ("Z", 3)]
    # Jobmon's --use-original-resources (herdsman: --keep-resources) keeps the last request.
    kept = cli("workflow_resume", "-w", workflow_id, "--use-original-resources", "--json")
    assert kept.returncode == 1
    assert requested_runtimes() == [("Z", 2), ("Z", 3), ("Z", 3)]
