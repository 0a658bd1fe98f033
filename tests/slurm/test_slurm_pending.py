"""Slurm's reason a job waits, from a real ``squeue`` to the task page, for every array element.

A workflow whose jobs cannot start yet runs on the local Slurm: one template's three tasks go
out as one job array with a begin time an hour away (Slurm says ``BeginTime`` for each
element), another's task is submitted on hold (``JobHeldUser``). The task page of every task
must then say in words why Slurm has yet to start its job; stopping the workflow must take the
jobs out of Slurm's queue.
"""

from __future__ import annotations

import html
import re
import subprocess
import threading
import time
from collections.abc import Callable

import pytest
from tests.conftest import RunningServer
from tests.e2e.conftest import query_rows
from tests.integration.test_pending_reasons import why

from herdsman import Tool
from herdsman.client.control import stop_workflow
from herdsman.client.workflow import Workflow
from herdsman.core.requester import Requester

pytestmark = pytest.mark.slurm

BEGIN_TIME = (
    "queued in the cluster: Slurm says (BeginTime): it may not start before its requested "
    "begin time"
)
HELD = "queued in the cluster: Slurm says (JobHeldUser): its owner put it on hold"
# Submission, the distributor's first triage and its report take seconds; a minute is ample.
WAIT_SECONDS = 90.0


def why_not_running(server: RunningServer, task_id: int) -> str:
    """The task page's "Why isn't this task running?" section as one line of text ("" if
    none)."""
    found = re.search(
        r'<section id="why-not-running".*?</section>', why(server, task_id), re.DOTALL
    )
    text = html.unescape(re.sub(r"<[^>]+>", " ", found.group(0))) if found else ""
    return " ".join(text.split())


def jobs_of(server: RunningServer, workflow: Workflow) -> dict[int, str]:
    """Task id -> Slurm job id of its attempt, for the workflow's submitted attempts."""
    rows = query_rows(
        server.database_url,
        "SELECT ti.task_id, ti.distributor_id FROM task_instance ti "
        "JOIN task t ON t.id = ti.task_id "
        "WHERE t.workflow_id = :w AND ti.distributor_id IS NOT NULL",
        w=workflow.workflow_id,
    )
    return {task_id: job for task_id, job in rows}


def queued_jobs() -> set[str]:
    listing = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True, timeout=60, check=True
    )
    return set(listing.stdout.split())


def wait_for(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {WAIT_SECONDS:.0f} s")
        time.sleep(1)


def test_every_waiting_jobs_reason_reaches_its_task_page(
    requester: Requester, server: RunningServer, slurm_cluster: str, job_prefix: str
) -> None:
    tool = Tool(f"slurm-{job_prefix}-{time.time()}", requester=requester)
    tool.set_default_cluster_name(slurm_cluster)
    later = tool.get_task_template(f"{job_prefix}-later", "echo {i}", ["i"])
    held = tool.get_task_template(f"{job_prefix}-held", "echo {i}", ["i"])
    workflow = tool.create_workflow(workflow_args=job_prefix)
    waiting = later.create_tasks(
        i=[0, 1, 2], compute_resources={"sbatch_args": ["--begin=now+1hour"]}
    )
    on_hold = held.create_task(i=0, compute_resources={"sbatch_args": ["--hold"]})
    workflow.add_tasks([*waiting, on_hold])
    workflow_id = workflow.bind()
    task_ids = [task.task_id for task in [*waiting, on_hold] if task.task_id is not None]
    assert len(task_ids) == 4
    seen: dict[int, str] = {}
    jobs: dict[int, str] = {}
    failures: list[BaseException] = []

    def watch_then_stop() -> None:
        """Wait for every task's reason on its page, then stop the workflow whatever happened."""
        try:
            wait_for(lambda: len(jobs_of(server, workflow)) == 4, "four submitted jobs")
            jobs.update(jobs_of(server, workflow))

            def all_said() -> bool:
                for task_id in task_ids:
                    seen[task_id] = why_not_running(server, task_id)
                return all("Slurm says" in text for text in seen.values())

            wait_for(all_said, "Slurm's reason on every task page")
        except BaseException as error:  # reported by the test, after the run has ended
            failures.append(error)
        finally:
            stop_workflow(requester, workflow_id)

    watcher = threading.Thread(target=watch_then_stop, daemon=True)
    watcher.start()
    try:
        status = workflow.run(seconds_until_timeout=300)
    finally:
        watcher.join(timeout=WAIT_SECONDS * 3)
    if failures:
        raise failures[0]

    assert status == "S"
    # The three tasks of one template went out as one job array, one element each, and every
    # element's reason reached its own task.
    elements = {tuple(jobs[task_id].split("_")) for task_id in task_ids[:3]}
    assert {index for _, index in elements} == {"0", "1", "2"}, jobs
    assert len({array for array, _ in elements}) == 1, jobs
    for task_id in task_ids[:3]:
        assert BEGIN_TIME in seen[task_id], seen[task_id]
    assert HELD in seen[task_ids[3]], seen[task_ids[3]]
    # Stopping the workflow took its jobs out of Slurm's queue.
    wait_for(lambda: not set(jobs.values()) & queued_jobs(), "the stopped run's jobs cancelled")
