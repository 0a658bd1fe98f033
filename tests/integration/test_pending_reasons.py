"""The cluster's reason a queued job waits, from a poll of Slurm to the task page.

A Slurm plugin over a fake ``squeue`` (the real plugin code, only the commands' output is
made up) is polled by the real distributor service, which reports through the real HTTP
route; the task page then says, in words, why the cluster has yet to start the job.
"""

from __future__ import annotations

import time

import httpx
import pytest
from tests.conftest import RunningServer
from tests.support.tokens import admin_token, run_token
from tests.unit.plugins.slurm.test_plugin import Clock, FakeSlurm

from herdsman import Tool
from herdsman.core.errors import PermissionDeniedError
from herdsman.core.requester import Requester
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import swarm as sschemas
from herdsman.distributor.gateway import HttpDistributorGateway
from herdsman.distributor.service import DistributorService
from herdsman.plugins.slurm.commands import SlurmCommands, SlurmCommandsConfig
from herdsman.plugins.slurm.plugin import SlurmPlugin
from herdsman.server.gui.session import COOKIE

pytestmark = pytest.mark.integration


def launched_task(requester: Requester, name: str) -> tuple[int, int, int]:
    """A one-task workflow whose instance was claimed; (run id, task id, instance id)."""
    tool = Tool(name, requester=requester)
    tool.set_default_cluster_name("multiprocess")
    template = tool.get_task_template("step", "echo {n}", node_args=["n"])
    workflow = tool.create_workflow(workflow_args=name)
    task = template.create_task(n=1)
    workflow.add_tasks([task])
    workflow_id = workflow.bind()
    run = requester.post(
        f"/workflows/{workflow_id}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut
    )
    run_id = run.workflow_run_id
    for status in "IOR":
        requester.put(
            f"/workflow_runs/{run_id}/status",
            sschemas.RunStatusIn(status=status),
            sschemas.RunStatusOut,
        )
    assert task.task_id is not None
    requester.post(
        f"/workflow_runs/{run_id}/queue",
        sschemas.QueueTasksIn(task_ids=[task.task_id]),
        sschemas.TaskStatusesOut,
    )
    claimed = requester.post(
        f"/workflow_runs/{run_id}/claim", dschemas.ClaimIn(), dschemas.ClaimedOut
    )
    (instance,) = claimed.instances
    return run_id, task.task_id, instance.task_instance_id


def why(server: RunningServer, task_id: int) -> str:
    with httpx.Client(base_url=server.url, timeout=60) as browser:
        browser.cookies.set(COOKIE, admin_token())
        answer = browser.get(f"/tasks/{task_id}")
        assert answer.status_code == 200, answer.text[-1000:]
        return answer.text


def test_slurms_pending_reason_reaches_the_task_page(
    server: RunningServer, requester: Requester
) -> None:
    run_id, task_id, instance_id = launched_task(requester, f"pending-{time.time_ns()}")
    slurm, clock = FakeSlurm(), Clock()
    plugin = SlurmPlugin(
        requester=requester,
        parameters={"squeue_interval": 10},
        commands=SlurmCommands(SlurmCommandsConfig(), clock=clock, runner=slurm),
        clock=clock,
    )
    gateway = HttpDistributorGateway(requester)
    gateway.launched([dschemas.LaunchedItem(task_instance_id=instance_id, distributor_id="101_0")])
    assert "the cluster has yet to start its job" in why(server, task_id)

    slurm.queue = "101_0|PENDING|Priority\n"
    DistributorService(gateway, run_id, plugin).triage()
    page = why(server, task_id)
    assert "queued in the cluster: Slurm says (Priority): jobs of higher priority" in page

    # The next poll replaces the reason; a job that starts leaves none.
    clock.now += 60
    slurm.queue = "101_0|PENDING|QOSMaxJobsPerUserLimit\n"
    service = DistributorService(gateway, run_id, plugin)
    service.triage()
    assert "Slurm says (QOSMaxJobsPerUserLimit)" in why(server, task_id)
    clock.now += 60
    slurm.queue = "101_0|RUNNING|None\n"
    service.triage()
    page = why(server, task_id)
    assert "Slurm says" not in page and "the cluster has yet to start its job" in page


def test_a_run_reports_reasons_of_its_own_instances_only(
    server: RunningServer, requester: Requester
) -> None:
    mine, _, _ = launched_task(requester, f"pending-mine-{time.time_ns()}")
    _, _, theirs = launched_task(requester, f"pending-theirs-{time.time_ns()}")
    # Not even an admin may pin another run's instance on this run.
    with pytest.raises(PermissionDeniedError):
        HttpDistributorGateway(requester).pending_reasons(mine, "Slurm", {theirs: "Priority"})
    # Another run's token may not report on this run.
    other_token = run_token(mine + 10**6, 1)
    with (
        Requester(server.url, token=other_token, timeout=60, retries=1) as other,
        pytest.raises(PermissionDeniedError),
    ):
        HttpDistributorGateway(other).pending_reasons(mine, "Slurm", {})
