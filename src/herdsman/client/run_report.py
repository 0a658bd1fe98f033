"""What a run says to the person who started it: progress lines and the end-of-run summary.

Pure functions from facts to text; :mod:`herdsman.client.run_display` gathers the facts and
does the printing. Keeping them apart lets every wording be tested without a server, and
keeps the summary's rules in one place:

* it always gives the final status, the task counts, and -- when the run did not end done --
  why: which tasks failed (the first few, with their error text), the timeout, the task
  fail_fast stopped on, the distributor that died (with its last log lines), who stopped it;
* it ends with the command to run next (``herdsman workflow errors``, ``... resume``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from herdsman.client.swarm.orchestrator import RunEnding
from herdsman.client.swarm.values import RunProgress
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus

__all__ = [
    "DistributorFacts",
    "FailedTask",
    "RunFacts",
    "describe_exit",
    "estimate_seconds_left",
    "format_duration",
    "interrupted_line",
    "progress_line",
    "resume_line",
    "summarize",
]

FAILED_TASKS_SHOWN = 3
OUTPUT_LINES_SHOWN = 3
LINE_WIDTH = 160
LOG_LINES_SHOWN = 12
_INDENT = "  "


@dataclass(frozen=True)
class FailedTask:
    """A fatal task as the summary shows it: its last error and the end of its stderr."""

    task_id: int
    name: str
    attempts: int
    error: str
    stderr_tail: str = ""


@dataclass(frozen=True)
class DistributorFacts:
    """A distributor that died: which, how, and the end of its log (already readable)."""

    cluster: str
    pid: int | None
    exit_code: int | None
    log_file: str | None
    last_lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunFacts:
    """Everything the summary of one run says, gathered once the run has ended.

    ``progress``: where the tasks were at the end. ``failed``: the first few fatal tasks and
    ``failed_total`` how many there are. ``fail_fast_task``: the task fail_fast stopped on.
    ``status_message``: what the server recorded with the run's last status (who stopped
    it). ``timeout_seconds``: the run's ``seconds_until_timeout``.
    """

    workflow_id: int
    workflow_name: str
    run_id: int
    status: WorkflowRunStatus
    ending: RunEnding
    elapsed_seconds: float
    progress: RunProgress | None
    timeout_seconds: float
    reason: str = ""
    failed: Sequence[FailedTask] = ()
    failed_total: int = 0
    fail_fast_task: FailedTask | None = None
    distributor: DistributorFacts | None = None
    status_message: str = ""
    extra: Sequence[str] = field(default_factory=tuple)


# --- progress ----------------------------------------------------------------------------------


def estimate_seconds_left(progress: RunProgress, elapsed: float) -> float | None:
    """Seconds until the unfinished tasks are done at this run's rate so far; None if unknown.

    The rate counts only tasks this run finished. Tasks behind a failed task count as
    remaining, so the estimate errs long after failures.
    """
    remaining = progress.total - progress.done - progress.failed
    if remaining <= 0:
        return 0.0
    if progress.newly_done <= 0 or elapsed <= 0:
        return None
    return remaining * elapsed / progress.newly_done


def progress_line(
    workflow_id: int, progress: RunProgress, elapsed: float, *, final: bool = False
) -> str:
    """``workflow 3: 40/53 done (75%), 2 running, 5 queued, 1 failed; 1m02s elapsed, ...``.

    ``final``: the run has ended, so no time is left to estimate.
    """
    percent = 100 * progress.done / progress.total if progress.total else 100.0
    line = (
        f"workflow {workflow_id}: {progress.done}/{progress.total} done ({percent:.0f}%), "
        f"{progress.running} running, {progress.queued} queued, {progress.failed} failed"
    )
    line += f"; {format_duration(elapsed)} elapsed"
    if progress.newly_done and elapsed > 0:
        line += f", {format_rate(progress.newly_done / elapsed)}"
    left = None if final else estimate_seconds_left(progress, elapsed)
    if left is not None and left > 0:
        line += f", about {format_duration(left)} left"
    return line


def format_rate(tasks_per_second: float) -> str:
    """``2.5 tasks/s``, or per minute or hour when slower."""
    if tasks_per_second >= 1:
        return f"{tasks_per_second:.1f} tasks/s"
    if tasks_per_second * 60 >= 1:
        return f"{tasks_per_second * 60:.1f} tasks/min"
    return f"{tasks_per_second * 3600:.1f} tasks/h"


def format_duration(seconds: float) -> str:
    """``4.0s``, ``1m02s``, ``2h05m``: short, and exact enough for a person."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = math.floor(seconds + 0.5)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"


# --- the summary -------------------------------------------------------------------------------


def summarize(facts: RunFacts) -> str:
    """The end-of-run summary: a headline, the counts, why, and what to run next."""
    if facts.ending is RunEnding.INTERRUPTED:
        return interrupted_line(facts.workflow_id, facts.run_id)
    lines = [_headline(facts)]
    if facts.status is not WorkflowRunStatus.DONE:
        if facts.progress is not None:
            lines.append(f"{_INDENT}tasks: {_counts(facts.progress)}")
        why, *details = _why(facts)
        lines.append(f"{_INDENT}{why}")
        lines.extend(f"{_INDENT}{line}" for line in details)
    lines.extend(f"{_INDENT}{line}" for line in facts.extra)
    lines.extend(_next_steps(facts))
    return "\n".join(lines)


def interrupted_line(workflow_id: int, run_id: int) -> str:
    """The one line a confirmed Ctrl-C ends with: what became of the run, and how to go on."""
    return (
        f"herdsman: workflow {workflow_id}: run {run_id} stopped at your request (Ctrl-C); its "
        f"running jobs are killed. Resume it with `herdsman workflow resume -w {workflow_id}` "
        "or run(resume=True)."
    )


def describe_exit(exit_code: int | None) -> str:
    """How a process ended, from its exit code (negative: the signal that killed it)."""
    if exit_code is None:
        return "it is still running"
    if exit_code < 0:
        number = -exit_code
        name = _SIGNAL_NAMES.get(number, "")
        return f"killed by signal {number}" + (f" ({name})" if name else "")
    return f"exit code {exit_code}"


_SIGNAL_NAMES = {1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM"}


def _headline(facts: RunFacts) -> str:
    name = f" ({facts.workflow_name})" if facts.workflow_name else ""
    took = format_duration(facts.elapsed_seconds)
    what = f"herdsman: workflow {facts.workflow_id}{name}"
    if facts.status is WorkflowRunStatus.DONE:
        total = facts.progress.total if facts.progress is not None else 0
        before = facts.progress.done - facts.progress.newly_done if facts.progress else 0
        earlier = f" ({before} were done before this run)" if before > 0 else ""
        tasks = f"all {total} tasks" if total != 1 else "its 1 task"
        return f"{what} is done: run {facts.run_id} finished {tasks}{earlier} in {took}"
    status = f"{facts.status.name.lower()} ({facts.status.value})"
    return f"{what}: run {facts.run_id} ended {status} after {took}"


def _counts(progress: RunProgress) -> str:
    parts = [f"{progress.done} done", f"{progress.failed} failed"]
    if progress.running:
        parts.append(f"{progress.running} running")
    if progress.queued:
        parts.append(f"{progress.queued} queued")
    if progress.waiting:
        parts.append(f"{progress.waiting} not started")
    return ", ".join(parts) + f" (of {progress.total})"


def _why(facts: RunFacts) -> list[str]:
    ending = facts.ending
    progress = facts.progress
    if ending is RunEnding.TASKS_FAILED:
        waiting = progress.waiting + progress.queued if progress is not None else 0
        behind = f"; {_tasks(waiting)} behind them never ran" if waiting else ""
        why = [f"why: {_tasks(facts.failed_total)} failed after using all attempts{behind}:"]
        return why + _failed_tasks(facts)
    if ending is RunEnding.FAIL_FAST:
        task = facts.fail_fast_task
        named = f"task {task.task_id} ({task.name})" if task is not None else "a task"
        why = [f"why: fail_fast is set and {named} failed, so the run stopped scheduling"]
        return why + (_failed_task(task) if task is not None else [])
    if ending is RunEnding.TIMEOUT:
        return [
            f"why: seconds_until_timeout={facts.timeout_seconds:g} was reached after "
            f"{format_duration(facts.elapsed_seconds)} with {_unfinished(progress)}",
            "jobs on this machine stopped with the run; jobs in a cluster's queue (Slurm) keep "
            "running, and a resume counts their results",
            *_failed_note(facts),
        ]
    if ending is RunEnding.DISTRIBUTOR_DIED:
        return _distributor_died(facts)
    if ending is RunEnding.STOPPED:
        who = facts.status_message or "stopped with `herdsman workflow stop`"
        return [f"why: the run was {who}; its running jobs were killed"]
    if ending is RunEnding.TAKEN_OVER:
        return ["why: a new run resumed the workflow and took it over"]
    if ending is RunEnding.ENDED_ELSEWHERE:
        said = facts.status_message or "no reason was recorded"
        return [f"why: the server ended the run ({said})"]
    return [f"why: {facts.reason}" if facts.reason else "why: unknown", *_failed_note(facts)]


def _failed_note(facts: RunFacts) -> list[str]:
    if not facts.failed_total:
        return []
    return [f"{_tasks(facts.failed_total)} failed on the way:", *_failed_tasks(facts)]


def _failed_tasks(facts: RunFacts) -> list[str]:
    lines: list[str] = []
    for task in list(facts.failed)[:FAILED_TASKS_SHOWN]:
        lines.extend(_failed_task(task))
    hidden = facts.failed_total - min(len(facts.failed), FAILED_TASKS_SHOWN)
    if hidden > 0:
        lines.append(f"{_INDENT}... and {hidden} more failed task{'s' if hidden != 1 else ''}")
    return lines


def _failed_task(task: FailedTask) -> list[str]:
    attempts = f"{task.attempts} attempt{'s' if task.attempts != 1 else ''}"
    lines = [f"{_INDENT}task {task.task_id} {task.name} ({attempts}): {_cut(task.error)}"]
    for line in _last_lines(task.stderr_tail, OUTPUT_LINES_SHOWN):
        lines.append(f"{_INDENT * 2}| {_cut(line)}")
    return lines


def _distributor_died(facts: RunFacts) -> list[str]:
    died = facts.distributor
    if died is None:
        return ["why: the distributor stopped, so no queued task could be launched"]
    pid = f", pid {died.pid}" if died.pid is not None else ""
    how = describe_exit(died.exit_code)
    lines = [
        f"why: the distributor for cluster {died.cluster}{pid} died ({how}), so no queued "
        "task could be launched"
    ]
    if died.last_lines:
        where = f" ({died.log_file})" if died.log_file else ""
        lines.append(f"its last log lines{where}:")
        lines.extend(f"{_INDENT}{_cut(line)}" for line in died.last_lines[-LOG_LINES_SHOWN:])
    elif died.log_file:
        lines.append(f"its log: {died.log_file} (empty)")
    return lines + _failed_note(facts)


def _next_steps(facts: RunFacts) -> list[str]:
    if facts.status is WorkflowRunStatus.DONE or facts.ending is RunEnding.TAKEN_OVER:
        return []
    workflow = facts.workflow_id
    steps = []
    if facts.failed_total:
        steps.append(f"herdsman workflow errors -w {workflow}    (every error, grouped)")
    steps.append(
        f"herdsman workflow resume -w {workflow}    (runs what is not done; in a script: "
        "run(resume=True))"
    )
    return [f"{_INDENT}next: {steps[0]}", *(f"{_INDENT}      {step}" for step in steps[1:])]


def _unfinished(progress: RunProgress | None) -> str:
    if progress is None:
        return "tasks unfinished"
    unfinished = progress.total - progress.done - progress.failed
    active = []
    if progress.running:
        active.append(f"{progress.running} running")
    if progress.queued:
        active.append(f"{progress.queued} queued")
    return f"{_tasks(unfinished)} unfinished" + (f" ({', '.join(active)})" if active else "")


def _tasks(count: int) -> str:
    return f"{count} task{'s' if count != 1 else ''}"


def _last_lines(text: str, count: int) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return lines[-count:]


def _cut(text: str) -> str:
    """The first non-empty line of ``text``, cut to :data:`LINE_WIDTH` characters."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= LINE_WIDTH else line[: LINE_WIDTH - 1] + "…"


def resume_line(task_status_counts: Mapping[str, int], *, removed: int = 0) -> str | None:
    """What a resume keeps, runs and removed, said before it starts; None when it keeps and
    removed nothing.

    Counted after the bind, which already sent changed tasks and their downstream back to run
    and removed the ``removed`` tasks the script no longer has (out of the counts), so the
    figures are what the run will do, not what the workflow was.
    """
    done = task_status_counts.get(TaskStatus.DONE.value, 0)
    if not done and not removed:
        return None
    total = sum(task_status_counts.values())
    gone = f"; {removed:,} removed, not in the script" if removed else ""
    return (
        f"resume: {done:,} of {total:,} tasks are done and kept; {total - done:,} to run{gone} "
        "(workflow.plan() or `herdsman workflow plan` says why each runs)"
    )
