"""``herdsman workflow ...``: watch a workflow, find its logs and errors, and steer it.

Each command parses its options, calls :mod:`herdsman.client.queries` or
:mod:`herdsman.client.control`, and prints a table (or JSON with ``--json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from herdsman.cli.common import (
    console,
    error_console,
    exit_with,
    json_option,
    new_table,
    output_option,
    print_json,
    server_requester,
    workflow_option,
)
from herdsman.cli.formatting import (
    duration,
    first_line,
    last_lines,
    plural,
    status_name,
    timestamp,
)
from herdsman.client import control, queries
from herdsman.core.errors import InvalidInputError, RunEndedEarlyWarning
from herdsman.core.limits import UNLIMITED
from herdsman.core.schemas import API_PREFIX
from herdsman.core.schemas.queries import ErrorGroupOut, WorkflowSummaryOut
from herdsman.core.statuses import TaskStatus, WorkflowRunStatus, WorkflowStatus

__all__ = ["jobmon_workflow_resume", "workflow"]

_LIMIT = click.IntRange(min=1, max=10_000)


@click.group()
def workflow() -> None:
    """Watch and steer workflows."""


@workflow.command("status")
@workflow_option(multiple=True, required=False)
@click.option("-u", "--user", default=None, help="Only this user's workflows [default: you].")
@click.option(
    "-l", "--limit", type=_LIMIT, default=5, show_default=True, help="Newest workflows shown."
)
@output_option
def status(workflow_ids: tuple[int, ...], user: str | None, limit: int, as_json: bool) -> None:
    """Per workflow: status and its tasks counted by state.

    Without -w it shows your newest workflows; with -w, the workflows named (of any user
    unless -u is given).
    """
    with server_requester() as requester:
        if user is None and not workflow_ids:
            user = queries.whoami(requester).user
        found = queries.workflow_summaries(requester, workflow_ids, user, limit)
    if as_json:
        print_json(found)
        return
    if not found.workflows:
        console.print("no workflows found", highlight=False)
        return
    print_summaries(found.workflows)


@workflow.command("show")
@workflow_option(required=False)
@click.option(
    "--archive",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Read the workflow from this archive (herdsman server prune writes them).",
)
@json_option
def show(workflow_id: int | None, archive: Path | None, as_json: bool) -> None:
    """One workflow's summary, from the server or from an archive of a removed workflow.

    With --archive it shows the summary as it stood when the workflow was archived, and
    below it how many rows of each kind the archive holds (checked against its trailer).
    """
    if (workflow_id is None) == (archive is None):
        raise click.UsageError("give a workflow id or --archive FILE (one of them)")
    if archive is not None:
        from herdsman.core.archive import read_archive

        try:
            contents = read_archive(archive)
        except InvalidInputError as error:
            raise click.ClickException(error.message) from None
        if as_json:
            print_json(
                {
                    "archive": str(contents.path),
                    "archived_date": contents.archived_date,
                    "summary": contents.summary.model_dump(mode="json"),
                    "rows": contents.rows,
                }
            )
            return
        print_summaries([contents.summary])
        console.print(
            f"archived {timestamp(contents.archived_date)} to {contents.path}",
            markup=False,
            highlight=False,
        )
        rows = new_table("TABLE", ">ROWS")
        for table, count in contents.rows.items():
            rows.add_row(table, f"{count:,}")
        console.print(rows)
        return
    assert workflow_id is not None
    with server_requester() as requester:
        found = queries.workflow_summaries(requester, (workflow_id,), None, 1)
    if as_json:
        print_json(found.workflows[0] if found.workflows else None)
        return
    if not found.workflows:
        raise click.ClickException(f"workflow {workflow_id} not found")
    print_summaries(found.workflows)


def print_summaries(rows: list[WorkflowSummaryOut]) -> None:
    """The table of ``herdsman workflow status``: one line per workflow."""
    table = new_table(
        ">WF ID",
        "NAME",
        "STATUS",
        ">TASKS",
        ">PENDING",
        ">RUNNING",
        ">DONE",
        ">FATAL",
        ">RETRIES",
        "SUBMITTED",
        ">ELAPSED",
    )
    for row in rows:
        table.add_row(
            str(row.id),
            escape(row.name) if row.name else f"[dim]{escape(unnamed(row))}[/]",
            status_name(WorkflowStatus, row.status),
            str(row.tasks),
            str(row.pending),
            str(row.running),
            str(row.done),
            str(row.fatal),
            str(row.retries),
            timestamp(row.submitted),
            duration(row.elapsed_seconds),
        )
    console.print(table)


def unnamed(row: WorkflowSummaryOut) -> str:
    """What identifies a workflow without a name: its tool and workflow_args, shortened."""
    args = row.workflow_args if len(row.workflow_args) <= 24 else row.workflow_args[:23] + "…"
    return f"{row.tool}: {args}" if row.tool else args


@workflow.command("tasks")
@workflow_option()
@click.option(
    "-s",
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS",
    help="PENDING, RUNNING, DONE, FATAL, or a task status name or letter (repeatable).",
)
@click.option("-l", "--limit", type=_LIMIT, default=100, show_default=True, help="Tasks shown.")
@output_option
def tasks(workflow_id: int, statuses: tuple[str, ...], limit: int, as_json: bool) -> None:
    """The workflow's tasks with their status and attempts, by task id."""
    letters = queries.task_statuses(statuses)
    with server_requester() as requester:
        page = queries.workflow_tasks(requester, workflow_id, letters, limit)
    if as_json:
        print_json(page)
        return
    table = new_table(">TASK ID", "NAME", "STATUS", ">ATTEMPTS")
    for task in page.tasks:
        table.add_row(
            str(task.id),
            escape(task.name),
            status_name(TaskStatus, task.status),
            f"{task.num_attempts}/{task.max_attempts}",
        )
    console.print(table)
    console.print(f"{len(page.tasks)} of {page.count} tasks shown", highlight=False)


@workflow.command("resume")
@workflow_option()
@click.option(
    "--cold",
    "--reset-running-jobs",
    "mode",
    flag_value="cold",
    default=True,
    help="Kill the jobs an earlier run left running (the default).",
)
@click.option(
    "--hot", "mode", flag_value="hot", help="Let jobs still running finish, and count them."
)
@click.option(
    "--timeout",
    "--execution-timeout",
    "--seconds-until-timeout",
    "timeout",
    type=click.IntRange(min=1),
    default=36_000,
    show_default=True,
    help="Seconds the resumed run may take.",
)
@click.option(
    "--resume-timeout",
    type=click.IntRange(min=0),
    default=300,
    show_default=True,
    help="Seconds to wait for an earlier run's jobs to confirm their kills before taking over.",
)
@click.option(
    "-c",
    "--cluster",
    "--cluster_name",
    "cluster",
    default=None,
    metavar="NAME",
    help="Check that the workflow's tasks run on this cluster (each resumes on its own).",
)
@click.option(
    "--keep-resources",
    "--use-original-resources",
    "keep_resources",
    is_flag=True,
    help="Do not scale the requests of tasks last killed for memory or time.",
)
@click.option(
    "--force-cleanup",
    is_flag=True,
    help="Take over at once, recording an earlier run's unconfirmed kills as such.",
)
@output_option
def resume(
    workflow_id: int,
    mode: str,
    timeout: int,
    resume_timeout: int,
    cluster: str | None,
    keep_resources: bool,
    force_cleanup: bool,
    as_json: bool,
) -> None:
    """Run the workflow again from the database, in this process, until it ends.

    Done tasks are kept; --cold (the default) kills what an earlier run left running, --hot
    lets it finish. Tasks whose last attempt was killed for memory or time ask for more, as
    after a resource kill during a run (--keep-resources: as before). Progress shows on
    stderr (a bar at a terminal, a line every 30 s otherwise), then a summary of how the run
    ended. The exit status is 0 only if the workflow finishes done, 130 after Ctrl-C.
    """
    resume_and_report(
        workflow_id,
        cold=mode == "cold",
        seconds_until_timeout=timeout,
        resume_timeout=resume_timeout,
        cluster=cluster,
        increase_resources=not keep_resources,
        force_cleanup=force_cleanup,
        as_json=as_json,
    )


@click.command("workflow_resume", hidden=True)
@workflow_option()
@click.option(
    "-c", "--cluster_name", "--cluster", "cluster", default=None, metavar="NAME",
    help="A cluster the workflow's tasks run on (each task resumes on its own).",
)  # fmt: skip
@click.option(
    "--reset-running-jobs",
    "--reset-running",
    "reset_running_jobs",
    is_flag=True,
    help="Kill the jobs an earlier run left running; without it they may finish.",
)
@click.option(
    "-t",
    "--timeout",
    type=click.IntRange(min=0),
    default=180,
    show_default=True,
    help="Seconds to wait for an earlier run's jobs to confirm their kills.",
)
@click.option(
    "--seconds-until-timeout",
    "--execution-timeout",
    "seconds_until_timeout",
    type=click.IntRange(min=1),
    default=36_000,
    show_default=True,
    help="Seconds the resumed run may take.",
)
@click.option(
    "--use-original-resources",
    "--keep-resources",
    "keep_resources",
    is_flag=True,
    help="Do not scale the requests of tasks last killed for memory or time.",
)
@click.option("--force-cleanup", is_flag=True, help="Take over at once (see workflow resume).")
@output_option
def jobmon_workflow_resume(
    workflow_id: int,
    cluster: str | None,
    reset_running_jobs: bool,
    timeout: int,
    seconds_until_timeout: int,
    keep_resources: bool,
    force_cleanup: bool,
    as_json: bool,
) -> None:
    """Jobmon's workflow_resume, with its options and their meanings: -t is how long to wait
    for the workflow to become resumable, and running jobs are left to finish unless
    --reset-running-jobs is given. `herdsman workflow resume` is herdsman's own."""
    error_console.print(
        "note: `workflow_resume` takes Jobmon's options; herdsman's own command is "
        "`herdsman workflow resume`",
        highlight=False,
    )
    resume_and_report(
        workflow_id,
        cold=reset_running_jobs,
        seconds_until_timeout=seconds_until_timeout,
        resume_timeout=timeout,
        cluster=cluster,
        increase_resources=not keep_resources,
        force_cleanup=force_cleanup,
        as_json=as_json,
    )


def resume_and_report(
    workflow_id: int,
    *,
    cold: bool,
    seconds_until_timeout: int,
    resume_timeout: int,
    cluster: str | None,
    increase_resources: bool,
    force_cleanup: bool,
    as_json: bool,
) -> None:
    """Resume the workflow here, print how its run ended, and exit 1 unless it is done."""
    from herdsman.client.execution import resume_workflow_from_id

    with server_requester() as requester, warnings.catch_warnings():
        # The summary on stderr says why a run ended early; Python's warning would repeat it.
        warnings.simplefilter("ignore", RunEndedEarlyWarning)
        final = resume_workflow_from_id(
            workflow_id,
            reset_running_jobs=cold,
            seconds_until_timeout=seconds_until_timeout,
            resume_timeout=resume_timeout,
            cluster_name=cluster,
            increase_resources=increase_resources,
            force_cleanup=force_cleanup,
            progress=True,
            requester=requester,
        )
    if as_json:
        print_json({"workflow_id": workflow_id, "status": final})
    else:
        console.print(
            f"workflow {workflow_id}: the resumed run ended "
            f"{status_name(WorkflowRunStatus, final)} ({final})",
            highlight=False,
        )
    if final != WorkflowRunStatus.DONE.value:
        exit_with(1)


@workflow.command("plan", context_settings={"ignore_unknown_options": True})
@click.option(
    "-w",
    "--workflow-id",
    type=click.IntRange(min=1),
    default=None,
    help="A stored workflow: what resuming it from the database would run.",
)
@json_option
@click.option("--all", "show_all", is_flag=True, help="List every task that would run.")
@click.argument("target", required=False)
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
def plan(
    workflow_id: int | None,
    as_json: bool,
    show_all: bool,
    target: str | None,
    script_args: tuple[str, ...],
) -> None:
    """Say what a resume would do, before anything runs: tasks reused, and tasks to run
    because new, because their command changed, because not done, or because downstream of
    those.

    TARGET is the workflow's Python script (with its arguments): it runs until its first
    run(), which writes the plan instead of running; nothing is bound or run. A workflow id
    (TARGET or -w) plans a resume from the database alone (`herdsman workflow resume`).
    """
    from herdsman.client.plan import ResumePlan, TaskPlan, plan_from_stored

    if workflow_id is None and target is not None and target.isdigit():
        workflow_id = int(target)
    if workflow_id is not None:
        with server_requester() as requester:
            found = plan_from_stored(requester, workflow_id)
    elif target is not None:
        raw = _plan_of_script(target, script_args)
        tasks = [TaskPlan(**task) for task in raw.pop("tasks")]
        found = ResumePlan(**raw, tasks=tasks)
    else:
        raise click.UsageError("give the workflow's script, or a workflow id with -w")
    if as_json:
        print_json(dataclasses.asdict(found))
        return
    click.echo(found.details(limit=len(found.tasks) if show_all else 20))


def _plan_of_script(script: str, arguments: tuple[str, ...]) -> dict[str, Any]:
    """Run the script with the plan-only switch; its output goes to stderr."""
    from herdsman.client.plan import PLAN_ONLY_ENV

    with tempfile.TemporaryDirectory(prefix="herdsman-plan-") as directory:
        target = Path(directory) / "plan.json"
        done = subprocess.run(
            [sys.executable, script, *arguments],
            env={**os.environ, PLAN_ONLY_ENV: str(target)},
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,
            check=False,
        )
        if not target.exists():
            raise click.ClickException(
                f"{script} ended (exit status {done.returncode}) without calling run() on a "
                "workflow, so there is nothing to plan"
            )
        plan: dict[str, Any] = json.loads(target.read_text())
        return plan


@workflow.command("stop")
@workflow_option()
@json_option
def stop(workflow_id: int, as_json: bool) -> None:
    """Stop the workflow's run; its running jobs are killed. Resume it later to go on."""
    with server_requester() as requester:
        stopped = control.stop_workflow(requester, workflow_id)
    if as_json:
        print_json(stopped)
        return
    console.print(
        f"workflow {workflow_id}: run {stopped.workflow_run_id} is "
        f"{status_name(WorkflowRunStatus, stopped.status)}; its jobs are being killed",
        highlight=False,
    )


@workflow.command("reset")
@workflow_option()
@click.option(
    "-p", "--partial", "--partial_reset", "partial", is_flag=True,
    help="Keep done tasks done; reset only the others.",
)  # fmt: skip
@json_option
def reset(workflow_id: int, partial: bool, as_json: bool) -> None:
    """Reset a workflow whose last run failed, so that a resume runs its tasks again.

    Only the workflow's owner may. Without --partial every task runs again, done ones too.
    """
    with server_requester() as requester:
        result = control.reset_workflow(requester, workflow_id, partial=partial)
    if as_json:
        print_json(result)
        return
    console.print(
        f"workflow {workflow_id}: tasks reset: {len(result.changed_task_ids)}; "
        f"run them with `herdsman workflow resume -w {workflow_id}`",
        highlight=False,
    )


@workflow.command("concurrency")
@workflow_option()
@click.option(
    "-m",
    "--max-tasks",
    "--max_tasks",
    "max_tasks",
    type=click.IntRange(min=0),
    required=True,
    help="Most tasks active at once; 0 pauses launching.",
)
@click.option("--template", default=None, help="Limit only this task template's tasks.")
@json_option
def concurrency(workflow_id: int, max_tasks: int, template: str | None, as_json: bool) -> None:
    """Change how many tasks may run at once, while the workflow runs (or before a resume).

    The running swarm applies it at once (through the change feed); nothing running is
    killed. A template's tasks are bound by the workflow's limit and by the template's own
    limit if it has one (by default none).
    """
    with server_requester() as requester:
        limits = control.set_max_concurrently_running(
            workflow_id, max_tasks, task_template_name=template, requester=requester
        )
    if as_json:
        print_json(limits)
        return
    what = f"task template {template!r}" if template else "the workflow"
    console.print(
        f"workflow {workflow_id}: at most {max_tasks} tasks of {what} at once "
        f"(workflow limit {_limit_text(limits.max_concurrently_running)})",
        highlight=False,
    )


def _limit_text(limit: int) -> str:
    return "unlimited" if limit >= UNLIMITED else str(limit)


@workflow.command("logs")
@workflow_option()
@click.option("--template", default=None, help="Only this task template's attempts.")
@click.option("--limit", type=_LIMIT, default=100, show_default=True, help="Attempts shown.")
@json_option
def logs(workflow_id: int, template: str | None, limit: int, as_json: bool) -> None:
    """Where each attempt wrote its stdout and stderr, newest first."""
    with server_requester() as requester:
        found = queries.log_paths(requester, workflow_id, template, limit)
    if as_json:
        print_json(found)
        return
    table = new_table(">TASK ID", "TEMPLATE", ">INSTANCE", "STATUS", "STDOUT", "STDERR")
    for row in found.instances:
        table.add_row(
            str(row.task_id),
            escape(row.task_template),
            str(row.task_instance_id),
            row.status,
            escape(row.stdout_path or "-"),
            escape(row.stderr_path or "-"),
        )
    console.print(table)
    console.print(f"{len(found.instances)} of {found.count} attempts shown", highlight=False)


@workflow.command("errors")
@workflow_option()
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=20,
    show_default=True,
    help="Groups shown, largest first.",
)
@click.option(
    "--lines",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Last lines of each group's sample stderr shown.",
)
@click.option("--full", is_flag=True, help="The sample's whole stored stderr and stdout.")
@json_option
def errors(workflow_id: int, limit: int, lines: int, full: bool, as_json: bool) -> None:
    """The workflow's errors grouped by signature, with counts and a sample of each.

    Errors that differ only in numbers, paths, hex strings, ids and timestamps form one group;
    each group shows its exit class (command error, out of memory, over time, node failure,
    killed), how many errors and tasks it holds, when it was first and last seen, and its
    newest error with the end of that attempt's stderr.
    """
    with server_requester() as requester:
        found = queries.error_groups(
            requester, workflow_id, limit=limit, tail_lines=0 if full else lines
        )
    if as_json:
        print_json(found)
        return
    if not found.groups:
        console.print(f"workflow {workflow_id} has no errors", highlight=False)
        return
    table = new_table(">COUNT", "TASKS", "LATEST", "SAMPLE")
    for group in found.groups:
        table.add_row(
            str(group.count),
            _task_ids_shown(group),
            timestamp(group.last_seen),
            escape(first_line(group.sample)),
        )
    console.print(table)
    for number, group in enumerate(found.groups, start=1):
        _print_group(number, group, full=full)
    shown = f" ({len(found.groups)} shown)" if found.group_count > len(found.groups) else ""
    console.print(
        f"\n{plural(found.count, 'error')} in {plural(found.group_count, 'group')}{shown}",
        highlight=False,
    )


def _task_ids_shown(group: ErrorGroupOut) -> str:
    shown = ", ".join(str(task_id) for task_id in group.task_ids[:5])
    if group.tasks > 5:
        shown += f" (+{group.tasks - 5})"
    return shown


def _print_group(number: int, group: ErrorGroupOut, *, full: bool) -> None:
    """One group in full: its class and span, its pattern, its newest error and output."""
    newest = group.newest
    console.print(
        f"\n[bold]group {number}[/]: {escape(group.exit_class)}, "
        f"{plural(group.count, 'error')} of {plural(group.tasks, 'task')}, "
        f"first {timestamp(group.first_seen)}, last {timestamp(group.last_seen)}",
        highlight=False,
    )
    console.print(f"  pattern: {escape(group.pattern)}", highlight=False)
    console.print(
        f"  newest: task {newest.task_id} ({escape(newest.task_name)}), "
        f"instance {newest.task_instance_id}: {escape(first_line(newest.message, 200))}",
        highlight=False,
    )
    streams = [("stderr", newest.stderr_tail)]
    if full:
        streams.append(("stdout", newest.stdout_tail))
    for name, text in streams:
        if not text.strip():
            console.print(f"  {name}: (empty)", highlight=False)
            continue
        console.print(f"  {name}:", highlight=False)
        for line in last_lines(text, None):
            console.print(f"    {escape(line)}", highlight=False)


@workflow.command("history")
@workflow_option()
@click.option("--limit", type=_LIMIT, default=100, show_default=True, help="Newest entries.")
@json_option
def history(workflow_id: int, limit: int, as_json: bool) -> None:
    """Who changed the workflow, when and how — refused attempts included."""
    with server_requester() as requester:
        found = queries.workflow_history(requester, workflow_id, limit)
    if as_json:
        print_json(found)
        return
    if not found.entries:
        console.print(f"workflow {workflow_id}: no changes recorded", highlight=False)
        return
    table = new_table("TIME (UTC)", "USER", "REQUEST", ">ANSWER", "MESSAGE")
    for entry in found.entries:
        table.add_row(
            f"{entry.time:%Y-%m-%d %H:%M:%S}",
            escape(f"{entry.user} ({entry.role})" if entry.user else "-"),
            escape(f"{entry.method} {entry.path.removeprefix(API_PREFIX)}"),
            str(entry.status_code),
            escape(entry.message),
        )
    console.print(table)
