"""Lost workers, vanished jobs and run control, through the real server, distributor and pool."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import query_rows
from tests.support.tokens import run_token

from herdsman import Tool, resume_workflow_from_id
from herdsman.client.swarm.workflow_run import WorkflowRun
from herdsman.client.workflow import Workflow
from herdsman.core.errors import RunTimedOutError
from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.requester import Requester
from herdsman.core.schemas.worker import Usage
from herdsman.distributor.gateway import HttpDistributorGateway
from herdsman.distributor.plugin import SubmitBatch
from herdsman.distributor.service import DistributorConfig, DistributorService
from herdsman.plugins.sequential import SequentialPlugin

pytestmark = pytest.mark.e2e


@pytest.fixture
def tool(requester: Requester, request: pytest.FixtureRequest, fast_cluster: str) -> Tool:
    tool = Tool(f"life-{request.node.name}-{time.time()}", requester=requester)
    tool.set_default_cluster_name(fast_cluster)
    return tool


def attempts(database_url: str, task_id: int | None) -> list[tuple[str, str]]:
    """(status, error messages joined) of each instance of the task, oldest first."""
    found = query_rows(
        database_url,
        "SELECT ti.id, ti.status FROM task_instance ti WHERE ti.task_id = :t ORDER BY ti.id",
        t=task_id,
    )
    return [
        (
            status,
            " | ".join(
                row[0]
                for row in query_rows(
                    database_url,
                    "SELECT description FROM task_instance_error_log "
                    "WHERE task_instance_id = :i ORDER BY id",
                    i=instance_id,
                )
            ),
        )
        for instance_id, status in found
    ]


def instance_changes(database_url: str, workflow_id: int | None) -> list[str]:
    return [
        row[0]
        for row in query_rows(
            database_url,
            "SELECT status FROM status_change WHERE workflow_id = :w AND kind = 'I' ORDER BY seq",
            w=workflow_id,
        )
    ]


def _workflow(tool: Tool, name: str) -> Workflow:
    return tool.create_workflow(workflow_args=f"{tool.name}-{name}")


# --- a worker killed mid-task ----------------------------------------------------------------


def test_a_worker_killed_mid_task_is_triaged_and_its_task_retried(
    tool: Tool, server: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "first-attempt"
    # The first attempt kills its own worker (the command's parent) with SIGKILL, so nothing
    # reports its end; the second finds the marker and succeeds.
    template = tool.get_task_template(
        "victim",
        "if [ ! -e {marker} ]; then touch {marker}; kill -9 $PPID; sleep 30; fi",
        node_args=["marker"],
    )
    task = template.create_task(marker=str(marker), max_attempts=3)
    workflow = _workflow(tool, "killed")
    workflow.add_task(task)

    status = workflow.run()

    assert status == "D", attempts(server.database_url, task.task_id)

    (first_status, first_error), (second_status, _) = attempts(server.database_url, task.task_id)
    assert first_status == "U"
    assert "stopped reporting" in first_error
    assert second_status == "D"
    assert "T" in instance_changes(server.database_url, workflow.workflow_id)


# --- a job that vanishes before it starts ------------------------------------------------------


class ForgetfulPlugin:
    """The sequential plugin, except that the first job submitted is silently lost."""

    def __init__(self, inner: SequentialPlugin) -> None:
        self.inner = inner
        self.lost: set[str] = set()

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    def submit(self, batch: SubmitBatch) -> list[str]:
        if self.lost:
            return self.inner.submit(batch)
        first, *rest = batch.instances
        self.lost.add(f"lost-{first.task_instance_id}")
        kept = self.inner.submit(replace(batch, instances=tuple(rest))) if rest else []
        return [f"lost-{first.task_instance_id}", *kept]

    def submitted_or_running(self, distributor_ids: Iterable[str]) -> set[str]:
        return self.inner.submitted_or_running(distributor_ids)

    def terminate(self, distributor_ids: Iterable[str]) -> None:
        self.inner.terminate(distributor_ids)

    def remote_exit_info(self, distributor_id: str) -> tuple[ErrorStatus, str]:
        if distributor_id in self.lost:
            return "U", f"no record of job {distributor_id}"
        return self.inner.remote_exit_info(distributor_id)

    def remote_usage(self, distributor_id: str) -> Usage | None:
        return self.inner.remote_usage(distributor_id)

    def exit_code_status(self, exit_code: int) -> tuple[ErrorStatus, str]:
        return self.inner.exit_code_status(exit_code)


def test_a_job_that_vanishes_before_it_starts_is_failed_and_retried(
    tool: Tool, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = tool.get_task_template("echo", "echo {n}", node_args=["n"])
    tasks = template.create_tasks(n=[1, 2, 3])
    workflow = _workflow(tool, "vanish")
    workflow.add_tasks(tasks)
    workflow.bind()
    swarm = WorkflowRun.from_workflow(workflow)
    # The distributor and its workers act with the run's token, as a started run's do.
    token = run_token(swarm.workflow_run_id, workflow.workflow_id or 0)
    monkeypatch.setenv("HERDSMAN_TOKEN", token)
    with Requester(server.url, token=token) as requester:
        plugin = ForgetfulPlugin(SequentialPlugin(requester=requester, parameters={}))
        distributor = DistributorService(
            HttpDistributorGateway(requester),
            swarm.workflow_run_id,
            plugin,
            config=DistributorConfig(poll_interval=1.0, triage_interval=0.3),
            after_seq=swarm.feed_position,
        )
        thread = threading.Thread(target=distributor.run, daemon=True)
        thread.start()
        status = swarm.run(thread.is_alive, seconds_until_timeout=120)
        thread.join(60)

    assert status == "D"
    assert not thread.is_alive(), "the distributor did not leave after its run ended"
    lost_task = next(t for t in tasks if len(attempts(server.database_url, t.task_id)) == 2)
    (first_status, first_error), (second_status, _) = attempts(
        server.database_url, lost_task.task_id
    )
    assert first_status == "E"
    assert "never reported running" in first_error and "no record of job" in first_error
    assert second_status == "D"
    assert "X" in instance_changes(server.database_url, workflow.workflow_id)


# --- run control -------------------------------------------------------------------------------


def test_fail_fast_stops_scheduling_after_the_first_fatal_task(
    tool: Tool, server: Any, tmp_path: Path
) -> None:
    failing = tool.get_task_template("fails", "exit 3", node_args=[]).create_task(max_attempts=1)
    step = tool.get_task_template("step", "sleep 0.1; touch {out}", node_args=["out"])
    chain = step.create_tasks(out=[str(tmp_path / f"step{i}") for i in range(30)])
    for upstream, downstream in itertools.pairwise(chain):
        downstream.add_upstream(upstream)
    workflow = _workflow(tool, "fail-fast")
    workflow.add_tasks([failing, *chain])

    assert workflow.run(fail_fast=True) == "E"

    # The chain needs 30 hops of 0.1 s or more; the run ended at the fatal task, long before.
    assert failing.status == "F"
    assert sum(1 for i in range(30) if (tmp_path / f"step{i}").exists()) < 30


def test_the_timeout_ends_the_run_in_error_and_the_workflow_stays_resumable(
    tool: Tool, server: Any
) -> None:
    task = tool.get_task_template("sleeper", "sleep {s}", node_args=["s"]).create_task(s=60)
    workflow = _workflow(tool, "timeout")
    workflow.add_task(task)

    with pytest.raises(RunTimedOutError) as raised:
        workflow.run(seconds_until_timeout=2)
    assert raised.value.details["status"] == "E"

    # Ended by the timeout, not by the task: its one attempt never finished.
    assert [status for status, _ in attempts(server.database_url, task.task_id)] != ["D"]
    (run_status,) = query_rows(
        server.database_url,
        "SELECT status FROM workflow_run WHERE workflow_id = :w",
        w=workflow.workflow_id,
    )[0]
    assert run_status == "E"
    (workflow_status,) = query_rows(
        server.database_url, "SELECT status FROM workflow WHERE id = :w", w=workflow.workflow_id
    )[0]
    assert workflow_status == "F"


def test_a_limit_of_zero_pauses_launching_until_it_is_raised(
    tool: Tool, server: Any, tmp_path: Path
) -> None:
    step = tool.get_task_template("mark", "touch {out}", node_args=["out"])
    tasks = step.create_tasks(out=[str(tmp_path / f"m{i}") for i in range(6)])
    workflow = _workflow(tool, "pause")
    workflow.add_tasks(tasks)
    workflow.bind()
    workflow.set_max_concurrently_running(0)
    outcome: list[str] = []
    runner = threading.Thread(
        target=lambda: outcome.append(workflow.run(workflow_run_heartbeat_interval=0.5)),
        daemon=True,
    )
    runner.start()
    # Paused: the run is live, yet nothing is queued. (Queueing would happen in milliseconds.)
    deadline = time.monotonic() + 120
    while not query_rows(
        server.database_url,
        "SELECT id FROM workflow_run WHERE workflow_id = :w AND status = 'R'",
        w=workflow.workflow_id,
    ):
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.1)
    time.sleep(3)
    assert instance_changes(server.database_url, workflow.workflow_id) == []
    assert not any((tmp_path / f"m{i}").exists() for i in range(6))

    workflow.set_max_concurrently_running(2)
    runner.join(120)

    assert outcome == ["D"]
    assert all((tmp_path / f"m{i}").exists() for i in range(6))


# --- resource kills on the local cluster ------------------------------------------------------


def requests_of(database_url: str, task_id: int | None) -> list[dict[str, Any]]:
    """The resource request of each attempt of the task, oldest first."""
    return [
        json.loads(row[0])
        for row in query_rows(
            database_url,
            "SELECT r.requested FROM task_instance ti JOIN task_resources r "
            "ON r.id = ti.task_resources_id WHERE ti.task_id = :t ORDER BY ti.id",
            t=task_id,
        )
    ]


def test_a_task_over_its_memory_is_retried_with_scaled_memory(tool: Tool, server: Any) -> None:
    hog = tool.get_task_template(
        "hog",
        "python3 -c 'import time; b = bytearray({mib} * 2**20); time.sleep(1.5)'",
        node_args=["mib"],
    )
    task = hog.create_task(mib=300, compute_resources={"memory": "256M"}, max_attempts=3)
    workflow = _workflow(tool, "memory")
    workflow.add_task(task)

    assert workflow.run() == "D"

    (first, first_error), (second, _) = attempts(server.database_url, task.task_id)
    assert (first, second) == ("Z", "D")
    assert "memory request" in first_error
    memory = [request["memory"] for request in requests_of(server.database_url, task.task_id)]
    assert memory == [0.25, 0.375]  # 256 MiB, then scaled by the default 0.5


def test_a_task_over_its_runtime_is_retried_with_scaled_runtime(tool: Tool, server: Any) -> None:
    sleeper = tool.get_task_template("slow", "sleep {s}", node_args=["s"])
    task = sleeper.create_task(
        s=2.5, compute_resources={"runtime": 2}, resource_scales={"runtime": 1.0}, max_attempts=3
    )
    workflow = _workflow(tool, "runtime")
    workflow.add_task(task)

    assert workflow.run() == "D"

    (first, first_error), (second, _) = attempts(server.database_url, task.task_id)
    assert (first, second) == ("Z", "D")
    assert "runtime request" in first_error
    runtime = [request["runtime"] for request in requests_of(server.database_url, task.task_id)]
    assert runtime == [2, 4]


def test_a_failed_workflow_is_resumed_from_its_id_alone(
    tool: Tool, server: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "failed-once"
    flaky = tool.get_task_template(
        "flaky", "if [ ! -e {marker} ]; then touch {marker}; exit 1; fi", node_args=["marker"]
    ).create_task(marker=str(marker), max_attempts=1)
    after = tool.get_task_template("after", "touch {out}", node_args=["out"]).create_task(
        out=str(tmp_path / "after"), upstream_tasks=[flaky]
    )
    workflow = _workflow(tool, "resume-by-id")
    workflow.add_tasks([flaky, after])
    assert workflow.run() == "E"

    # No script: the DAG, its clusters and statuses come from the server.
    status = resume_workflow_from_id(workflow.workflow_id, requester=tool.requester)

    assert status == "D"
    assert (tmp_path / "after").exists()
    assert [s for s, _ in attempts(server.database_url, flaky.task_id)] == ["E", "D"]
