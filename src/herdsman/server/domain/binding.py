"""Domain functions behind the bind routes. Each takes a Session and never commits.

The callers (route handlers) own the unit of work; these functions only read and write rows.
All of them are get-or-create: running one twice with the same input returns the same ids and
writes nothing the second time, which is what makes a retried or resumed bind safe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any, TypeVar, cast

import structlog
from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from herdsman.core import lifecycle
from herdsman.core.errors import (
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    WorkflowAlreadyExists,
)
from herdsman.core.schemas import client as schemas
from herdsman.core.statuses import TaskStatus, WorkflowStatus
from herdsman.server.database import models, sql
from herdsman.server.database.bulk import IN_CHUNK, chunked, insert_ignore, lookup_ids, lookup_rows
from herdsman.server.database.feed import ChangeRecorder
from herdsman.server.database.task_counts import recount_workflow
from herdsman.server.domain import removal, reuse, runs

__all__ = [
    "bind_arrays",
    "bind_edges",
    "bind_nodes",
    "bind_resources",
    "bind_tasks",
    "complete_dag",
    "finish_workflow_bind",
    "get_or_create_dag",
    "get_or_create_template",
    "get_or_create_template_version",
    "get_or_create_tool",
    "get_or_create_workflow",
    "new_tool_version",
]

logger = structlog.get_logger(__name__)

M = TypeVar("M")

_LIVE_RUN_STATUSES = lifecycle.statuses_of(lifecycle.LIVE_WORKFLOW_RUN_STATUSES)


def get_or_create_tool(session: Session, name: str) -> schemas.ToolOut:
    """The tool called ``name`` with its versions; a new tool gets its first version."""
    now = sql.timestamp(session, models.utcnow())
    insert_ignore(session, models.Tool, ("name", "created_date"), [(name, now)])
    tool_id = session.scalars(select(models.Tool.id).where(models.Tool.name == name)).one()
    versions = _tool_version_ids(session, tool_id)
    if not versions:
        versions = [new_tool_version(session, tool_id, None)]
    return schemas.ToolOut(id=tool_id, name=name, version_ids=versions)


def new_tool_version(session: Session, tool_id: int, request_key: str | None) -> int:
    """A new version of the tool; the same ``request_key`` again answers the same version."""
    _require(session, models.Tool, tool_id, "tool_id")
    if request_key is not None:
        existing = session.scalar(
            select(models.ToolVersion.id).where(
                models.ToolVersion.tool_id == tool_id,
                models.ToolVersion.request_key == request_key,
            )
        )
        if existing is not None:
            return existing
    version = models.ToolVersion(tool_id=tool_id, request_key=request_key)
    session.add(version)
    session.flush()
    return version.id


def _tool_version_ids(session: Session, tool_id: int) -> list[int]:
    query = select(models.ToolVersion.id).where(models.ToolVersion.tool_id == tool_id)
    return list(session.scalars(query.order_by(models.ToolVersion.id)).all())


def get_or_create_template(session: Session, request: schemas.TaskTemplateIn) -> int:
    _require(session, models.ToolVersion, request.tool_version_id, "tool_version_id")
    insert_ignore(
        session,
        models.TaskTemplate,
        ("tool_version_id", "name"),
        [(request.tool_version_id, request.name)],
    )
    query = select(models.TaskTemplate.id).where(
        models.TaskTemplate.tool_version_id == request.tool_version_id,
        models.TaskTemplate.name == request.name,
    )
    return session.scalars(query).one()


def template_version_hash(request: schemas.TaskTemplateVersionIn) -> str:
    """Identity of a template version: its command template and its split of the arguments."""
    encoded = json.dumps(
        [request.command_template, request.node_args, request.task_args, request.op_args]
    )
    return hashlib.sha256(encoded.encode()).hexdigest()


def get_or_create_template_version(
    session: Session, request: schemas.TaskTemplateVersionIn
) -> schemas.TaskTemplateVersionOut:
    _require(session, models.TaskTemplate, request.task_template_id, "task_template_id")
    version_hash = template_version_hash(request)
    insert_ignore(
        session,
        models.TaskTemplateVersion,
        ("task_template_id", "command_template", "version_hash", "created_date"),
        [
            (
                request.task_template_id,
                request.command_template,
                version_hash,
                sql.timestamp(session, models.utcnow()),
            )
        ],
    )
    version_id = session.scalars(
        select(models.TaskTemplateVersion.id).where(
            models.TaskTemplateVersion.task_template_id == request.task_template_id,
            models.TaskTemplateVersion.version_hash == version_hash,
        )
    ).one()
    kinds = {name: "node" for name in request.node_args}
    kinds.update({name: "task" for name in request.task_args})
    kinds.update({name: "op" for name in request.op_args})
    names = list(kinds)
    insert_ignore(session, models.Arg, ("name",), [(name,) for name in names])
    arg_ids = lookup_ids(session, models.Arg, "name", names)
    insert_ignore(
        session,
        models.TaskTemplateArg,
        ("task_template_version_id", "arg_id", "kind"),
        [(version_id, arg_ids[name], kind) for name, kind in kinds.items()],
    )
    return schemas.TaskTemplateVersionOut(id=version_id, arg_ids=arg_ids)


def bind_nodes(session: Session, request: schemas.NodesIn) -> list[int]:
    """Ids of the requested nodes, in request order, creating those that are new."""
    version_id = request.task_template_version_id
    _require(session, models.TaskTemplateVersion, version_id, "task_template_version_id")
    hashes = request.node_args_hashes
    where = ("task_template_version_id", version_id)
    existing = lookup_ids(session, models.Node, "node_args_hash", hashes, where=where)
    new = {h: values for h, values in zip(hashes, request.values, strict=True) if h not in existing}
    if new:
        insert_ignore(
            session,
            models.Node,
            ("task_template_version_id", "node_args_hash"),
            [(version_id, h) for h in sorted(new)],
        )
        created = lookup_ids(session, models.Node, "node_args_hash", list(new), where=where)
        insert_ignore(
            session,
            models.NodeArg,
            ("node_id", "arg_id", "value"),
            sorted(
                (created[h], arg_id, value)
                for h, values in new.items()
                for arg_id, value in zip(request.arg_ids, values, strict=True)
            ),
        )
        existing.update(created)
    return [existing[h] for h in hashes]


def get_or_create_dag(session: Session, dag_hash: str, user: str) -> schemas.DagOut:
    """``user``'s DAG of this hash: DAGs are never shared, so nobody can prepare one with
    other edges under a hash someone else will bind. The stored hash is the user's and the
    client's hash together, so each user's DAGs are apart under the one unique index."""
    stored = hashlib.sha256(f"{len(user)}:{user}{dag_hash}".encode()).hexdigest()
    now = sql.timestamp(session, models.utcnow())
    insert_ignore(session, models.Dag, ("user", "hash", "created_date"), [(user, stored, now)])
    dag = session.scalars(select(models.Dag).where(models.Dag.hash == stored)).one()
    return schemas.DagOut(id=dag.id, complete=dag.completed_date is not None)


def bind_edges(session: Session, dag_id: int, request: schemas.EdgesIn) -> int:
    dag = _require(session, models.Dag, dag_id, "dag_id")
    if dag.completed_date is not None:
        return 0  # a complete DAG is immutable; its edges are already there
    insert_ignore(
        session,
        models.Edge,
        ("dag_id", "upstream_node_id", "downstream_node_id"),
        # Sorted, like every bulk insert here: concurrent binders of one workflow then take row
        # locks in the same order and cannot deadlock each other.
        sorted(
            (dag_id, up, down)
            for up, down in zip(request.upstream, request.downstream, strict=True)
        ),
    )
    return len(request.upstream)


def complete_dag(session: Session, dag_id: int) -> schemas.DagOut:
    dag = _require(session, models.Dag, dag_id, "dag_id")
    if dag.completed_date is None:
        dag.completed_date = models.utcnow()
    return schemas.DagOut(id=dag.id, complete=True)


def get_or_create_workflow(
    session: Session, request: schemas.WorkflowIn, user: str, *, admin: bool = False
) -> schemas.WorkflowOut:
    """``user``'s workflow of these ``workflow_args``; raises if it belongs to someone else (an
    admin may bind into anyone's), or if it exists with other tasks or dependencies and the
    bind is not a resume. A resume takes the new DAG (see :mod:`herdsman.server.domain.reuse`);
    the tasks its script no longer has are removed when its bind ends
    (:mod:`herdsman.server.domain.removal`)."""
    _require(session, models.ToolVersion, request.tool_version_id, "tool_version_id")
    dag = _require(session, models.Dag, request.dag_id, "dag_id")
    if dag.user != user and not admin:
        raise PermissionDeniedError(
            f"dag {dag.id} was bound by another user; bind your own DAG",
            details={"field": "dag_id"},
        )
    if dag.completed_date is None:
        raise ConflictError(
            f"dag {dag.id} is not complete; send all its edges before creating the workflow",
            details={"field": "dag_id"},
        )
    key = (
        models.Workflow.tool_version_id == request.tool_version_id,
        models.Workflow.workflow_args_hash == request.workflow_args_hash,
    )
    existing = session.scalars(select(models.Workflow).where(*key)).first()
    created = existing is None
    if existing is None:
        _insert_workflow(session, request, user)
        existing = session.scalars(select(models.Workflow).where(*key)).one()
        insert_ignore(
            session,
            models.WorkflowAttribute,
            ("workflow_id", "name", "value"),
            [(existing.id, name, value) for name, value in request.attributes.items()],
        )
    if existing.user != user and not admin:
        raise PermissionDeniedError(
            f"workflow {existing.id} with workflow_args {request.workflow_args!r} belongs to "
            f"{existing.user}; only they or an admin may bind or run it. Use other "
            "workflow_args for a workflow of your own",
            details={"workflow_id": existing.id, "user": user},
        )
    if existing.task_hash != request.task_hash or existing.dag_id != request.dag_id:
        if not request.resume:
            stored = removal.count_in_workflow(session, existing.id)
            raise WorkflowAlreadyExists(
                f"workflow {existing.id} already has workflow_args {request.workflow_args!r} "
                f"with {_what_differs(existing, request, stored)}; run it with "
                "run(resume=True) to resume it with the new tasks (finished tasks whose "
                "commands and upstream tasks did not change are reused, tasks not in the "
                "script are removed), or use new workflow_args for a new workflow; "
                "workflow.plan() says what a resume would do with each task",
                details={"workflow_id": existing.id, "bound_tasks": stored},
            )
        _take_new_dag(session, existing, request)
    if not created and existing.bound_max_concurrently_running != request.max_concurrently_running:
        _rebind_workflow_limit(session, existing, request.max_concurrently_running)
    return schemas.WorkflowOut(
        id=existing.id,
        status=existing.status,
        created=created,
        bound=existing.bound_date is not None,
    )


def _what_differs(workflow: models.Workflow, request: schemas.WorkflowIn, stored: int) -> str:
    """Words for how the stored workflow differs from the script, from counts alone (which
    tasks differ is what the plan says)."""
    if workflow.task_hash == request.task_hash:
        return "the same tasks but other dependencies"
    if stored > request.num_tasks:
        gone = stored - request.num_tasks
        return (
            f"{stored} tasks where the script has {request.num_tasks} "
            f"(at least {gone} {'task' if gone == 1 else 'tasks'} removed)"
        )
    if stored < request.num_tasks:
        return f"{stored} tasks where the script has {request.num_tasks}"
    return "other tasks (a changed command template or other node or task args)"


def _take_new_dag(session: Session, workflow: models.Workflow, request: schemas.WorkflowIn) -> None:
    """A resume with other tasks or dependencies: the workflow takes the script's DAG and is
    unbound until its tasks are (the old DAG stays, for the record). Its tasks are marked as
    not yet sent; those the script does not send are removed at the end of the bind."""
    logger.info(
        "workflow_dag_changed",
        workflow_id=workflow.id,
        old_dag_id=workflow.dag_id,
        dag_id=request.dag_id,
        old_num_tasks=workflow.num_tasks,
        num_tasks=request.num_tasks,
    )
    removal.mark_unsent(session, workflow.id, workflow.dag_id)
    session.execute(
        update(models.Workflow)
        .where(models.Workflow.id == workflow.id)
        .values(
            dag_id=request.dag_id,
            task_hash=request.task_hash,
            num_tasks=request.num_tasks,
            bound_date=None,
        )
    )
    session.refresh(workflow)


def _insert_workflow(session: Session, request: schemas.WorkflowIn, user: str) -> None:
    now = sql.timestamp(session, models.utcnow())
    row = request.model_dump(exclude={"attributes", "resume"})
    row.update(
        user=user,
        status=WorkflowStatus.REGISTERING.value,
        status_date=now,
        created_date=now,
        bound_max_concurrently_running=request.max_concurrently_running,
    )
    insert_ignore(session, models.Workflow, tuple(row), [tuple(row.values())])


def _rebind_workflow_limit(session: Session, workflow: models.Workflow, limit: int) -> None:
    """The client sends a limit other than the one it bound last: a new setting, which wins
    over a limit changed while running (the same value again would keep that one)."""
    logger.info(
        "workflow_limit_rebound",
        workflow_id=workflow.id,
        previous=workflow.max_concurrently_running,
        max_concurrently_running=limit,
    )
    session.execute(
        update(models.Workflow)
        .where(models.Workflow.id == workflow.id)
        .values(max_concurrently_running=limit, bound_max_concurrently_running=limit)
    )


def bind_arrays(session: Session, workflow_id: int, arrays: Sequence[schemas.ArrayIn]) -> list[int]:
    """Ids of the workflow's arrays, creating those that are new.

    An existing array keeps its limit in force unless the client sends a limit other than the
    one it bound last: see ``Array.bound_max_concurrently_running``.
    """
    _require(session, models.Workflow, workflow_id, "workflow_id")
    now = sql.timestamp(session, models.utcnow())
    insert_ignore(
        session,
        models.Array,
        (
            "workflow_id",
            "task_template_version_id",
            "name",
            "max_concurrently_running",
            "bound_max_concurrently_running",
            "created_date",
        ),
        [
            (
                workflow_id,
                a.task_template_version_id,
                a.name,
                a.max_concurrently_running,
                a.max_concurrently_running,
                now,
            )
            for a in arrays
        ],
    )
    version_ids = [array.task_template_version_id for array in arrays]
    found = lookup_rows(
        session,
        models.Array,
        "task_template_version_id",
        version_ids,
        ("id", "bound_max_concurrently_running"),
        where=("workflow_id", workflow_id),
    )
    for array in arrays:
        array_id, bound = found[array.task_template_version_id]
        if bound != array.max_concurrently_running:
            _rebind_array_limit(session, workflow_id, array_id, array.max_concurrently_running)
    return [found[version_id][0] for version_id in version_ids]


def _rebind_array_limit(session: Session, workflow_id: int, array_id: int, limit: int) -> None:
    logger.info(
        "array_limit_rebound",
        workflow_id=workflow_id,
        array_id=array_id,
        max_concurrently_running=limit,
    )
    session.execute(
        update(models.Array)
        .where(models.Array.id == array_id)
        .values(max_concurrently_running=limit, bound_max_concurrently_running=limit)
    )


def resources_hash(item: schemas.ResourcesItemIn) -> str:
    encoded = json.dumps([item.kind, item.queue_id, item.requested], sort_keys=True)
    return hashlib.sha256(encoded.encode()).hexdigest()


def bind_resources(session: Session, items: Sequence[schemas.ResourcesItemIn]) -> list[int]:
    """Ids of resource requests, shared by content: equal requests get the same row."""
    hashes = [resources_hash(item) for item in items]
    insert_ignore(
        session,
        models.TaskResources,
        ("hash", "kind", "queue_id", "requested"),
        [
            (item_hash, item.kind, item.queue_id, json.dumps(item.requested, sort_keys=True))
            for item_hash, item in zip(hashes, items, strict=True)
        ],
    )
    found = lookup_ids(session, models.TaskResources, "hash", hashes)
    return [found[item_hash] for item_hash in hashes]


_TASK_COLUMNS = (
    "workflow_id",
    "node_id",
    "array_id",
    "name",
    "command",
    "task_args_hash",
    "cluster_id",
    "original_resources_id",
    "task_resources_id",
    "max_attempts",
    "resource_scales",
    "fallback_queues",
    "status",
    "status_date",
    "num_attempts",
)


def bind_tasks(
    session: Session, workflow_id: int, request: schemas.TasksIn, recorder: ChangeRecorder
) -> schemas.TasksOut:
    """Ids and current statuses of the requested tasks, creating those that are new.

    Existing tasks keep their status and attempts: a rebind of a partly run workflow does not
    reset work that was done. A task that is not done takes the request's command, name,
    max_attempts, resources, scales and fallback queues (the script's, as Jobmon does on a
    resume). With ``resume``, stored tasks move to the request's nodes of the same identity
    and a done task whose command changed runs again (see :mod:`herdsman.server.domain.reuse`);
    a task an earlier resume removed is in the workflow again
    (:func:`~herdsman.server.domain.removal.keep_sent`).
    """
    _require(session, models.Workflow, workflow_id, "workflow_id")
    now = sql.timestamp(session, models.utcnow())
    if request.resume:
        reuse.move_to_new_nodes(session, workflow_id, request.node_ids, request.array_ids)
        removal.keep_sent(session, workflow_id, request.node_ids, recorder)
    stored = lookup_rows(
        session,
        models.Task,
        "node_id",
        request.node_ids,
        _COMPARED_COLUMNS,
        where=("workflow_id", workflow_id),
    )
    rows = zip(
        request.node_ids,
        request.array_ids,
        request.names,
        request.commands,
        request.task_args_hashes,
        request.cluster_ids,
        request.original_resources_ids,
        request.task_resources_ids,
        request.max_attempts,
        request.resource_scales,
        request.fallback_queues,
        strict=True,
    )
    # In request order, unlike the other bulk inserts here: new task ids then follow the order
    # in which the script created its tasks (the client sends them so), which is the order a
    # person expects in listings. Two binders of one workflow send the same order, so they
    # still take row locks alike; a deadlock between differently ordered ones is retried.
    insert_ignore(
        session,
        models.Task,
        _TASK_COLUMNS,
        [(workflow_id, *row, TaskStatus.REGISTERING.value, now, 0) for row in rows],
    )
    changed_args = _update_stored_tasks(session, workflow_id, request, stored, recorder)
    found = _task_ids_and_statuses(session, workflow_id, request.node_ids)
    task_ids = [found[node_id][0] for node_id in request.node_ids]
    if changed_args:
        for part in chunked(sorted(changed_args), IN_CHUNK):
            session.execute(delete(models.TaskArg).where(models.TaskArg.task_id.in_(part)))
    _insert_task_args(session, request, task_ids)
    return schemas.TasksOut(
        ids=task_ids, statuses=[found[node_id][1] for node_id in request.node_ids]
    )


# Columns a rebind updates, in the order _update_stored_tasks lists their new values.
_UPDATED_COLUMNS = (
    "array_id",
    "name",
    "command",
    "task_args_hash",
    "cluster_id",
    "original_resources_id",
    "max_attempts",
    "resource_scales",
    "fallback_queues",
)
# Stored columns a rebind compares with the request: the id and status, then those it updates.
_COMPARED_COLUMNS = ("id", "status", *_UPDATED_COLUMNS)


def _update_stored_tasks(
    session: Session,
    workflow_id: int,
    request: schemas.TasksIn,
    stored: dict[int, tuple[Any, ...]],
    recorder: ChangeRecorder,
) -> set[int]:
    """Give stored tasks the request's settings where the rule says so; answers the ids of
    tasks whose task args changed (their stored values are replaced)."""
    if not stored:
        return set()
    updates: list[dict[str, Any]] = []
    reset: list[int] = []
    changed_args: set[int] = set()
    for index, node_id in enumerate(request.node_ids):
        row = stored.get(node_id)
        if row is None:
            continue
        task_id, status, *old = row
        new = [
            request.array_ids[index],
            request.names[index],
            request.commands[index],
            request.task_args_hashes[index],
            request.cluster_ids[index],
            request.original_resources_ids[index],
            request.max_attempts[index],
            request.resource_scales[index],
            request.fallback_queues[index],
        ]
        verdict = reuse.task_verdict(status, old[2], request.commands[index])
        kept = verdict is reuse.Verdict.CHANGED and not request.resume
        if verdict is reuse.Verdict.REUSE or kept:
            continue  # done tasks keep what they ran with
        if old == new:
            continue
        values = dict(zip(_UPDATED_COLUMNS, new, strict=True))
        if old[5] != new[5] or old[4] != new[4]:
            # The script asks for other resources: they replace any that were scaled up.
            values["task_resources_id"] = request.task_resources_ids[index]
        else:
            values["task_resources_id"] = None  # keep the stored ones (see _update_tasks)
        values["b_id"] = task_id
        updates.append(values)
        if old[3] != new[3]:
            changed_args.add(task_id)
        if verdict is reuse.Verdict.CHANGED:
            reset.append(task_id)
    if updates:
        _update_tasks(session, updates)
        logger.info(
            "stored_tasks_updated", workflow_id=workflow_id, tasks=len(updates), rerun=len(reset)
        )
    if reset:
        reuse.reset_tasks(session, workflow_id, reset, recorder)
    return changed_args


def _update_tasks(session: Session, updates: list[dict[str, Any]]) -> None:
    """One executemany per kind of update: with the task's resources replaced, or kept."""
    table = cast(Table, models.Task.__table__)
    values: dict[str, Any] = {column: bindparam(f"b_{column}") for column in _UPDATED_COLUMNS}
    for replace in (False, True):
        rows = [u for u in updates if (u["task_resources_id"] is not None) is replace]
        if not rows:
            continue
        params = []
        for row in rows:
            param = {f"b_{column}": row[column] for column in _UPDATED_COLUMNS}
            param["b_id"] = row["b_id"]
            if replace:
                param["b_resources"] = row["task_resources_id"]
            params.append(param)
        extra: dict[str, Any] = {"task_resources_id": bindparam("b_resources")} if replace else {}
        statement = update(table).where(table.c.id == bindparam("b_id")).values(**values, **extra)
        session.connection().execute(statement, params)


def _task_ids_and_statuses(
    session: Session, workflow_id: int, node_ids: Sequence[int]
) -> dict[int, tuple[int, str]]:
    rows = lookup_rows(
        session,
        models.Task,
        "node_id",
        node_ids,
        ("id", "status"),
        where=("workflow_id", workflow_id),
    )
    return {node_id: (row[0], row[1]) for node_id, row in rows.items()}


def _insert_task_args(session: Session, request: schemas.TasksIn, task_ids: list[int]) -> None:
    arg_rows: list[tuple[Any, ...]] = []
    for task_id, array_id, values in zip(
        task_ids, request.array_ids, request.task_arg_values, strict=True
    ):
        if values:
            arg_ids = request.task_arg_ids[array_id]
            arg_rows.extend(zip([task_id] * len(values), arg_ids, values, strict=True))
    insert_ignore(session, models.TaskArg, ("task_id", "arg_id", "value"), sorted(arg_rows))
    insert_ignore(
        session,
        models.TaskAttribute,
        ("task_id", "name", "value"),
        [
            (task_ids[index], name, value)
            for index, attributes in request.attributes.items()
            for name, value in attributes.items()
        ],
    )


def finish_workflow_bind(
    session: Session, workflow_id: int, recorder: ChangeRecorder, *, resume: bool = False
) -> schemas.WorkflowBoundOut:
    """Mark the workflow bound once all its tasks are written; refuse while some are missing.

    A resume then removes the tasks its script did not send (:mod:`~.removal`) and sends every
    done task downstream of a task that runs back to run again.
    """
    workflow = _require(session, models.Workflow, workflow_id, "workflow_id")
    # Tasks a resume removed are out of the workflow; so are, until this resume's bind ends,
    # those its script has not sent.
    count = removal.count_in_workflow(session, workflow_id, sent=True)
    if count != workflow.num_tasks:
        raise ConflictError(
            f"workflow {workflow_id} has {count} of its {workflow.num_tasks} tasks; "
            "bind again to send the rest (with run(resume=True) or bind(resume=True) if a "
            "resume's bind was interrupted)",
            details={"workflow_id": workflow_id, "bound_tasks": count},
        )
    removed = removal.remove_unsent(session, workflow_id, recorder) if resume else []
    if resume:
        reuse.rerun_downstream(session, workflow_id, recorder)
    if removed:
        _close_if_all_done(session, workflow)
    if workflow.bound_date is None:
        marked = session.execute(
            update(models.Workflow)
            .where(models.Workflow.id == workflow_id, models.Workflow.bound_date.is_(None))
            .values(bound_date=models.utcnow())
        )
        if marked.rowcount:  # type: ignore[attr-defined]
            # Its tasks are counted by the binder that marked it bound, holding the workflow's
            # row; from then on every change of their statuses adds to the counts. A resume
            # that added tasks or moved them between arrays (which bind does not count as it
            # goes) marks it bound again, and so is counted afresh, with the resets above.
            recount_workflow(session, workflow_id)
            recorder.recounted(workflow_id)
    elif resume:
        recount_workflow(session, workflow_id)  # tasks may have moved between arrays
        recorder.recounted(workflow_id)
    return schemas.WorkflowBoundOut(
        id=workflow_id, status=workflow.status, num_tasks=count, removed=len(removed)
    )


def _close_if_all_done(session: Session, workflow: models.Workflow) -> None:
    """A resume that removed the last unfinished tasks of a workflow no run holds leaves it
    done: a workflow is done when all the tasks in it are (and a run would find none to do)."""
    live = session.scalar(
        select(models.WorkflowRun.id)
        .where(
            models.WorkflowRun.workflow_id == workflow.id,
            models.WorkflowRun.status.in_(_LIVE_RUN_STATUSES),
        )
        .limit(1)
    )
    if live is None and lifecycle.workflow_done_by_tasks(
        WorkflowStatus(workflow.status),
        tasks_unfinished=runs.count_unfinished(session, workflow.id) > 0,
    ):
        logger.info("workflow_done_by_removal", workflow_id=workflow.id)
        workflow.status = WorkflowStatus.DONE.value
        workflow.status_date = models.utcnow()


def _require(session: Session, model: type[M], row_id: int, field: str) -> M:
    row = session.get(model, row_id)
    if row is None:
        raise NotFoundError(
            f"{field} {row_id} does not exist", details={"field": field, "value": row_id}
        )
    return row
