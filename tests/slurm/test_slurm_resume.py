"""A cold resume on a real Slurm: the first run's jobs are cancelled in Slurm, not only marked."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import kill_processes_mentioning
from tests.e2e.conftest import query_rows
from tests.e2e.test_resume import FirstRun

pytestmark = pytest.mark.slurm


def test_a_cold_resume_cancels_the_running_jobs_in_slurm(
    processes: Any,
    server: Any,
    slurm_cluster: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HERDSMAN_SERVER_URL", server.url)
    (tmp_path / "long.seconds").write_text("300")
    first_run = FirstRun(processes, server, slurm_cluster, tmp_path)
    job = None
    try:
        first_run.wait_until_long_runs()
        (tmp_path / "long.done").touch()  # the rerun of long returns at once
        ((job,),) = query_rows(
            server.database_url,
            "SELECT ti.distributor_id FROM task_instance ti JOIN task t ON t.id = ti.task_id "
            "WHERE t.command LIKE '%long.seconds%' AND ti.status = 'R' "
            "AND t.command LIKE :dir",
            dir=f"%{tmp_path}%",
        )

        status, workflow = first_run.resume()

        assert status == "D"
        assert first_run.process.wait(60) == 0
        assert first_run.runs(workflow.workflow_id) == ["T", "D"]
        _, long, _ = workflow.tasks.values()
        assert [status for _, status in first_run.instances(long.task_id)] == ["F", "D"]
        queued = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, check=True
        )
        assert job not in queued.stdout.split()
        state = subprocess.run(
            ["sacct", "-n", "-P", "-X", "-o", "State", "-j", job],
            capture_output=True,
            text=True,
            check=True,
        )
        assert state.stdout.startswith("CANCELLED")
    finally:
        processes.stop(first_run.process)
        kill_processes_mentioning(slurm_cluster)
        if job is not None:
            subprocess.run(["scancel", job], capture_output=True, timeout=60, check=False)
