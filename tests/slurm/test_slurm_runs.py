"""Whole workflows on a real Slurm: arrays and their throttle, failures, resource kills, usage.

Each test runs a workflow on the ``slurm`` plugin against the local cluster
(``scripts/local-slurm``) and checks what the database recorded. Resource limits are kept
at Slurm's smallest so the suite stays short; the time-limit test still takes minutes, as
slurmctld checks limits every 30 s or so.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import query_rows

from herdsman import Tool
from herdsman.client.workflow import Workflow
from herdsman.core.requester import Requester

pytestmark = pytest.mark.slurm

HOG = (
    "import time; b = bytearray({mb} * 1024 * 1024); "
    "[b.__setitem__(i, 1) for i in range(0, len(b), 4096)]; time.sleep(5)"
)


def _tool(requester: Requester, cluster: str, prefix: str) -> Tool:
    tool = Tool(f"slurm-{prefix}-{time.time()}", requester=requester)
    tool.set_default_cluster_name(cluster)
    return tool


def _instances(database_url: str, workflow: Workflow) -> list[Any]:
    return query_rows(
        database_url,
        "SELECT ti.id, ti.task_id, ti.status, ti.distributor_id, ti.wall_time, ti.cpu_time, "
        "ti.max_rss, r.requested FROM task_instance ti JOIN task t ON t.id = ti.task_id "
        "JOIN task_resources r ON r.id = ti.task_resources_id "
        "WHERE t.workflow_id = :w ORDER BY ti.id",
        w=workflow.workflow_id,
    )


def _errors(database_url: str, instance_id: int) -> list[str]:
    rows = query_rows(
        database_url,
        "SELECT description FROM task_instance_error_log WHERE task_instance_id = :i",
        i=instance_id,
    )
    return [row[0] for row in rows]


def _most_at_once(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_array_limit_throttles_a_50_task_array(
    requester: Requester, server: Any, slurm_cluster: str, job_prefix: str, tmp_path: Path
) -> None:
    times = tmp_path / "times"
    times.mkdir()
    tool = _tool(requester, slurm_cluster, job_prefix)
    template = tool.get_task_template(
        f"{job_prefix}-limited",
        f"echo start $(date +%s.%N) > {times}/{{i}}; sleep 2; "
        f"echo end $(date +%s.%N) >> {times}/{{i}}",
        node_args=["i"],
    )
    workflow = tool.create_workflow(workflow_args=job_prefix)
    workflow.add_tasks(template.create_tasks(i=list(range(50))))
    workflow.set_task_template_max_concurrency_limit(template.template_name, 5)

    assert workflow.run() == "D"

    intervals = []
    for path in times.iterdir():
        words = dict(line.split() for line in path.read_text().splitlines())
        intervals.append((float(words["start"]), float(words["end"])))
    assert len(intervals) == 50
    assert 2 <= _most_at_once(intervals) <= 5
    jobs = {row[3].split("_")[0] for row in _instances(server.database_url, workflow)}
    # Batches of the array went out as few job arrays (the swarm queues as slots free up).
    assert len(jobs) < 50


def test_a_failing_task_fails_after_max_attempts_and_usage_is_recorded(
    requester: Requester, server: Any, slurm_cluster: str, job_prefix: str
) -> None:
    tool = _tool(requester, slurm_cluster, job_prefix)
    template = tool.get_task_template(f"{job_prefix}-failing", "echo {word}; exit 3", ["word"])
    workflow = tool.create_workflow(workflow_args=job_prefix)
    task = template.create_task(word="no", max_attempts=2)
    ok = template.create_task(word="yes; exit 0")
    workflow.add_tasks([task, ok])

    assert workflow.run() == "E"

    assert task.status == "F"
    assert ok.status == "D"
    rows = _instances(server.database_url, workflow)
    failed = [row for row in rows if row[1] == task.task_id]
    assert [row[2] for row in failed] == ["E", "E"]
    assert all("exit code 3" in _errors(server.database_url, row[0])[0] for row in failed)
    # Usage came back for every attempt, from the node that ran it.
    (done,) = [row for row in rows if row[1] == ok.task_id]
    assert done[4] is not None and done[4] > 0  # wall time
    assert done[6] is not None and done[6] > 0  # max RSS


def test_a_memory_hog_is_retried_with_more_memory_then_done(
    requester: Requester, server: Any, slurm_cluster: str, job_prefix: str, tmp_path: Path
) -> None:
    tool = _tool(requester, slurm_cluster, job_prefix)
    hog = tmp_path / "hog.py"
    hog.write_text(HOG.format(mb=150))
    template = tool.get_task_template(
        f"{job_prefix}-hog", f"{sys.executable} {{script}}", ["script"]
    )
    workflow = tool.create_workflow(workflow_args=job_prefix)
    task = template.create_task(
        script=str(hog),
        max_attempts=3,
        compute_resources={"memory": "128M"},
        resource_scales={"memory": 1.0},
    )
    workflow.add_task(task)

    assert workflow.run() == "D"

    rows = _instances(server.database_url, workflow)
    assert [row[2] for row in rows] == ["Z", "D"]
    first, second = rows
    assert '"memory"' in first[7] and _memory(second[7]) == 2 * _memory(first[7])
    assert "memory" in _errors(server.database_url, first[0])[0]
    # The attempt that finished recorded its usage: the 150 MB it touched, and its time.
    assert second[6] is not None and second[6] > 150 * 1024 * 1024
    assert second[4] is not None and second[4] >= 5


def _memory(requested: str) -> float:
    import json

    return float(json.loads(requested)["memory"])


def _runtime(requested: str) -> float:
    import json

    return float(json.loads(requested)["runtime"])


def test_a_sleeper_over_its_time_limit_is_retried_with_more_time_then_done(
    requester: Requester, server: Any, slurm_cluster: str, job_prefix: str, tmp_path: Path
) -> None:
    tool = _tool(requester, slurm_cluster, job_prefix)
    marker = tmp_path / "slept"
    template = tool.get_task_template(
        f"{job_prefix}-sleeper",
        # The first attempt outlives its one-minute limit; the retry returns at once.
        "if [ -e {marker} ]; then exit 0; fi; touch {marker}; sleep 300",
        ["marker"],
    )
    workflow = tool.create_workflow(workflow_args=job_prefix)
    task = template.create_task(
        marker=str(marker),
        max_attempts=2,
        compute_resources={"runtime": "1m"},
        resource_scales={"runtime": 1.0},
    )
    workflow.add_task(task)

    assert workflow.run() == "D"

    rows = _instances(server.database_url, workflow)
    assert [row[2] for row in rows] == ["Z", "D"]
    assert _runtime(rows[1][7]) == 2 * _runtime(rows[0][7])
    assert "time limit" in _errors(server.database_url, rows[0][0])[0]


def test_a_job_cancelled_outside_herdsman_is_an_error_naming_who_cancelled_it(
    requester: Requester, server: Any, slurm_cluster: str, job_prefix: str
) -> None:
    tool = _tool(requester, slurm_cluster, job_prefix)
    template = tool.get_task_template(f"{job_prefix}-victim", "sleep {seconds}", ["seconds"])
    workflow = tool.create_workflow(workflow_args=job_prefix)
    task = template.create_task(seconds=300, max_attempts=1)
    workflow.add_task(task)
    cancelled: list[str] = []

    def cancel_once_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            rows = (
                query_rows(
                    server.database_url,
                    "SELECT distributor_id FROM task_instance WHERE task_id = :t AND status = 'R' "
                    "AND distributor_id IS NOT NULL",
                    t=task.task_id,
                )
                if task.task_id is not None
                else []
            )
            if rows:
                subprocess.run(["scancel", rows[0][0]], check=True, timeout=60)
                cancelled.append(rows[0][0])
                return
            time.sleep(0.5)

    canceller = threading.Thread(target=cancel_once_running, daemon=True)
    canceller.start()
    status = workflow.run()
    canceller.join(timeout=5)

    assert cancelled, "the task never ran"
    assert status == "E"
    assert task.status == "F"
    ((instance_id, *_),) = _instances(server.database_url, workflow)
    (message,) = _errors(server.database_url, instance_id)
    assert "cancelled by user root (uid 0)" in message
