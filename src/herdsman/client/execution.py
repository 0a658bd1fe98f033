"""Running a workflow: bind, start a distributor per cluster, run the swarm, stop, report.

This is what ``Workflow.run()`` does. The distributors are child processes of the user's
process and live exactly as long as the run: they are stopped in ``finally``, whatever ends the
run (completion, failure, timeout, Ctrl-C).

What the person at the terminal sees (:mod:`herdsman.client.run_display`): progress while the
run goes on, the distributors' warnings, and at the end always a summary -- the final status,
the counts, why the run ended if not done, and what to run next
(:func:`herdsman.client.run_report.summarize`). The rule for runs that end early, the same for
every way in (``Workflow.run``, :func:`resume_workflow_from_id`, ``herdsman workflow resume``):

* the status letter is returned however the run ends -- D, E, or S when the run was stopped
  with ``herdsman workflow stop``;
* a run that timed out or lost its distributor raises, as Jobmon's ``run()`` does, once it
  has ended: ``Workflow.run`` raises :class:`~herdsman.core.errors.RunTimedOutError` (a
  ``RuntimeError``) or :class:`~herdsman.core.errors.DistributorNotAlive`; the resume entry
  points return the letter and issue a warning instead
  (:class:`~herdsman.core.errors.RunTimedOutWarning`,
  :class:`~herdsman.core.errors.DistributorDiedWarning`);
* a confirmed Ctrl-C stops the run (S, its jobs killed), prints one line saying so, and
  raises :class:`~herdsman.core.errors.RunInterrupted`, a ``KeyboardInterrupt``.

``seconds_until_timeout`` counts from the moment the run starts its distributors, so a run
returns promptly after it: starting and stopping them is inside the limit, not added to it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from herdsman.client import queries
from herdsman.client.run_display import LogRelay, RunDisplay, choose_mode, log_tail
from herdsman.client.run_report import (
    LOG_LINES_SHOWN,
    DistributorFacts,
    FailedTask,
    RunFacts,
    format_duration,
    interrupted_line,
    resume_line,
    summarize,
)
from herdsman.client.swarm.gateway import HttpSwarmGateway
from herdsman.client.swarm.orchestrator import RunEnding, SwarmResult, confirm_stop_on_terminal
from herdsman.client.swarm.values import RunProgress
from herdsman.core.config import load_settings
from herdsman.core.errors import (
    DistributorDiedWarning,
    DistributorNotAlive,
    HerdsmanError,
    InvalidInputError,
    RunEndedEarlyWarning,
    RunInterrupted,
    RunTimedOutError,
    RunTimedOutWarning,
    short_traceback,
)
from herdsman.core.lifecycle import (
    TAKEN_OVER_RUN_STATUSES,
)
from herdsman.core.schemas.queries import FailedTaskOut
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus

if TYPE_CHECKING:
    from herdsman.client.swarm.workflow_run import WorkflowRun
    from herdsman.client.workflow import Workflow
    from herdsman.core.requester import Requester
    from herdsman.distributor.process import DistributorProcess

__all__ = [
    "RunOutcome",
    "drive_run",
    "page_line",
    "resume_workflow_from_id",
    "run_workflow",
    "tasks_killed_for_resources",
]

logger = structlog.get_logger(__name__)

_RELEASE_POLL_SECONDS = 0.2
# A distributor started by a run logs its own steps at info: few lines (per batch, not per
# task), and the ones a summary of its death needs.
DISTRIBUTOR_LOG_LEVEL = "info"
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent)


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: its status letter and the facts its summary was made of."""

    status: str
    facts: RunFacts | None


def run_workflow(
    workflow: Workflow,
    *,
    fail_fast: bool,
    seconds_until_timeout: float,
    resume: bool,
    reset_running_jobs: bool,
    distributor_startup_timeout: float,
    progress: bool,
    swarm_options: dict[str, Any],
) -> str:
    """Run ``workflow`` to the end and return the run's final status letter."""
    from herdsman.client.swarm.workflow_run import WorkflowRun

    # A workflow bound just before (and unchanged since) is not sent again.
    workflow.bind_if_changed(resume=resume)
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
    notes = []
    if resume and workflow.workflow_id is not None:
        detail = queries.workflow_detail(workflow.requester, workflow.workflow_id)
        removed = workflow._num_removed_on_bind
        if (line := resume_line(detail.task_status_counts, removed=removed)) is not None:
            notes.append(line)
    outcome = drive_run(
        swarm,
        clusters,
        workflow.requester,
        seconds_until_timeout=seconds_until_timeout,
        distributor_startup_timeout=distributor_startup_timeout,
        progress=progress,
        workflow_name=workflow.name,
        notes=notes,
    )
    _record_final_statuses(workflow, swarm)
    logger.info("workflow_run_finished", workflow_id=workflow.workflow_id, status=outcome.status)
    workflow.last_workflow_run_id = swarm.workflow_run_id
    counts = swarm.result.progress
    if counts is not None:
        workflow._num_newly_completed = counts.newly_done
        workflow._num_previously_completed = counts.done - counts.newly_done
    _raise_if_ended_early(outcome.facts)
    return outcome.status


@short_traceback
def resume_workflow_from_id(
    workflow_id: int,
    *,
    reset_running_jobs: bool = True,
    fail_fast: bool = False,
    seconds_until_timeout: int = 36_000,
    distributor_startup_timeout: float = 180.0,
    progress: bool = True,
    resume_timeout: float = 300.0,
    requester: Requester | None = None,
    cluster_name: str | None = None,
    increase_resources: bool = True,
    force_cleanup: bool = False,
    **swarm_options: Any,
) -> str:
    """Resume a workflow from the database alone, without the script that built it.

    The DAG, resources and limits come from the server; a task's ``compute_resources_callable``
    and callable or iterator resource scales, which live only in the script, are not
    available, so numeric scales apply. Returns the new run's final status; shows progress
    and a summary on stderr as ``Workflow.run()`` does (see the module docstring).

    With ``increase_resources`` (the default, as in Jobmon), tasks whose last attempt was
    killed for resources get their request scaled before they are queued, by the rule a run
    applies after a resource kill (:mod:`herdsman.client.scaling`, the task's stored scales).
    ``cluster_name`` (Jobmon's ``-c``), when given, must be a cluster the workflow's tasks run
    on: each task runs on the cluster it was bound to. ``force_cleanup`` takes the workflow
    over at once instead of waiting up to ``resume_timeout`` seconds for an earlier run's jobs
    to confirm their kills; unconfirmed kills are recorded as such.
    """
    from herdsman.client.embedded import default_requester
    from herdsman.client.swarm.workflow_run import WorkflowRun

    requester = requester or default_requester()
    clusters = queries.workflow_clusters(requester, workflow_id)
    if cluster_name is not None and cluster_name not in clusters:
        raise InvalidInputError(
            f"workflow {workflow_id} has no task on cluster {cluster_name!r}; its tasks run on "
            f"{', '.join(clusters) or 'no cluster'}, and each task resumes on its own cluster",
            details={"workflow_id": workflow_id, "cluster": cluster_name},
        )
    killed = tasks_killed_for_resources(requester, workflow_id) if increase_resources else []
    swarm = WorkflowRun.from_workflow_id(
        workflow_id,
        resume=True,
        reset_running_jobs=reset_running_jobs,
        resume_timeout=0.0 if force_cleanup else resume_timeout,
        fail_fast=fail_fast,
        requester=requester,
        **swarm_options,
    )
    if killed:
        scaled = swarm.adjust_resources(killed)
        logger.info("resume_scales_killed_tasks", workflow_id=workflow_id, tasks=scaled)
    outcome = drive_run(
        swarm,
        clusters,
        requester,
        seconds_until_timeout=seconds_until_timeout,
        distributor_startup_timeout=distributor_startup_timeout,
        progress=progress,
        workflow_name=None,
    )
    logger.info("workflow_run_finished", workflow_id=workflow_id, status=outcome.status)
    _warn_if_ended_early(outcome.facts)
    return outcome.status


def tasks_killed_for_resources(requester: Requester, workflow_id: int) -> list[int]:
    """Ids of the workflow's unfinished tasks whose last attempt was killed for resources
    (:func:`~herdsman.core.lifecycle.scaled_on_resume`), read in one request however many."""
    return [task.task_id for task in queries.killed_for_resources(requester, workflow_id).tasks]


def drive_run(
    swarm: WorkflowRun,
    clusters: Sequence[str],
    requester: Requester,
    *,
    seconds_until_timeout: float,
    distributor_startup_timeout: float,
    progress: bool,
    workflow_name: str | None,
    notes: Sequence[str] = (),
) -> RunOutcome:
    """Start a distributor per cluster, run the swarm, stop the distributors, summarize.

    ``notes`` are said after the line with the workflow's page, before the progress starts.

    A run that a resume took over (C, H or T) waits for its distributors to leave on their own:
    they carry out the kills the resume asked for, or (hot) watch running jobs to their end,
    and the server then ends the run (T).
    """
    started = time.monotonic()
    workflow_id = swarm.workflow_id or 0
    display = RunDisplay(
        workflow_id,
        choose_mode(progress),
        running=_running_counter(requester, workflow_id),
        started=started,
    )
    # The distributors and their jobs act for this run alone, with a token made for it.
    run_token = HttpSwarmGateway(requester).run_token(swarm.workflow_run_id)
    distributors = [
        _distributor(
            swarm, cluster, requester, _log_file(swarm.workflow_run_id, cluster), run_token
        )
        for cluster in clusters
    ]
    dead: list[DistributorProcess] = []
    interrupted = False
    status = WorkflowRunStatus.ERROR.value
    with ExitStack() as stack:
        stack.enter_context(LogRelay([d.log_file for d in distributors if d.log_file], display.say))
        for distributor in distributors:
            stack.callback(distributor.stop)
            distributor.start(timeout=distributor_startup_timeout)
        display.say(page_line(requester.base_url, workflow_id))
        for note in notes:
            display.say(note)
        remaining = seconds_until_timeout - (time.monotonic() - started)
        with display:
            try:
                status = swarm.run(
                    lambda: all(d.is_alive() for d in distributors),
                    seconds_until_timeout=max(remaining, 0.001),
                    on_progress=display.update,
                    confirm_stop=_paused(display, confirm_stop_on_terminal),
                )
            except KeyboardInterrupt:
                if swarm.status is not WorkflowRunStatus.STOPPED:
                    raise  # not the swarm's confirmed stop: nothing of the run to report
                interrupted = True
        ended = time.monotonic()
        dead = [d for d in distributors if not d.is_alive()]
        if not interrupted and WorkflowRunStatus(status) in TAKEN_OVER_RUN_STATUSES:
            left = max(0.0, seconds_until_timeout - (time.monotonic() - started))
            status = _wait_for_release(swarm.workflow_run_id, distributors, requester, left)
    if interrupted:
        display.say(interrupted_line(workflow_id, swarm.workflow_run_id))
        raise RunInterrupted(
            f"workflow run {swarm.workflow_run_id} was stopped (Ctrl-C); resume workflow "
            f"{workflow_id} to go on"
        ) from None
    facts = _facts(
        swarm,
        requester,
        status=status,
        workflow_name=workflow_name,
        timeout=seconds_until_timeout,
        elapsed=ended - started,
        dead=dead,
        split=display.split,
    )
    if facts is not None:
        display.print_summary(summarize(facts), ok=facts.status is WorkflowRunStatus.DONE)
    return RunOutcome(status, facts)


def page_line(server_url: str, workflow_id: int) -> str:
    """The line a run starts with: where its workflow's page is in the server's web GUI."""
    return f"workflow {workflow_id}: {server_url}/workflows/{workflow_id}"


def _running_counter(requester: Requester, workflow_id: int) -> Callable[[], int]:
    """How many of the workflow's tasks run, as the server counts them (for the display)."""

    def count() -> int:
        counts = queries.workflow_detail(requester, workflow_id).task_status_counts
        return counts.get(TaskStatus.RUNNING.value, 0)

    return count


def _distributor(
    swarm: WorkflowRun, cluster: str, requester: Requester, log_file: Path, token: str
) -> DistributorProcess:
    from herdsman.client.embedded import EmbeddedRecovery
    from herdsman.distributor.process import DistributorProcess

    recovery = requester.recover
    embedded = isinstance(recovery, EmbeddedRecovery)
    return DistributorProcess(
        swarm.workflow_run_id,
        cluster,
        requester.base_url,
        token=token,
        after_seq=swarm.feed_position,
        log_file=log_file,
        log_level=_distributor_log_level(),
        log_format="json",
        embedded_server=embedded,
        environment=recovery.environment() if isinstance(recovery, EmbeddedRecovery) else None,
    )


def _distributor_log_level() -> str:
    level = os.environ.get("HERDSMAN_LOG_LEVEL", "").lower()
    return "debug" if level == "debug" else DISTRIBUTOR_LOG_LEVEL


def _log_file(run_id: int, cluster: str) -> Path:
    """Where a run's distributor for ``cluster`` logs: ``<data_dir>/logs/``, else a temp dir."""
    try:
        directory = load_settings().data_dir / "logs"
        directory.mkdir(parents=True, exist_ok=True)
    except (HerdsmanError, OSError):
        directory = Path(tempfile.gettempdir()) / "herdsman-logs"
        directory.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in cluster)
    return directory / f"run-{run_id}-{safe}.log"


def _paused(display: RunDisplay, ask: Callable[[], bool]) -> Callable[[], bool]:
    def confirm() -> bool:
        with display.paused():
            return ask()

    return confirm


def _wait_for_release(
    run_id: int, distributors: Sequence[DistributorProcess], requester: Requester, timeout: float
) -> str:
    deadline = time.monotonic() + timeout
    logger.info("workflow_run_letting_go", workflow_run_id=run_id, timeout=round(timeout, 1))
    while any(d.is_alive() for d in distributors) and time.monotonic() < deadline:
        time.sleep(_RELEASE_POLL_SECONDS)
    return HttpSwarmGateway(requester).get_run(run_id).status


# --- the summary's facts --------------------------------------------------------------------


def _facts(
    swarm: WorkflowRun,
    requester: Requester,
    *,
    status: str,
    workflow_name: str | None,
    timeout: float,
    elapsed: float,
    dead: Sequence[DistributorProcess],
    split: Callable[[RunProgress], RunProgress],
) -> RunFacts | None:
    """What the summary says, read after the run; None if the run has no result to tell."""
    try:
        result = swarm.result
    except RuntimeError:
        return None
    workflow_id = swarm.workflow_id or 0
    with _best_effort("workflow_detail"):
        if workflow_name is None:
            workflow_name = queries.workflow_detail(requester, workflow_id).name
    failed, failed_total = _failed_tasks(requester, workflow_id, result)
    return RunFacts(
        workflow_id=workflow_id,
        workflow_name=workflow_name or "",
        run_id=swarm.workflow_run_id,
        status=WorkflowRunStatus(status),
        ending=result.ending,
        elapsed_seconds=elapsed,
        progress=split(result.progress) if result.progress is not None else None,
        timeout_seconds=timeout,
        reason=result.reason,
        failed=failed,
        failed_total=failed_total,
        fail_fast_task=_fail_fast_task(requester, result, failed),
        distributor=_died(dead) if result.ending is RunEnding.DISTRIBUTOR_DIED else None,
        status_message=_status_message(requester, swarm.workflow_run_id, result),
    )


@contextmanager
def _best_effort(what: str) -> Iterator[None]:
    """A summary is a courtesy: a read that fails leaves its part out, the run's result stands."""
    try:
        yield
    except HerdsmanError as error:
        logger.debug("run_summary_incomplete", part=what, error=error.message)


def _failed_tasks(
    requester: Requester, workflow_id: int, result: SwarmResult
) -> tuple[list[FailedTask], int]:
    if not result.failed_task_ids:
        return [], 0
    with _best_effort("workflow_errors"):
        reply = queries.workflow_errors(requester, workflow_id, limit=3)
        return [_failed(task) for task in reply.tasks], reply.count
    return [], len(result.failed_task_ids)


def _failed(task: FailedTaskOut) -> FailedTask:
    error = task.errors[0].description if task.errors else "no error was recorded"
    return FailedTask(task.task_id, task.name, task.num_attempts, error, task.stderr_tail)


def _fail_fast_task(
    requester: Requester, result: SwarmResult, failed: Sequence[FailedTask]
) -> FailedTask | None:
    if result.ending is not RunEnding.FAIL_FAST or result.first_failed_task_id is None:
        return None
    task_id = result.first_failed_task_id
    found = next((task for task in failed if task.task_id == task_id), None)
    if found is not None:
        return found
    with _best_effort("task_attempts"):
        attempts = queries.task_attempts(requester, task_id)
        errors = [attempt.error for attempt in attempts.attempts if attempt.error]
        last = errors[-1] if errors else ""
        return FailedTask(task_id, attempts.name, len(attempts.attempts), last)
    return FailedTask(task_id, "", 0, "")


def _status_message(requester: Requester, run_id: int, result: SwarmResult) -> str:
    if result.ending not in (RunEnding.STOPPED, RunEnding.ENDED_ELSEWHERE):
        return ""
    with _best_effort("run status"):
        return HttpSwarmGateway(requester).get_run(run_id).status_message
    return ""


def _died(dead: Sequence[DistributorProcess]) -> DistributorFacts | None:
    if not dead:
        return None
    distributor = dead[0]
    log = distributor.log_file
    return DistributorFacts(
        cluster=distributor.cluster_name,
        pid=distributor.pid,
        exit_code=distributor.exit_code,
        log_file=str(log) if log is not None else None,
        last_lines=log_tail(log, LOG_LINES_SHOWN) if log is not None else (),
    )


def _warn_if_ended_early(facts: RunFacts | None) -> None:
    """The warning that stands in for Jobmon's exception (see the module docstring)."""
    if facts is None:
        return
    warning: RunEndedEarlyWarning
    if facts.ending is RunEnding.TIMEOUT:
        warning = RunTimedOutWarning(
            f"workflow {facts.workflow_id}: run {facts.run_id} did not finish within "
            f"seconds_until_timeout={facts.timeout_seconds:g} "
            f"({format_duration(facts.elapsed_seconds)}); it ended E and can be resumed"
        )
    elif facts.ending is RunEnding.DISTRIBUTOR_DIED:
        warning = DistributorDiedWarning(
            f"workflow {facts.workflow_id}: run {facts.run_id} ended E because its distributor "
            "died; it can be resumed"
        )
    else:
        return
    _warn_at_caller(warning)


def _raise_if_ended_early(facts: RunFacts | None) -> None:
    """Jobmon's ``run()`` raises on a timeout and when its distributor dies; so does ours,
    once the run has ended and its summary and the tasks' final statuses are in place."""
    if facts is None:
        return
    details = {"workflow_id": facts.workflow_id, "workflow_run_id": facts.run_id, "status": "E"}
    if facts.ending is RunEnding.TIMEOUT:
        raise RunTimedOutError(
            f"workflow {facts.workflow_id}: run {facts.run_id} did not finish within "
            f"seconds_until_timeout={facts.timeout_seconds:g} "
            f"({format_duration(facts.elapsed_seconds)}); it ended E. Jobs already submitted "
            "may still run; resume the workflow to finish it",
            details=details,
        )
    if facts.ending is RunEnding.DISTRIBUTOR_DIED:
        raise DistributorNotAlive(
            f"workflow {facts.workflow_id}: run {facts.run_id} ended E because its distributor "
            "died (its log is in the summary above); resume the workflow",
            details=details,
        )


def _warn_at_caller(warning: Warning) -> None:
    """Issue ``warning`` at the first frame outside herdsman: the user's call of ``run()``."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame = frame.f_back
    module_globals = frame.f_globals
    warnings.warn_explicit(
        warning,
        type(warning),
        frame.f_code.co_filename,
        frame.f_lineno,
        module=module_globals.get("__name__"),
        registry=module_globals.setdefault("__warningregistry__", {}),
    )


def _record_final_statuses(workflow: Workflow, swarm: WorkflowRun) -> None:
    """Each task's ``status`` (Jobmon: ``final_status``) as the swarm last knew it."""
    for task in workflow.tasks.values():
        if task.task_id is not None:
            status = swarm.status_of(task.task_id)
            if status is not None:
                task.final_status = status.value
