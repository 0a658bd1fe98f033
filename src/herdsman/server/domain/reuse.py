"""The rule of a resumed bind: which tasks of a workflow that ran before are reused.

A workflow is identified by its tool version and ``workflow_args``; within it, a task is
identified by its task template's name and its node-arg values. Binding a script again with
``resume`` matches each of its tasks to the stored task of the same identity, and:

* a stored task that is done, with the same command, is **reused** (it does not run again);
* a task that is new (no stored task has its identity) runs (**new**);
* a stored done task whose command differs runs again with the new command (**changed**);
* a stored task that is not done runs, with the script's command, name, attempts and
  resources (**unfinished**);
* a done task downstream of any task that runs, in the new DAG, runs again (**downstream**):
  its inputs may have changed.

Tasks and dependencies may be added or removed; a changed command template gives its tasks new
nodes, to which their stored tasks move (the old DAG stays in the database). A stored task the
script no longer has is removed from the workflow (kept in the database, for the record: see
:mod:`herdsman.server.domain.removal`), and a downstream task loses its edge from it.
:func:`plan` computes the verdicts without writing; :func:`move_to_new_nodes`,
:func:`task_verdict` (applied by :func:`~herdsman.server.domain.binding.bind_tasks`) and
:func:`rerun_downstream` (at the end of the bind) apply the same rule to the stored rows.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence
from typing import cast

import structlog
from sqlalchemy import Table, and_, bindparam, select, update
from sqlalchemy.orm import Session, aliased

from herdsman.core.errors import PermissionDeniedError
from herdsman.core.schemas import client as schemas
from herdsman.core.statuses import TaskStatus
from herdsman.server.database import models
from herdsman.server.database.bulk import IN_CHUNK, chunked
from herdsman.server.database.feed import ChangeRecorder

__all__ = [
    "Verdict",
    "move_to_new_nodes",
    "plan",
    "propagate",
    "rerun_downstream",
    "reset_tasks",
    "task_verdict",
]

logger = structlog.get_logger(__name__)

_DONE = TaskStatus.DONE.value


class Verdict(enum.StrEnum):
    """What a resumed bind does with one task of the script."""

    REUSE = "reuse"
    NEW = "new"
    CHANGED = "changed"
    UNFINISHED = "unfinished"
    DOWNSTREAM = "downstream"


def task_verdict(stored_status: str | None, stored_command: str | None, command: str) -> Verdict:
    """The verdict of one task from its stored row alone (before the DAG is considered)."""
    if stored_status is None:
        return Verdict.NEW
    if stored_status != _DONE:
        return Verdict.UNFINISHED
    if stored_command != command:
        return Verdict.CHANGED
    return Verdict.REUSE


def propagate(
    verdicts: list[Verdict], upstream: Sequence[int], downstream: Sequence[int]
) -> list[Verdict]:
    """``verdicts`` with every reused task downstream of a task that runs marked DOWNSTREAM.

    ``upstream[i] -> downstream[i]`` are the edges, as positions in ``verdicts``.
    """
    children: dict[int, list[int]] = {}
    for up, down in zip(upstream, downstream, strict=True):
        children.setdefault(up, []).append(down)
    result = list(verdicts)
    queue = deque(i for i, verdict in enumerate(result) if verdict is not Verdict.REUSE)
    while queue:
        for child in children.get(queue.popleft(), ()):
            if result[child] is Verdict.REUSE:
                result[child] = Verdict.DOWNSTREAM
                queue.append(child)
    return result


def plan(
    session: Session, request: schemas.PlanIn, user: str, *, admin: bool = False
) -> schemas.PlanOut:
    """What binding the request's tasks with ``resume`` would do; writes nothing. Stored
    tasks the script does not have are counted (and the first of them named): the resume
    removes them."""
    workflow = session.scalars(
        select(models.Workflow).where(
            models.Workflow.tool_version_id == request.tool_version_id,
            models.Workflow.workflow_args_hash == request.workflow_args_hash,
        )
    ).first()
    stored: dict[tuple[str, int], tuple[str, str]] = {}
    names: dict[tuple[str, int], tuple[int, str]] = {}  # stored tasks not removed: id, name
    if workflow is not None:
        if workflow.user != user and not admin:
            raise PermissionDeniedError(
                f"workflow {workflow.id} belongs to {workflow.user}; only they or an admin may "
                "plan its resume",
                details={"workflow_id": workflow.id, "user": user},
            )
        rows = session.execute(
            select(
                models.TaskTemplate.name,
                models.Node.node_args_hash,
                models.Task.status,
                models.Task.command,
                models.Task.id,
                models.Task.name,
                models.Task.removed_date,
            )
            .select_from(models.Task)
            .join(models.Node, models.Node.id == models.Task.node_id)
            .join(
                models.TaskTemplateVersion,
                models.TaskTemplateVersion.id == models.Node.task_template_version_id,
            )
            .join(
                models.TaskTemplate,
                models.TaskTemplate.id == models.TaskTemplateVersion.task_template_id,
            )
            .where(models.Task.workflow_id == workflow.id)
        ).all()
        # A task an earlier resume removed is stored too: a script that has it again brings it
        # back with its status (see removal.keep_sent).
        for template_name, stored_hash, stored_status, stored_command, task_id, name, gone in rows:
            stored[(template_name, stored_hash)] = (stored_status, stored_command)
            if gone is None:
                names[(template_name, stored_hash)] = (task_id, name)
    verdicts: list[Verdict] = []
    old_commands: dict[int, str] = {}
    for index, (template, node_hash, command) in enumerate(
        zip(request.templates, request.node_args_hashes, request.commands, strict=True)
    ):
        identity = (request.template_names[template], node_hash)
        found = stored.get(identity)
        names.pop(identity, None)
        status, old_command = found if found is not None else (None, None)
        verdict = task_verdict(status, old_command, command)
        if verdict is Verdict.CHANGED and found is not None:
            old_commands[index] = found[1]
        verdicts.append(verdict)
    verdicts = propagate(verdicts, request.upstream, request.downstream)
    counts = {verdict.value: 0 for verdict in Verdict}
    for verdict in verdicts:
        counts[verdict.value] += 1
    return schemas.PlanOut(
        workflow_id=None if workflow is None else workflow.id,
        verdicts=[verdict.value for verdict in verdicts],
        old_commands=old_commands,
        counts=counts,
        not_in_script=len(names),
        removed_names=[name for _, name in sorted(names.values())[: schemas.PLAN_REMOVED_NAMES]],
    )


def move_to_new_nodes(
    session: Session, workflow_id: int, node_ids: Sequence[int], array_ids: Sequence[int]
) -> int:
    """Move stored tasks to the script's nodes of the same identity; answers how many moved.

    A task's node changes when its template's command template (or argument split) changes;
    its template name and node-arg values stay, and so it keeps its row, its attempts and its
    history. Only nodes without a task in the workflow are looked at.
    """
    task, node, version = models.Task, models.Node, models.TaskTemplateVersion
    present: set[int] = set()
    for part in chunked(node_ids, IN_CHUNK):
        present.update(
            session.scalars(
                select(task.node_id).where(task.workflow_id == workflow_id, task.node_id.in_(part))
            )
        )
    arrays = dict(zip(node_ids, array_ids, strict=True))
    missing = [node_id for node_id in dict.fromkeys(node_ids) if node_id not in present]
    if not missing:
        return 0
    wanted: dict[tuple[int, int], tuple[int, int]] = {}  # identity -> (node id, version id)
    for part in chunked(missing, IN_CHUNK):
        for node_id, template_id, node_hash, version_id in session.execute(
            select(node.id, version.task_template_id, node.node_args_hash, version.id)
            .join(version, version.id == node.task_template_version_id)
            .where(node.id.in_(part))
        ):
            wanted[(template_id, node_hash)] = (node_id, version_id)
    moves: list[dict[str, int]] = []
    hashes = sorted({node_hash for _, node_hash in wanted})
    for part in chunked(hashes, IN_CHUNK):
        rows = session.execute(
            select(task.id, version.task_template_id, node.node_args_hash, version.id)
            .select_from(task)
            .join(node, node.id == task.node_id)
            .join(version, version.id == node.task_template_version_id)
            .where(task.workflow_id == workflow_id, node.node_args_hash.in_(part))
            .order_by(task.id)
        ).all()
        for task_id, template_id, node_hash, version_id in rows:
            target = wanted.pop((template_id, node_hash), None)
            if target is None:
                continue
            if target[1] == version_id:  # already at a node of this version: not a move
                continue
            moves.append({"b_id": task_id, "b_node": target[0], "b_array": arrays[target[0]]})
    if moves:
        table = cast(Table, models.Task.__table__)
        session.connection().execute(
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values(node_id=bindparam("b_node"), array_id=bindparam("b_array")),
            moves,
        )
        logger.info("tasks_moved_to_new_nodes", workflow_id=workflow_id, tasks=len(moves))
    return len(moves)


def reset_tasks(
    session: Session, workflow_id: int, task_ids: Sequence[int], recorder: ChangeRecorder
) -> None:
    """Send done tasks back to run afresh (G, no attempts spent)."""
    now = models.utcnow()
    task = models.Task
    for part in chunked(task_ids, IN_CHUNK):
        before = session.execute(
            select(task.id, task.status, task.array_id, task.num_attempts)
            .where(task.id.in_(part))
            .order_by(task.id)
        ).tuples()
        moved = list(before)
        session.execute(
            update(task)
            .where(task.id.in_(part))
            .values(status=TaskStatus.REGISTERING.value, num_attempts=0, status_date=now),
            execution_options={"synchronize_session": False},
        )
        for task_id, status, array_id, attempts in moved:
            recorder.task(
                workflow_id,
                task_id,
                TaskStatus.REGISTERING,
                previous=status,
                array_id=array_id,
                attempts=attempts,
                attempts_after=0,
            )


def rerun_downstream(session: Session, workflow_id: int, recorder: ChangeRecorder) -> int:
    """Reset every done task with an upstream task that is not done, level by level, in the
    workflow's DAG; answers how many were reset."""
    dag_id = session.scalars(
        select(models.Workflow.dag_id).where(models.Workflow.id == workflow_id)
    ).one()
    up, down, edge = aliased(models.Task), aliased(models.Task), models.Edge
    query = (
        select(down.id)
        .select_from(edge)
        .join(up, and_(up.workflow_id == workflow_id, up.node_id == edge.upstream_node_id))
        .join(down, and_(down.workflow_id == workflow_id, down.node_id == edge.downstream_node_id))
        .where(
            edge.dag_id == dag_id,
            up.status != _DONE,
            down.status == _DONE,
            up.removed_date.is_(None),
            down.removed_date.is_(None),
        )
        .distinct()
    )
    total = 0
    while True:
        ids = sorted(session.scalars(query).all())
        if not ids:
            break
        reset_tasks(session, workflow_id, ids, recorder)
        total += len(ids)
    if total:
        logger.info("downstream_tasks_rerun", workflow_id=workflow_id, tasks=total)
    return total
