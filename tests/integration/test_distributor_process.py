"""A real distributor process, with each local plugin, against a real server on every engine."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas import swarm as sschemas
from herdsman.core.schemas.auth import TokenOut
from herdsman.core.schemas.queries import TaskDetailOut
from herdsman.distributor.process import DistributorProcess, DistributorStartError

if TYPE_CHECKING:
    from tests.conftest import RunningServer

pytestmark = pytest.mark.integration

START_TIMEOUT = 60.0


def _running_workflow(
    requester: Requester, cluster: str, name: str, commands: list[str]
) -> tuple[int, list[int]]:
    """A bound workflow whose run is R (as the swarm leaves it); its run id and task ids."""
    tool = Tool(name, requester=requester)
    tool.set_default_cluster_name(cluster)
    template = tool.get_task_template("step", "{command}", node_args=["command"])
    workflow = tool.create_workflow(workflow_args=name)
    tasks = [template.create_task(command=command) for command in commands]
    workflow.add_tasks(tasks)
    workflow_id = workflow.bind()
    run = requester.post(
        f"/workflows/{workflow_id}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut
    )
    for status in "IOR":
        _set_run_status(requester, run.workflow_run_id, status)
    return run.workflow_run_id, [task.task_id for task in tasks if task.task_id is not None]


def _set_run_status(requester: Requester, run_id: int, status: str) -> None:
    requester.put(
        f"/workflow_runs/{run_id}/status",
        sschemas.RunStatusIn(status=status),
        sschemas.RunStatusOut,
    )


def _queue(requester: Requester, run_id: int, task_ids: list[int]) -> None:
    requester.post(
        f"/workflow_runs/{run_id}/queue",
        sschemas.QueueTasksIn(task_ids=task_ids),
        sschemas.TaskStatusesOut,
    )


def _wait_for_tasks(
    requester: Requester, task_ids: list[int], statuses: set[str], timeout: float = 60.0
) -> list[TaskDetailOut]:
    deadline = time.monotonic() + timeout
    while True:
        details = [requester.get(f"/tasks/{task_id}", TaskDetailOut) for task_id in task_ids]
        if all(detail.status in statuses for detail in details):
            return details
        if time.monotonic() > deadline:
            shown = [(d.id, d.status) for d in details]
            raise AssertionError(f"tasks did not reach {statuses} within {timeout} s: {shown}")
        time.sleep(0.1)


def _token(requester: Requester, run_id: int) -> str:
    """The run's token, as a run's client gets it for its distributors."""
    return requester.post(f"/workflow_runs/{run_id}/token", None, TokenOut).token


def _wait_exit(distributor: DistributorProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while distributor.is_alive():
        assert time.monotonic() < deadline, "the distributor did not exit on its own"
        time.sleep(0.05)


@pytest.mark.parametrize("cluster", ["dummy", "sequential", "multiprocess"])
def test_the_distributor_runs_queued_tasks_and_exits_with_the_run(
    server: RunningServer,
    requester: Requester,
    tmp_path: Path,
    cluster: str,
    request: pytest.FixtureRequest,
) -> None:
    name = f"distributor-{cluster}-{server.engine}-{time.time()}"
    run_id, task_ids = _running_workflow(
        requester, cluster, name, ["echo one", "echo two", "echo three"]
    )
    log_file = tmp_path / "distributor.log"
    distributor = DistributorProcess(
        run_id,
        cluster,
        server.url,
        token=_token(requester, run_id),
        log_file=log_file,
        log_level="info",
    )
    distributor.start(timeout=START_TIMEOUT)
    try:
        assert distributor.is_alive()
        _queue(requester, run_id, task_ids)

        _wait_for_tasks(requester, task_ids, {"D"})

        _set_run_status(requester, run_id, "D")
        _wait_exit(distributor)
        assert distributor.stop() == 0
    finally:
        distributor.stop()
    log = log_file.read_text()
    assert "distributor_exiting" in log
    assert "reason=run_finished" in log


def test_a_failing_command_is_reported_with_its_output(
    server: RunningServer, requester: Requester
) -> None:
    name = f"distributor-failing-{server.engine}-{time.time()}"
    run_id, task_ids = _running_workflow(requester, "multiprocess", name, ["echo why >&2; exit 3"])
    with DistributorProcess(
        run_id, "multiprocess", server.url, token=_token(requester, run_id)
    ).start(timeout=START_TIMEOUT):
        _queue(requester, run_id, task_ids)
        # One attempt failed: the task waits in G for the swarm to retry it.
        (detail,) = _wait_for_tasks(requester, task_ids, {"G", "F"})
    assert detail.status in ("G", "F")


def test_stop_ends_the_distributor_and_its_commands(
    server: RunningServer, requester: Requester
) -> None:
    name = f"distributor-stop-{server.engine}-{time.time()}"
    run_id, task_ids = _running_workflow(requester, "multiprocess", name, ["sleep 60"])
    distributor = DistributorProcess(
        run_id, "multiprocess", server.url, token=_token(requester, run_id)
    ).start(timeout=START_TIMEOUT)
    _queue(requester, run_id, task_ids)
    _wait_for_tasks(requester, task_ids, {"R"})
    assert distributor.pid is not None
    tree = psutil.Process(distributor.pid).children(recursive=True)
    assert any(process.name() == "sleep" for process in tree)

    began = time.monotonic()
    exit_code = distributor.stop(timeout=20)

    assert time.monotonic() - began < 25
    assert exit_code == 0
    for process in tree:  # pool processes and the command
        assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    # The killed command was reported (the task goes back to G for the swarm to retry).
    _wait_for_tasks(requester, task_ids, {"G", "F"})


def test_a_killed_distributor_leaves_no_command_behind(
    server: RunningServer, requester: Requester
) -> None:
    name = f"distributor-killed-{server.engine}-{time.time()}"
    run_id, task_ids = _running_workflow(requester, "multiprocess", name, ["sleep 60"])
    distributor = DistributorProcess(
        run_id, "multiprocess", server.url, token=_token(requester, run_id)
    ).start(timeout=START_TIMEOUT)
    try:
        _queue(requester, run_id, task_ids)
        _wait_for_tasks(requester, task_ids, {"R"})
        assert distributor.pid is not None
        tree = psutil.Process(distributor.pid).children(recursive=True)
        (command,) = [process for process in tree if process.name() == "sleep"]

        os.kill(distributor.pid, signal.SIGKILL)

        # The pool process sees its parent die and kills its command (SIGTERM, 10 s grace).
        deadline = time.monotonic() + 20
        while command.is_running() and command.status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the command outlived its distributor"
            time.sleep(0.1)
        # ... and reports it, so the task is retried without waiting for triage.
        _wait_for_tasks(requester, task_ids, {"G", "F"})
    finally:
        distributor.stop()


def test_an_unknown_cluster_fails_the_start_with_the_log(
    server: RunningServer, tmp_path: Path
) -> None:
    log_file = tmp_path / "distributor.log"
    distributor = DistributorProcess(
        1, "no-such-cluster", server.url, log_file=log_file, log_level="info"
    )

    with pytest.raises(DistributorStartError) as caught:
        distributor.start(timeout=START_TIMEOUT)

    message = str(caught.value)
    assert "exited with status 1 before it was ready" in message
    assert "no-such-cluster" in message  # the server's NotFound, from the log tail
    assert not distributor.is_alive()


def test_a_silent_distributor_times_out(server: RunningServer, tmp_path: Path) -> None:
    # A tiny timeout: the interpreter cannot even import herdsman in time.
    distributor = DistributorProcess(1, "dummy", server.url, log_file=tmp_path / "d.log")

    with pytest.raises(DistributorStartError, match="was not ready within"):
        distributor.start(timeout=0.05)

    assert not distributor.is_alive()
