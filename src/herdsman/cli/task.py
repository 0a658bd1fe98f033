"""``herdsman task ...``: one task's attempts and neighbours, and the owner's status updates."""

from __future__ import annotations

import click
from rich.markup import escape

from herdsman.cli.common import (
    console,
    current_user,
    json_option,
    new_table,
    print_json,
    server_requester,
    task_option,
    workflow_option,
)
from herdsman.cli.formatting import duration, first_line, size, status_name
from herdsman.client import control, queries
from herdsman.core.lifecycle import OWNER_TASK_TARGETS
from herdsman.core.schemas.queries import NeighbourOut
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
@json_option
def status(task_ids: tuple[int, ...], as_json: bool) -> None:
    """Every attempt of each task: status, host, job id, exit code, usage and error."""
    with server_requester() as requester:
        found = [queries.task_attempts(requester, task_id) for task_id in task_ids]
    if as_json:
        print_json([item.model_dump(mode="json") for item in found])
        return
    for item in found:
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
            table.add_row(
                str(attempt.id),
                str(attempt.workflow_run_id),
                status_name(TaskInstanceStatus, attempt.status),
                escape(attempt.host or "-"),
                escape(attempt.distributor_id or "-"),
                "-" if attempt.exit_code is None else str(attempt.exit_code),
                duration(attempt.wall_time),
                duration(attempt.cpu_time),
                size(attempt.max_rss),
                escape(first_line(attempt.error, 60)),
            )
        console.print(table)
        if not item.attempts:
            console.print("  no attempts yet", highlight=False)


@task.command("update")
@task_option(multiple=True)
@workflow_option(positional=False)
@click.option(
    "-s",
    "--status",
    "new_status",
    type=click.Choice(sorted(_UPDATES), case_sensitive=False),
    required=True,
    help="DONE marks tasks done; REGISTERED resets them (and their downstream) to run again.",
)
@click.option("--recursive", is_flag=True, help="With DONE, also mark every upstream task done.")
@json_option
def update(
    task_ids: tuple[int, ...], workflow_id: int, new_status: str, recursive: bool, as_json: bool
) -> None:
    """Set tasks of a workflow that is not running to done or back to registered.

    Only the workflow's owner may. Resetting a task also resets every task downstream of it.
    """
    letter = _UPDATES[new_status.upper()]
    with server_requester() as requester:
        result = control.update_task_statuses(
            requester, workflow_id, task_ids, letter, user=current_user(), recursive=recursive
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
