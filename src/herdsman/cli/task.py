"""``herdsman task ...``: one task's attempts and neighbours, and the owner's status updates."""

from __future__ import annotations

import click
from rich.markup import escape

from herdsman.cli.common import (
    console,
    json_option,
    new_table,
    output_option,
    print_json,
    server_requester,
    task_option,
    workflow_option,
)
from herdsman.cli.formatting import duration, first_line, last_lines, size, status_name
from herdsman.client import control, queries
from herdsman.core.lifecycle import OWNER_TASK_TARGETS
from herdsman.core.schemas.queries import NeighbourOut, TaskAttemptsOut
from herdsman.core.statuses import TaskInstanceStatus, TaskStatus, WorkflowStatus

__all__ = ["task"]

# What users may set, by name or letter, as the letter the server takes. REGISTERED is the
# name the older command set used for REGISTERING.
_UPDATES = {
    **{target.name: target.value for target in OWNER_TASK_TARGETS},
    **{target.value: target.value for target in OWNER_TASK_TARGETS},
    "REGISTERED": TaskStatus.REGISTERING.value,
}


@click.group()
def task() -> None:
    """Inspect tasks and change their status."""


@task.command("status")
@task_option(multiple=True)
@click.option(
    "--lines",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Last lines of each attempt's stdout and stderr shown.",
)
@click.option("--full", is_flag=True, help="All the output kept (the last 10,000 characters).")
@click.option(
    "-s",
    "--status",
    "statuses",
    multiple=True,
    metavar="STATUS",
    help="Only tasks in PENDING, RUNNING, DONE, FATAL, or a task status name or letter "
    "(repeatable).",
)
@output_option
def status(
    task_ids: tuple[int, ...], lines: int, full: bool, statuses: tuple[str, ...], as_json: bool
) -> None:
    """Every attempt of each task: status, where it ran, how it ended, what it requested and
    used, its error, and the end of its stderr and stdout."""
    tail_lines = 0 if full else lines
    letters = set(queries.task_statuses(statuses))
    with server_requester() as requester:
        found = [queries.task_attempts(requester, task_id, tail_lines) for task_id in task_ids]
    if letters:
        found = [item for item in found if item.status in letters]
    if as_json:
        print_json([item.model_dump(mode="json") for item in found])
        return
    for item in found:
        _print_attempts(item)


def _print_attempts(item: TaskAttemptsOut) -> None:
    """The attempts' table, then the end of each attempt's stderr and stdout.

    WALL and MAX RSS show what the attempt used over what it requested (``-`` when it named
    no runtime or memory); ERROR starts with the attempt's exit class.
    """
    table = new_table(
        ">INSTANCE",
        ">RUN",
        "STATUS",
        "HOST",
        "JOB ID",
        ">EXIT",
        ">WALL",
        ">CPU",
        ">MAX RSS",
        "ERROR",
        title=(
            f"task {item.task_id} ({escape(item.name)}) of workflow {item.workflow_id}: "
            f"{status_name(TaskStatus, item.status)}"
        ),
    )
    for attempt in item.attempts:
        error = first_line(attempt.error, 60)
        if attempt.exit_class and error:
            error = f"{attempt.exit_class}: {error}"
        table.add_row(
            str(attempt.id),
            str(attempt.workflow_run_id),
            status_name(TaskInstanceStatus, attempt.status),
            escape(attempt.host or "-"),
            escape(attempt.distributor_id or "-"),
            "-" if attempt.exit_code is None else str(attempt.exit_code),
            f"{duration(attempt.wall_time)} / {duration(attempt.requested_runtime)}",
            duration(attempt.cpu_time),
            f"{size(attempt.max_rss)} / {size(attempt.requested_memory)}",
            escape(error),
        )
    console.print(table)
    if not item.attempts:
        console.print("  no attempts yet", highlight=False)
    for attempt in item.attempts:
        for name, text in (("stderr", attempt.stderr_tail), ("stdout", attempt.stdout_tail)):
            if not text.strip():
                continue
            console.print(f"instance {attempt.id} {name}:", highlight=False)
            for line in last_lines(text, None):
                console.print(f"  {escape(line)}", highlight=False)


@task.command("update")
@task_option(multiple=True)
@workflow_option(positional=False)
@click.option(
    "-s",
    "--status",
    "--new_status",
    "new_status",
    type=click.Choice(sorted(_UPDATES), case_sensitive=False),
    required=True,
    help="DONE marks tasks done; REGISTERED resets them (and their downstream) to run again.",
)
@click.option(
    "-r", "--recursive", is_flag=True, help="With DONE, also mark every upstream task done."
)
@json_option
def update(
    task_ids: tuple[int, ...], workflow_id: int, new_status: str, recursive: bool, as_json: bool
) -> None:
    """Set tasks of a workflow that is not running to done or back to registered.

    Only the workflow's owner may. Resetting a task also resets every task downstream of it;
    resetting a task of a done workflow makes the workflow failed again, ready to resume.
    """
    letter = _UPDATES[new_status.upper()]
    with server_requester() as requester:
        result = control.update_task_statuses(
            requester, workflow_id, task_ids, letter, recursive=recursive
        )
    if as_json:
        print_json(result)
        return
    changed = result.changed_task_ids
    listed = ", ".join(str(i) for i in changed[:20]) + (" …" if len(changed) > 20 else "")
    console.print(
        f"tasks set to {status_name(TaskStatus, letter)}: {len(changed)}"
        + (f" ({listed})" if changed else "")
        + f"; workflow {workflow_id} is {status_name(WorkflowStatus, result.workflow_status)}",
        highlight=False,
    )


@task.command("dependencies")
@task_option()
@json_option
def dependencies(task_id: int, as_json: bool) -> None:
    """The task's upstream and downstream tasks with their statuses."""
    with server_requester() as requester:
        found = queries.task_dependencies(requester, task_id)
    if as_json:
        print_json(found)
        return
    _print_neighbours(f"upstream of task {task_id}", found.upstream)
    _print_neighbours(f"downstream of task {task_id}", found.downstream)


def _print_neighbours(title: str, rows: list[NeighbourOut]) -> None:
    table = new_table(">TASK ID", "NAME", "STATUS", title=f"{title} ({len(rows)})")
    for row in rows:
        table.add_row(str(row.id), escape(row.name), status_name(TaskStatus, row.status))
    console.print(table)
