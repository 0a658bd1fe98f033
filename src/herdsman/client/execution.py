"""Running a workflow: bind, start a distributor per cluster, run the swarm, stop, report.

This is what ``Workflow.run()`` does. The distributors are child processes of the user's
process and live exactly as long as the run: they are stopped in ``finally``, whatever ends the
run (completion, failure, timeout, Ctrl-C).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import structlog

from herdsman.core.schemas.gui import WorkflowDetailOut

if TYPE_CHECKING:
    from herdsman.client.workflow import Workflow

__all__ = ["ProgressReporter", "run_workflow"]

logger = structlog.get_logger(__name__)

PROGRESS_INTERVAL_SECONDS = 5.0


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
    from herdsman.distributor.process import DistributorProcess

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
    with ExitStack() as stack:
        distributors = []
        for cluster in clusters:
            distributor = DistributorProcess(
                swarm.workflow_run_id,
                cluster,
                workflow.requester.base_url,
                after_seq=swarm.feed_position,
            )
            stack.callback(distributor.stop)
            distributor.start(timeout=distributor_startup_timeout)
            distributors.append(distributor)
        if progress:
            stack.enter_context(ProgressReporter(workflow))
        status = swarm.run(
            lambda: all(d.is_alive() for d in distributors),
            seconds_until_timeout=seconds_until_timeout,
        )
    _record_final_statuses(workflow, swarm.done_tasks, swarm.failed_tasks)
    logger.info("workflow_run_finished", workflow_id=workflow.workflow_id, status=status)
    return status


def _record_final_statuses(workflow: Workflow, done: list[int], failed: list[int]) -> None:
    done_ids, failed_ids = set(done), set(failed)
    for task in workflow.tasks.values():
        if task.task_id in done_ids:
            task.status = "D"
        elif task.task_id in failed_ids:
            task.status = "F"


class ProgressReporter:
    """Prints a line with the workflow's task counts every few seconds, and once at the end."""

    def __init__(
        self,
        workflow: Workflow,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self._workflow = workflow
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
            detail = self._workflow.requester.get(
                f"/workflows/{self._workflow.workflow_id}", WorkflowDetailOut
            )
        except Exception as error:  # progress is best effort; the run reports real failures
            logger.debug("progress_unavailable", error=str(error))
            return
        self._write(format_progress(detail))


def format_progress(detail: WorkflowDetailOut) -> str:
    counts = detail.task_status_counts
    done, failed = counts.get("D", 0), counts.get("F", 0)
    running = counts.get("R", 0)
    waiting = sum(counts.get(s, 0) for s in ("Q", "I", "O"))
    percent = 100 * done / detail.num_tasks if detail.num_tasks else 100.0
    return (
        f"workflow {detail.id}: {done}/{detail.num_tasks} done ({percent:.0f}%), "
        f"{running} running, {waiting} queued, {failed} failed"
    )
