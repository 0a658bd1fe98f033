"""Resume after the script changed: fixed commands, new settings, new tasks, changed templates;
and a workflow limit raised while the workflow runs.

Every run is real: the server, the database, a multiprocess distributor and its workers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from tests.e2e.conftest import create_cluster, query_rows

from herdsman import Tool
from herdsman.client.workflow import Workflow
from herdsman.core.errors import WorkflowAlreadyExists
from herdsman.core.limits import UNLIMITED
from herdsman.core.requester import Requester
from herdsman.server.database import models

pytestmark = pytest.mark.e2e


@pytest.fixture
def tool_name(request: pytest.FixtureRequest) -> str:
    return f"resume-changes-{request.node.name}-{time.time_ns()}"


def _tool(name: str, requester: Requester) -> Tool:
    tool = Tool(name, requester=requester)
    tool.set_default_cluster_name("multiprocess")
    return tool


def _attempts(database_url: str, workflow_id: int) -> dict[str, int]:
    """Task name -> number of attempts (task instances) over all runs."""
    rows = query_rows(
        database_url,
        "SELECT t.name, COUNT(ti.id) FROM task t LEFT JOIN task_instance ti ON ti.task_id = t.id "
        "WHERE t.workflow_id = :w GROUP BY t.name",
        w=workflow_id,
    )
    return {name: count for name, count in rows}


# --- a fixed op arg, new max_attempts and resources ----------------------------------------------


def _fixable(tool: Tool, workdir: Path, script: str, **settings: Any) -> Workflow:
    work = tool.get_task_template(
        "work",
        "sh {script} {n} {dir}",
        node_args=["n"],
        op_args=["script", "dir"],
    )
    task = work.create_task(
        n=1, script=str(workdir / script), dir=str(workdir), name="work_1", **settings
    )
    workflow = tool.create_workflow(workflow_args=tool.name)
    workflow.add_tasks([task])
    return workflow


def test_a_resume_runs_the_fixed_command_with_the_new_settings(
    tool_name: str, requester: Requester, server: Any, tmp_path: Path
) -> None:
    (tmp_path / "bad.sh").write_text('echo "bad $1" >> "$2/bad.log"; exit 3\n')
    (tmp_path / "good.sh").write_text('echo "good $1" >> "$2/good.log"\n')
    first = _fixable(
        _tool(tool_name, requester),
        tmp_path,
        "bad.sh",
        max_attempts=1,
        compute_resources={"memory": 1},
    )
    assert first.run(progress=False) == "E"
    assert (tmp_path / "bad.log").read_text().split("\n")[0] == "bad 1"

    fixed = _fixable(
        _tool(tool_name, requester),
        tmp_path,
        "good.sh",
        max_attempts=4,
        compute_resources={"memory": 2},
    )
    assert fixed.run(resume=True, progress=False) == "D"

    assert fixed.workflow_id == first.workflow_id
    assert (tmp_path / "good.log").read_text() == "good 1\n"
    assert (tmp_path / "bad.log").read_text() == "bad 1\n"  # the old command did not run again
    ((command, max_attempts, requested),) = query_rows(
        server.database_url,
        "SELECT t.command, t.max_attempts, r.requested FROM task t "
        "JOIN task_resources r ON r.id = t.task_resources_id WHERE t.workflow_id = :w",
        w=fixed.workflow_id,
    )
    assert "good.sh" in command
    assert max_attempts == 4
    assert '"memory": 2' in requested
    # The instance of the resume ran the new command with the new request.
    ((instance_resources,),) = query_rows(
        server.database_url,
        "SELECT r.requested FROM task_instance ti JOIN task t ON t.id = ti.task_id "
        "JOIN task_resources r ON r.id = ti.task_resources_id "
        "WHERE t.workflow_id = :w AND ti.status = 'D'",
        w=fixed.workflow_id,
    )
    assert '"memory": 2' in instance_resources


# --- incremental resume: a changed template and an added task -------------------------------------


def _study(tool: Tool, workdir: Path, *, stage_version: int, extra: bool) -> Workflow:
    """53 tasks: prep 0-19, stage i after prep i, clean k after prep k (0-9); report 0 after
    every stage, report 1 after every clean, report 2 after report 1. ``extra`` adds a task
    after clean 0; ``stage_version`` 2 changes the stage template's command."""
    log = str(workdir)

    def template(name: str, command: str, node_args: list[str]) -> Any:
        return tool.get_task_template(name, command, node_args=node_args, op_args=["log"])

    prep = template("prep", "echo prep {i} >> {log}/prep.log", ["i"])
    version = "" if stage_version == 1 else " v2"
    stage = template("stage", f"echo stage {{i}}{version} >> {{log}}/stage.log", ["i"])
    clean = template("clean", "echo clean {k} >> {log}/clean.log", ["k"])
    report = template("report", "echo report {r} >> {log}/report.log", ["r"])
    preps = [prep.create_task(i=i, log=log, name=f"prep_{i}") for i in range(20)]
    stages = [
        stage.create_task(i=i, log=log, name=f"stage_{i}", upstream_tasks=[preps[i]])
        for i in range(20)
    ]
    cleans = [
        clean.create_task(k=k, log=log, name=f"clean_{k}", upstream_tasks=[preps[k]])
        for k in range(10)
    ]
    report0 = report.create_task(r=0, log=log, name="report_0", upstream_tasks=stages)
    report1 = report.create_task(r=1, log=log, name="report_1", upstream_tasks=cleans)
    report2 = report.create_task(r=2, log=log, name="report_2", upstream_tasks=[report1])
    tasks = [*preps, *stages, *cleans, report0, report1, report2]
    if extra:
        later = template("extra", "echo extra >> {log}/extra.log", [])
        tasks.append(later.create_task(log=log, name="extra", upstream_tasks=[cleans[0]]))
    workflow = tool.create_workflow(workflow_args=tool.name)
    workflow.add_tasks(tasks)
    return workflow


def test_an_incremental_resume_reruns_only_changed_and_added_tasks_and_their_downstream(
    tool_name: str,
    requester: Requester,
    server: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = _study(_tool(tool_name, requester), tmp_path, stage_version=1, extra=False)
    assert len(first.tasks) == 53
    assert first.run(progress=False) == "D"
    before = _attempts(server.database_url, first.workflow_id or 0)
    assert sorted(set(before.values())) == [1]

    changed = _study(_tool(tool_name, requester), tmp_path, stage_version=2, extra=True)
    with pytest.raises(WorkflowAlreadyExists, match="run it with run\\(resume=True\\)"):
        changed.bind()
    plan = changed.plan()
    assert plan.counts == {
        "reuse": 32,
        "new": 1,
        "changed": 20,
        "unfinished": 0,
        "downstream": 1,
    }
    assert plan.workflow_id == first.workflow_id

    capsys.readouterr()
    assert changed.run(resume=True, progress=False) == "D"
    # The run says what it keeps before it starts.
    said = capsys.readouterr().err
    assert "resume: 32 of 54 tasks are done and kept; 22 to run" in said, said

    assert changed.workflow_id == first.workflow_id
    after = _attempts(server.database_url, changed.workflow_id or 0)
    rerun = {name for name, count in after.items() if count != before.get(name, 0)}
    stage_names = {f"stage_{i}" for i in range(20)}
    assert rerun == stage_names | {"extra", "report_0"}
    assert all(after[name] == 2 for name in stage_names | {"report_0"})
    assert after["extra"] == 1
    assert len(after) == 54
    # What ran is what the plan said: 22 reran or were new, 32 were reused.
    assert len(rerun) == plan.counts["changed"] + plan.counts["new"] + plan.counts["downstream"]
    assert (tmp_path / "prep.log").read_text().count("\n") == 20
    assert (tmp_path / "stage.log").read_text().count("v2") == 20
    assert (tmp_path / "report.log").read_text().split("\n").count("report 0") == 2
    assert (tmp_path / "report.log").read_text().split("\n").count("report 1") == 1

    # Nothing changed since: a resume has nothing to run, and the plan says so.
    again = _study(_tool(tool_name, requester), tmp_path, stage_version=2, extra=True)
    assert again.plan().counts["reuse"] == 54


# --- a workflow limit raised while the workflow runs --------------------------------------------

LIMITED = """
import sys
from herdsman import Tool

tool_name, workdir, cluster = sys.argv[1:4]
tool = Tool(tool_name)
tool.set_default_cluster_name(cluster)
wait = tool.get_task_template(
    "wait",
    "touch {dir}/started.{i}; while [ ! -e {dir}/go ]; do sleep 0.05; done",
    node_args=["i"],
    op_args=["dir"],
)
workflow = tool.create_workflow(workflow_args=tool_name, max_concurrently_running=2)
workflow.add_tasks(wait.create_tasks(i=range(8), dir=workdir))
# A heartbeat far apart: the new limit can only arrive through the change feed.
print(workflow.run(progress=False, workflow_run_heartbeat_interval=600.0))
"""


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def test_raising_the_workflow_limit_while_it_runs_takes_effect_at_once(
    tool_name: str, processes: Any, server: Any, tmp_path: Path
) -> None:
    cluster = create_cluster(server.database_url, "multiprocess", {"workers": 8})
    script = tmp_path / "limited.py"
    script.write_text(LIMITED)
    env = {**os.environ, "HERDSMAN_SERVER_URL": server.url}
    output = tmp_path / "limited.out"
    process: subprocess.Popen[bytes] = processes.spawn(
        [sys.executable, str(script), tool_name, str(tmp_path), cluster],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output.open("ab"),
        stderr=subprocess.STDOUT,
    )

    def started() -> int:
        return len(list(tmp_path.glob("started.*")))

    _wait_for(lambda: started() == 2, "two tasks to start")
    ((workflow_id,),) = query_rows(
        server.database_url, "SELECT id FROM workflow WHERE workflow_args = :a", a=tool_name
    )
    assert started() == 2
    herdsman = str(Path(sys.executable).parent / "herdsman")
    raised = subprocess.run(
        [herdsman, "workflow", "concurrency", "-w", str(workflow_id), "-m", "6"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "at most 6 tasks of the workflow at once" in raised.stdout

    _wait_for(lambda: started() == 6, "six tasks to run at once")
    running = query_rows(
        server.database_url,
        "SELECT COUNT(*) FROM task WHERE workflow_id = :w AND status = 'R'",
        w=workflow_id,
    )
    assert started() == 6
    (tmp_path / "go").touch()
    assert process.wait(120) == 0, output.read_text()
    assert output.read_text().strip().splitlines()[-1] == "D"
    assert running[0][0] <= 6
    engine = create_engine(server.database_url)
    try:
        with engine.connect() as connection:
            arrays = connection.execute(
                select(models.Array.max_concurrently_running).where(
                    models.Array.workflow_id == workflow_id
                )
            ).all()
    finally:
        engine.dispose()
    assert [row[0] for row in arrays] == [UNLIMITED]


# --- herdsman workflow plan ----------------------------------------------------------------------

PLANNED = """
import sys
from herdsman import Tool


def build(tool_name, version):
    tool = Tool(tool_name)
    tool.set_default_cluster_name("multiprocess")
    step = tool.get_task_template("step", "echo {label} " + version, node_args=["label"])
    a = step.create_task(label="a", name="a")
    b = step.create_task(label="b", name="b", upstream_tasks=[a])
    c = step.create_task(label="c", name="c", upstream_tasks=[b])
    workflow = tool.create_workflow(workflow_args=tool_name)
    workflow.add_tasks([a, b, c])
    return workflow


if __name__ == "__main__":
    print("building")
    build(sys.argv[1], sys.argv[2]).run(resume=True)
    print("ran")  # never reached under `herdsman workflow plan`
"""


def test_workflow_plan_says_what_a_resume_would_do_and_runs_nothing(
    tool_name: str, server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERDSMAN_SERVER_URL", server.url)
    script = tmp_path / "planned.py"
    script.write_text(PLANNED)
    namespace: dict[str, Any] = {}
    exec(compile(PLANNED, str(script), "exec"), namespace)
    first = namespace["build"](tool_name, "v1")
    assert first.run(progress=False) == "D"
    herdsman = str(Path(sys.executable).parent / "herdsman")
    env = {**os.environ, "HERDSMAN_SERVER_URL": server.url}

    def cli(*arguments: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [herdsman, "workflow", "plan", *arguments],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )

    planned = json.loads(cli("--json", str(script), tool_name, "v2").stdout)
    text = cli(str(script), tool_name, "v2")
    stored = cli("-w", str(first.workflow_id)).stdout

    assert planned["workflow_id"] == first.workflow_id
    assert planned["counts"] == {
        "reuse": 0,
        "new": 0,
        "changed": 3,
        "unfinished": 0,
        "downstream": 0,
    }
    assert [task["old_command"] for task in planned["tasks"]] == [
        "echo a v1",
        "echo b v1",
        "echo c v1",
    ]
    assert "building" in text.stderr and "ran" not in text.stderr
    assert f"resume plan for workflow {first.workflow_id}: 3 of 3 tasks to run" in text.stdout
    assert "3 to run because their command changed" in text.stdout
    assert "changed    a: 'echo a v1' -> 'echo a v2'" in text.stdout
    assert f"resume plan for workflow {first.workflow_id}: 0 of 3 tasks to run" in stored
    assert "3 reused (done)" in stored
    # Nothing was bound or run: the stored commands are the first run's.
    commands = query_rows(
        server.database_url,
        "SELECT command FROM task WHERE workflow_id = :w ORDER BY id",
        w=first.workflow_id,
    )
    assert [row[0] for row in commands] == ["echo a v1", "echo b v1", "echo c v1"]
