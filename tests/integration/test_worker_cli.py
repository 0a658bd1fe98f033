"""``herdsman-worker`` against a real server: reports, output files, errors, version checks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import create_engine, text
from tests.support.tokens import admin_token

import herdsman
from herdsman import Tool
from herdsman.core.requester import Requester
from herdsman.core.schemas import distributor as dschemas
from herdsman.core.schemas import swarm as sschemas
from herdsman.core.schemas.queries import TaskDetailOut, WorkflowErrorsOut
from herdsman.worker.wrapper import WRAPPER_ERROR_EXIT_CODE, run_task_instance

if TYPE_CHECKING:
    from tests.conftest import RunningServer

pytestmark = pytest.mark.integration


def claimed_instance(
    requester: Requester, name: str, command: str, *, max_attempts: int = 1, **resources: object
) -> tuple[int, dschemas.ClaimedInstance]:
    """A one-task workflow whose instance is claimed (I), as a distributor leaves it.

    ``resources`` are the task's compute resources on the ``multiprocess`` cluster.
    """
    tool = Tool(name, requester=requester)
    tool.set_default_cluster_name("multiprocess")
    template = tool.get_task_template("step", "{command}", node_args=["command"])
    workflow = tool.create_workflow(workflow_args=name)
    task = template.create_task(
        command=command, max_attempts=max_attempts, compute_resources=resources
    )
    workflow.add_tasks([task])
    workflow_id = workflow.bind()
    run = requester.post(
        f"/workflows/{workflow_id}/runs", sschemas.WorkflowRunIn(), sschemas.WorkflowRunOut
    )
    for status in "IOR":
        requester.put(
            f"/workflow_runs/{run.workflow_run_id}/status",
            sschemas.RunStatusIn(status=status),
            sschemas.RunStatusOut,
        )
    assert task.task_id is not None
    requester.post(
        f"/workflow_runs/{run.workflow_run_id}/queue",
        sschemas.QueueTasksIn(task_ids=[task.task_id]),
        sschemas.TaskStatusesOut,
    )
    claimed = requester.post(
        f"/workflow_runs/{run.workflow_run_id}/claim", dschemas.ClaimIn(), dschemas.ClaimedOut
    )
    (instance,) = claimed.instances
    return workflow_id, instance


# The worker reports on attempts, which a run's token or an admin's may do.
WORKER_ENV = {**os.environ, "HERDSMAN_TOKEN": admin_token()}


def run_worker(
    server: RunningServer, task_instance_id: int, *options: str
) -> subprocess.CompletedProcess[str]:
    """``herdsman-worker`` for the instance, with more command-line ``options``."""
    return subprocess.run(
        [
            str(Path(sys.executable).parent / "herdsman-worker"),
            "--task-instance-id",
            str(task_instance_id),
            "--server-url",
            server.url,
            "--distributor-id",
            f"job{task_instance_id}",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=WORKER_ENV,
    )


def test_the_worker_runs_the_command_and_reports_done(
    server: RunningServer, requester: Requester, tmp_path: Path
) -> None:
    out_dir = tmp_path / "out"
    _, instance = claimed_instance(
        requester,
        f"worker-done-{server.engine}-{time.time()}",
        'echo "id=$HERDSMAN_TASK_INSTANCE_ID"',
        stdout=str(out_dir),
    )

    done = run_worker(server, instance.task_instance_id)

    assert done.returncode == 0, done.stderr
    detail = requester.get(f"/tasks/{instance.task_id}", TaskDetailOut)
    assert detail.status == "D"
    output = out_dir / f"{instance.name}.ojob{instance.task_instance_id}"
    assert output.read_text() == f"id={instance.task_instance_id}\n"


def test_a_failing_command_is_recorded_with_its_exit_code_and_tails(
    server: RunningServer, requester: Requester
) -> None:
    workflow_id, instance = claimed_instance(
        requester, f"worker-error-{server.engine}-{time.time()}", "echo bad >&2; exit 3"
    )

    done = run_worker(server, instance.task_instance_id)

    assert done.returncode == 3
    errors = requester.get(f"/workflows/{workflow_id}/errors", WorkflowErrorsOut)
    (failed,) = errors.tasks  # one attempt allowed: the task is fatal
    assert failed.errors[0].description == "exit code 3"
    assert failed.errors[0].exit_code == 3
    assert failed.stderr_tail == "bad\n"


def test_a_replayed_worker_does_not_run_the_command_again(
    server: RunningServer, requester: Requester, tmp_path: Path
) -> None:
    counter = tmp_path / "runs"
    _, instance = claimed_instance(
        requester, f"worker-replay-{server.engine}-{time.time()}", f"echo x >> {counter}"
    )

    assert run_worker(server, instance.task_instance_id).returncode == 0
    assert run_worker(server, instance.task_instance_id).returncode == 0  # told D: not run

    assert counter.read_text() == "x\n"


def test_a_version_mismatch_is_refused_once(
    server: RunningServer, requester: Requester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "ran"
    _, instance = claimed_instance(
        requester, f"worker-version-{server.engine}-{time.time()}", f"touch {marker}"
    )
    monkeypatch.setattr(herdsman, "__version__", "0.0.0-old")

    exit_code = run_task_instance(requester, instance.task_instance_id)

    assert exit_code == WRAPPER_ERROR_EXIT_CODE
    assert not marker.exists()
    assert requester.get(f"/tasks/{instance.task_id}", TaskDetailOut).status == "I"


# Commands the wrapper cannot start, written into the database behind the server's back: the
# server refuses both when they are bound, but a database written by an older server may hold
# them. PostgreSQL cannot store a NUL at all.
UNSTARTABLE_COMMANDS = {
    "nul": ("echo a\x00b", "ValueError: embedded null byte"),
    "too long for the kernel": ("echo " + "x" * 200_000, "Argument list too long"),
}


@pytest.mark.parametrize("case", list(UNSTARTABLE_COMMANDS))
def test_a_command_that_cannot_start_is_an_error_of_the_attempt(
    server: RunningServer, requester: Requester, case: str
) -> None:
    if case == "nul" and server.engine == "postgresql":
        pytest.skip("PostgreSQL cannot store a NUL character, so no such command exists there")
    command, reason = UNSTARTABLE_COMMANDS[case]
    workflow_id, instance = claimed_instance(
        requester, f"worker-unstartable-{case}-{server.engine}-{time.time()}", "true"
    )
    engine = create_engine(server.database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE task SET command = :command WHERE id = :id"),
                {"command": command, "id": instance.task_id},
            )
    finally:
        engine.dispose()

    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "herdsman-worker"),
            "--task-instance-id",
            str(instance.task_instance_id),
            "--server-url",
            server.url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**WORKER_ENV, "HERDSMAN_TEST_SECRET": "do-not-print-me"},
    )

    assert done.returncode == WRAPPER_ERROR_EXIT_CODE
    assert "Traceback" not in done.stderr and "do-not-print-me" not in done.stderr
    assert "worker_command_start_failed" in done.stderr
    errors = requester.get(f"/workflows/{workflow_id}/errors", WorkflowErrorsOut)
    (failed,) = errors.tasks  # one attempt allowed: the task is fatal, not left running
    assert failed.errors[0].description.startswith("could not start the command")
    assert reason in failed.errors[0].description
