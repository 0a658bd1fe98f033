"""Resuming a workflow while an earlier run still holds it: cold, hot, and after a lost swarm.

The earlier run is a real user script in its own process; the resume runs in the test, as a
user would run the same script again with ``resume=True``.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil
import pytest
from tests.conftest import kill_processes_mentioning
from tests.e2e.conftest import query_rows

pytestmark = pytest.mark.e2e

FLOW = '''
"""Three tasks: quick; long (sleeps, unless long.done exists); after, which needs long."""
import sys
from pathlib import Path

from herdsman import Tool


def build(tool_name, cluster, workdir):
    tool = Tool(tool_name)
    tool.set_default_cluster_name(cluster)
    quick = tool.get_task_template("quick", "echo done >> {log}", node_args=["log"])
    long = tool.get_task_template(
        "long",
        "if [ -e {dir}/long.done ]; then echo again >> {dir}/long.log; exit 0; fi; "
        "echo $$ >> {dir}/long.pids; sleep $(cat {dir}/long.seconds); "
        "echo finished >> {dir}/long.log",
        node_args=["dir"],
    )
    after = tool.get_task_template("after", "echo done >> {log}", node_args=["log"])
    long_task = long.create_task(dir=workdir)
    tasks = [
        quick.create_task(log=f"{workdir}/quick.log"),
        long_task,
        after.create_task(log=f"{workdir}/after.log", upstream_tasks=[long_task]),
    ]
    workflow = tool.create_workflow(workflow_args=tool_name)
    workflow.add_tasks(tasks)
    return workflow


if __name__ == "__main__":
    tool_name, cluster, workdir = sys.argv[1:4]
    status = build(tool_name, cluster, workdir).run(workflow_run_heartbeat_interval=1.0)
    Path(workdir, "first-run.status").write_text(status)
'''


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


class FirstRun:
    """The user's script, running the workflow's first run in a process of its own."""

    def __init__(self, processes: Any, server: Any, cluster: str, workdir: Path) -> None:
        self.server = server
        self.workdir = workdir
        self.tool_name = f"resume-{workdir.name}-{time.time()}"
        self.cluster = cluster
        script = workdir / "flow.py"
        script.write_text(FLOW)
        env = {**os.environ, "HERDSMAN_SERVER_URL": server.url}
        self.process: subprocess.Popen[bytes] = processes.spawn(
            [sys.executable, str(script), self.tool_name, cluster, str(workdir)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=(workdir / "first-run.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def flow(self) -> ModuleType:
        spec = importlib.util.spec_from_file_location("flow", self.workdir / "flow.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def wait_until_long_runs(self) -> int:
        pids = self.workdir / "long.pids"
        _wait_for(lambda: pids.exists() and bool(_lines(pids)), "the long task to start")
        return int(_lines(pids)[0])

    def wait_until_the_server_knows_long_runs(self) -> None:
        """A pool starts a command before the server records it R; a hot resume keeps only
        what the server knows to be running, so a test of it must wait for that too."""

        def recorded() -> bool:
            rows = query_rows(
                self.server.database_url,
                "SELECT ti.status FROM task_instance ti JOIN task t ON t.id = ti.task_id "
                "WHERE t.command LIKE :pattern",
                pattern=f"%{self.workdir}/long.pids%",
            )
            return [row[0] for row in rows] == ["R"]

        _wait_for(recorded, "the server to record the long task running")

    def resume(self, **options: Any) -> tuple[str, Any]:
        workflow = self.flow().build(self.tool_name, self.cluster, str(self.workdir))
        return workflow.run(resume=True, resume_timeout=60, **options), workflow

    def runs(self, workflow_id: int) -> list[str]:
        return [
            row[0]
            for row in query_rows(
                self.server.database_url,
                "SELECT status FROM workflow_run WHERE workflow_id = :w ORDER BY id",
                w=workflow_id,
            )
        ]

    def instances(self, task_id: int) -> list[tuple[int, str]]:
        return [
            (row[0], row[1])
            for row in query_rows(
                self.server.database_url,
                "SELECT workflow_run_id, status FROM task_instance WHERE task_id = :t ORDER BY id",
                t=task_id,
            )
        ]


@pytest.fixture
def first_run(
    processes: Any,
    server: Any,
    fast_cluster: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[FirstRun]:
    monkeypatch.setenv("HERDSMAN_SERVER_URL", server.url)
    run = FirstRun(processes, server, fast_cluster, tmp_path)
    try:
        yield run
    finally:
        processes.stop(run.process)
        # A distributor outliving its killed swarm names the test's own cluster.
        kill_processes_mentioning(fast_cluster)


def test_a_cold_resume_kills_the_running_jobs_and_reruns_only_unfinished_tasks(
    first_run: FirstRun,
) -> None:
    (first_run.workdir / "long.seconds").write_text("120")
    old_pid = first_run.wait_until_long_runs()
    (first_run.workdir / "long.done").touch()  # the rerun of long returns at once

    status, workflow = first_run.resume()

    assert status == "D"
    assert first_run.process.wait(60) == 0
    assert (first_run.workdir / "first-run.status").read_text() == "T"
    assert first_run.runs(workflow.workflow_id) == ["T", "D"]
    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == "zombie"
    quick, long, _ = workflow.tasks.values()
    # The old attempt was killed on request (K, confirmed: F); the new run ran long again.
    assert [status for _, status in first_run.instances(long.task_id)] == ["F", "D"]
    assert len(first_run.instances(quick.task_id)) == 1  # DONE before: never rerun
    assert _lines(first_run.workdir / "quick.log") == ["done"]
    assert _lines(first_run.workdir / "long.log") == ["again"]
    assert _lines(first_run.workdir / "after.log") == ["done"]


def test_a_hot_resume_lets_running_jobs_finish_and_counts_them(first_run: FirstRun) -> None:
    (first_run.workdir / "long.seconds").write_text("4")
    first_run.wait_until_long_runs()
    first_run.wait_until_the_server_knows_long_runs()

    status, workflow = first_run.resume(reset_running_jobs=False)

    assert status == "D"
    assert first_run.process.wait(60) == 0
    assert (first_run.workdir / "first-run.status").read_text() == "T"
    _, long, _ = workflow.tasks.values()
    # long ran once, in the first run, and its result let the new run go on to "after".
    ((run_of_long, long_status),) = first_run.instances(long.task_id)
    first_run_id = min(
        row[0]
        for row in query_rows(
            first_run.server.database_url,
            "SELECT id FROM workflow_run WHERE workflow_id = :w",
            w=workflow.workflow_id,
        )
    )
    assert (run_of_long, long_status) == (first_run_id, "D")
    assert first_run.runs(workflow.workflow_id)[0] == "T"
    assert _lines(first_run.workdir / "long.log") == ["finished"]
    assert len(_lines(first_run.workdir / "long.pids")) == 1
    assert _lines(first_run.workdir / "after.log") == ["done"]


def test_a_killed_swarm_is_reaped_and_a_resume_finishes_the_workflow(
    first_run: FirstRun,
) -> None:
    (first_run.workdir / "long.seconds").write_text("120")
    first_run.wait_until_long_runs()
    first_run.process.send_signal(signal.SIGKILL)
    first_run.process.wait(30)
    workflow = first_run.flow().build(
        first_run.tool_name, first_run.cluster, str(first_run.workdir)
    )
    workflow.bind()
    # The swarm beat every second; the reaper ends its run within seconds of the last beat.
    _wait_for(lambda: first_run.runs(workflow.workflow_id) == ["E"], "the reaper to end the run")
    (first_run.workdir / "long.done").touch()

    status, workflow = first_run.resume()

    assert status == "D"
    assert first_run.runs(workflow.workflow_id) == ["T", "D"]
    unfinished = query_rows(
        first_run.server.database_url,
        "SELECT ti.id, ti.status FROM task_instance ti JOIN task t ON t.id = ti.task_id "
        "WHERE t.workflow_id = :w AND ti.status NOT IN ('D', 'E', 'Z', 'U', 'W', 'F')",
        w=workflow.workflow_id,
    )
    assert unfinished == []
