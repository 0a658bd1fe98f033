"""Running a workflow: bind, start a distributor per cluster, run the swarm, stop, report.

This is what ``Workflow.run()`` does. The distributors are child processes of the user's
process and live exactly as long as the run: they are stopped in ``finally``, whatever ends the
run (completion, failure, timeout, Ctrl-C).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import structlog

from herdsman.client import queries
from herdsman.client.swarm.gateway import HttpSwarmGateway
from herdsman.core.lifecycle import TAKEN_OVER_RUN_STATUSES, WAITING_TASK_STATUSES
from herdsman.core.schemas.queries import WorkflowDetailOut
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus

if TYPE_CHECKING:
    from herdsman.client.swarm.workflow_run import WorkflowRun
    from herdsman.client.workflow import Workflow
    from herdsman.core.requester import Requester
    from herdsman.distributor.process import DistributorProcess

__all__ = ["ProgressReporter", "drive_run", "resume_workflow_from_id", "run_workflow"]

logger = structlog.get_logger(__name__)

PROGRESS_INTERVAL_SECONDS = 5.0
_RELEASE_POLL_SECONDS = 0.2


def run_workflow(
    workflow: Workflow,
    *,
    fail_fast: bool,
    seconds_until_timeout: int,
    resume: bool,
    reset_running_jobs: bool,
    distributor_startup_timeout: float,
    progress: bool,
    swarm_options: dict[str, Any],
) -> str:
    """Run ``workflow`` to the end and return the run's final status letter."""
    from herdsman.client.swarm.workflow_run import WorkflowRun

    workflow.bind()
    resolver = workflow.resolver()
    clusters = sorted({resolver.cluster_name(task) for task in workflow.tasks.values()})
    swarm = WorkflowRun.from_workflow(
        workflow,
        resume=resume,
        reset_running_jobs=reset_running_jobs,
        fail_fast=fail_fast,
        requester=workflow.requester,
        **swarm_options,
    )
    status = drive_run(
        swarm,
        clusters,
        workflow.requester,
        seconds_until_timeout=seconds_until_timeout,
        distributor_startup_timeout=distributor_startup_timeout,
        progress=progress,
    )
    _record_final_statuses(workflow, swarm.done_tasks, swarm.failed_tasks)
    logger.info("workflow_run_finished", workflow_id=workflow.workflow_id, status=status)
    return status


def resume_workflow_from_id(
    workflow_id: int,
    *,
    reset_running_jobs: bool = True,
    fail_fast: bool = False,
    seconds_until_timeout: int = 36_000,
    distributor_startup_timeout: float = 180.0,
    progress: bool = False,
    resume_timeout: float = 300.0,
    requester: Requester | None = None,
    **swarm_options: Any,
) -> str:
    """Resume a workflow from the database alone, without the script that built it.

    The DAG, resources and limits come from the server; a task's ``compute_resources_callable``
    and callable or iterator resource scales, which live only in the script, are not
    available, so numeric scales apply. Returns the new run's final status.
    """
    from herdsman.client.embedded import default_requester
    from herdsman.client.swarm.workflow_run import WorkflowRun

    requester = requester or default_requester()
    clusters = queries.workflow_clusters(requester, workflow_id)
    swarm = WorkflowRun.from_workflow_id(
        workflow_id,
        resume=True,
        reset_running_jobs=reset_running_jobs,
        resume_timeout=resume_timeout,
        fail_fast=fail_fast,
        requester=requester,
        **swarm_options,
    )
    status = drive_run(
        swarm,
        clusters,
        requester,
        seconds_until_timeout=seconds_until_timeout,
        distributor_startup_timeout=distributor_startup_timeout,
        progress=progress,
    )
    logger.info("workflow_run_finished", workflow_id=workflow_id, status=status)
    return status


def drive_run(
    swarm: WorkflowRun,
    clusters: Sequence[str],
    requester: Requester,
    *,
    seconds_until_timeout: float,
    distributor_startup_timeout: float,
    progress: bool,
) -> str:
    """Start a distributor per cluster, run the swarm, and stop the distributors.

    A run that a resume took over (C, H or T) waits for its distributors to leave on their own:
    they carry out the kills the resume asked for, or (hot) watch running jobs to their end,
    and the server then ends the run (T).
    """
    from herdsman.distributor.process import DistributorProcess

    started = time.monotonic()
    # The distributors and their jobs act for this run alone, with a token made for it.
    run_token = HttpSwarmGateway(requester).run_token(swarm.workflow_run_id)
    with ExitStack() as stack:
        distributors = []
        for cluster in clusters:
            distributor = DistributorProcess(
                swarm.workflow_run_id,
                cluster,
                requester.base_url,
                token=run_token,
                after_seq=swarm.feed_position,
            )
            stack.callback(distributor.stop)
            distributor.start(timeout=distributor_startup_timeout)
            distributors.append(distributor)
        if progress and swarm.workflow_id is not None:
            stack.enter_context(ProgressReporter(requester, swarm.workflow_id))
        status = swarm.run(
            lambda: all(d.is_alive() for d in distributors),
            seconds_until_timeout=int(seconds_until_timeout),
        )
        if WorkflowRunStatus(status) in TAKEN_OVER_RUN_STATUSES:
            remaining = max(0.0, seconds_until_timeout - (time.monotonic() - started))
            status = _wait_for_release(swarm.workflow_run_id, distributors, requester, remaining)
    return status


def _wait_for_release(
    run_id: int, distributors: Sequence[DistributorProcess], requester: Requester, timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    logger.info("workflow_run_letting_go", workflow_run_id=run_id, timeout=round(timeout, 1))
    while any(d.is_alive() for d in distributors) and time.monotonic() < deadline:
        time.sleep(_RELEASE_POLL_SECONDS)
    return HttpSwarmGateway(requester).get_run(run_id).status


def _record_final_statuses(workflow: Workflow, done: list[int], failed: list[int]) -> None:
    done_ids, failed_ids = set(done), set(failed)
    for task in workflow.tasks.values():
        if task.task_id in done_ids:
            task.status = TaskStatus.DONE.value
        elif task.task_id in failed_ids:
            task.status = TaskStatus.ERROR_FATAL.value


class ProgressReporter:
    """Prints a line with the workflow's task counts every few seconds, and once at the end."""

    def __init__(
        self,
        requester: Requester,
        workflow_id: int,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self._requester = requester
        self._workflow_id = workflow_id
        self._interval = interval
        self._write = write or (lambda line: print(line, file=sys.stderr, flush=True))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="herdsman-progress", daemon=True)

    def __enter__(self) -> ProgressReporter:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)
        self._report()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._report()

    def _report(self) -> None:
        try:
            detail = queries.workflow_detail(self._requester, self._workflow_id)
        except Exception as error:  # progress is best effort; the run reports real failures
            logger.debug("progress_unavailable", error=str(error))
            return
        self._write(format_progress(detail))


def format_progress(detail: WorkflowDetailOut) -> str:
    counts = detail.task_status_counts
    done, failed = counts.get(TaskStatus.DONE, 0), counts.get(TaskStatus.ERROR_FATAL, 0)
    running = counts.get(TaskStatus.RUNNING, 0)
    waiting = sum(counts.get(status, 0) for status in WAITING_TASK_STATUSES)
    percent = 100 * done / detail.num_tasks if detail.num_tasks else 100.0
    return (
        f"workflow {detail.id}: {done}/{detail.num_tasks} done ({percent:.0f}%), "
        f"{running} running, {waiting} queued, {failed} failed"
    )
