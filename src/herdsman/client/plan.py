"""What a resume of a workflow would do, asked of the server before anything is written.

The server decides with the rule it binds by (:mod:`herdsman.server.domain.reuse`): within a
workflow (tool + ``workflow_args``) a task is its template's name and its node-arg values; a
done task is reused when its command and everything upstream of it are unchanged; new tasks,
done tasks whose command changed, unfinished tasks and every done task downstream of those
run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from herdsman.client import bind_requests, queries
from herdsman.client.identity import hash_text, hash_values63
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import PlanIn
from herdsman.core.statuses import TaskStatus

if TYPE_CHECKING:
    from herdsman.client.workflow import Workflow

__all__ = [
    "PLAN_ONLY_ENV",
    "ResumePlan",
    "TaskPlan",
    "plan_from_stored",
    "plan_only_target",
    "plan_workflow",
    "write_plan_and_exit",
]

# Set by ``herdsman workflow plan SCRIPT`` to a file: the script's first ``run()`` writes the
# plan of its workflow there (as JSON) and ends the script instead of running anything.
PLAN_ONLY_ENV = "HERDSMAN_PLAN_ONLY"

# Verdicts in the order a summary names them, with the words it uses.
_WORDS = {
    "reuse": "reused (done)",
    "new": "to run because new",
    "changed": "to run because their command changed",
    "unfinished": "to run because not done",
    "downstream": "to run because downstream of those",
}
# At most this many tasks are listed by name under a summary.
_LISTED = 20


@dataclass(frozen=True)
class TaskPlan:
    """One task's fate: its verdict and, where its command changed, the stored command."""

    name: str
    verdict: str
    command: str
    old_command: str | None = None


@dataclass(frozen=True)
class ResumePlan:
    """What ``run(resume=True)`` would do: counts per verdict and each task's verdict.

    ``workflow_id`` is None when no workflow has these ``workflow_args`` yet (every task is
    new); ``not_in_script`` counts stored tasks the script no longer creates, which the resume
    removes from the workflow (they stay in the database, for the record), and
    ``removed_names`` names the first of them.
    """

    workflow_id: int | None
    counts: dict[str, int]
    tasks: Sequence[TaskPlan]
    not_in_script: int = 0
    removed_names: Sequence[str] = ()

    @property
    def removed(self) -> int:
        """How many stored tasks the resume removes (not in the script)."""
        return self.not_in_script

    @property
    def to_run(self) -> int:
        return sum(count for verdict, count in self.counts.items() if verdict != "reuse")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line per verdict that occurs, as ``herdsman workflow plan`` prints them."""
        where = "a new workflow" if self.workflow_id is None else f"workflow {self.workflow_id}"
        lines = [f"resume plan for {where}: {self.to_run} of {self.total} tasks to run"]
        for verdict, words in _WORDS.items():
            if self.counts.get(verdict):
                lines.append(f"  {self.counts[verdict]:>8} {words}")
        if self.not_in_script:
            lines.append(f"  {self.not_in_script:>8} removed (stored tasks not in the script)")
        return "\n".join(lines)

    def details(self, limit: int = _LISTED) -> str:
        """The summary, then up to ``limit`` tasks that would run, with the reason, and up to
        ``limit`` that would be removed."""
        lines = [self.summary()]
        shown = [task for task in self.tasks if task.verdict != "reuse"]
        for task in shown[:limit]:
            line = f"  {task.verdict:<10} {task.name}"
            if task.old_command is not None:
                line += f": {task.old_command!r} -> {task.command!r}"
            lines.append(line)
        if len(shown) > limit:
            lines.append(f"  ... and {len(shown) - limit} more")
        for name in self.removed_names[:limit]:
            lines.append(f"  {'remove':<10} {name} (not in the script)")
        if self.not_in_script > min(limit, len(self.removed_names)):
            lines.append(
                f"  ... and {self.not_in_script - min(limit, len(self.removed_names))} more"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.details()


def plan_workflow(workflow: Workflow) -> ResumePlan:
    """Ask the server what binding ``workflow`` with ``resume`` would do; writes nothing."""
    workflow.validate()
    tasks = sorted(workflow.tasks.values(), key=attrgetter("creation_index"))
    position = {id(task): index for index, task in enumerate(tasks)}
    names = list(dict.fromkeys(task.template_version.template.name for task in tasks))
    template_index = {name: index for index, name in enumerate(names)}
    upstream: list[int] = []
    downstream: list[int] = []
    for task in tasks:
        for up in task.iter_upstream():
            upstream.append(position[id(up)])
            downstream.append(position[id(task)])
    commands = [task.command for task in tasks]
    reply = bind_requests.plan(
        workflow.requester,
        PlanIn(
            tool_version_id=workflow.tool.active_tool_version_id,
            workflow_args_hash=hash_text(workflow.workflow_args),
            template_names=names,
            templates=[template_index[task.template_version.template.name] for task in tasks],
            node_args_hashes=[hash_values63(task.node_values) for task in tasks],
            commands=commands,
            upstream=upstream,
            downstream=downstream,
        ),
    )
    return ResumePlan(
        workflow_id=reply.workflow_id,
        counts=dict(reply.counts),
        tasks=[
            TaskPlan(
                name=task.name,
                verdict=verdict,
                command=command,
                old_command=reply.old_commands.get(index),
            )
            for index, (task, verdict, command) in enumerate(
                zip(tasks, reply.verdicts, commands, strict=True)
            )
        ],
        not_in_script=reply.not_in_script,
        removed_names=list(reply.removed_names),
    )


def plan_from_stored(requester: Requester, workflow_id: int) -> ResumePlan:
    """What resuming the stored workflow (without a script) would do: its done tasks are
    reused, the others run."""
    detail = queries.workflow_detail(requester, workflow_id)
    done = detail.task_status_counts.get(TaskStatus.DONE.value, 0)
    counts = {verdict: 0 for verdict in _WORDS}
    counts["reuse"] = done
    counts["unfinished"] = sum(detail.task_status_counts.values()) - done
    return ResumePlan(workflow_id=workflow_id, counts=counts, tasks=[])


def plan_only_target() -> Path | None:
    """The file ``herdsman workflow plan SCRIPT`` asked this process to write its plan to."""
    value = os.environ.get(PLAN_ONLY_ENV)
    return Path(value) if value else None


def write_plan_and_exit(workflow: Workflow, target: Path) -> NoReturn:
    """Write the workflow's plan to ``target`` and end the script: nothing runs."""
    target.write_text(json.dumps(dataclasses.asdict(plan_workflow(workflow))))
    raise SystemExit(0)
