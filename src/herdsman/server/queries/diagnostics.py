"""Reads for finding out why tasks failed: errors grouped by signature, failed tasks with
their errors and output tails, error messages, and where attempts wrote their output."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, distinct, func, select
from sqlalchemy.orm import Session

from herdsman.core.error_signature import ExitClass, error_signature
from herdsman.core.schemas import queries as schemas
from herdsman.core.statuses import TaskStatus
from herdsman.server.database import models
from herdsman.server.queries.lookups import (
    count_and_first,
    require_workflow,
    with_task_template_names,
    with_template_names,
)

_Columns = TypeVarTuple("_Columns")

__all__ = [
    "ERRORS_PER_TASK",
    "TemplateErrors",
    "error_groups",
    "error_messages",
    "errors_by_template",
    "last_lines",
    "log_paths",
    "workflow_errors",
]


ERRORS_PER_TASK = 3


def workflow_errors(session: Session, workflow_id: int, limit: int) -> schemas.WorkflowErrorsOut:
    """Fatal tasks with their last errors and output tails, for a report after a failed run."""
    require_workflow(session, workflow_id)
    task = models.Task
    where = (task.workflow_id == workflow_id, task.status == TaskStatus.ERROR_FATAL.value)
    count = session.scalar(select(func.count()).select_from(task).where(*where))
    failed = session.scalars(select(task).where(*where).order_by(task.id).limit(limit)).all()
    return schemas.WorkflowErrorsOut(
        workflow_id=workflow_id,
        count=count or 0,
        tasks=[_failed_task(session, row) for row in failed],
    )


def error_groups(
    session: Session, workflow_id: int, limit: int, tail_lines: int, array_id: int | None = None
) -> schemas.ErrorGroupsOut:
    """The workflow's errors grouped by signature and exit class, largest group first.

    One ``GROUP BY`` over the error log's (workflow, signature) index; each group's sample is
    its newest error, with the last ``tail_lines`` lines of its attempt's output (0: all the
    worker kept). ``array_id`` keeps the errors of one of its task templates (its array).
    """
    require_workflow(session, workflow_id)
    log, instance = models.TaskInstanceErrorLog, models.TaskInstance
    where = [log.workflow_id == workflow_id]
    if array_id is not None:
        where.append(instance.array_id == array_id)
    errors = func.count()
    newest = func.max(log.id)
    grouped = (
        select(
            log.signature,
            log.exit_class,
            errors,
            func.count(distinct(instance.task_id)),
            func.min(log.error_time),
            func.max(log.error_time),
            newest,
        )
        .join(instance, instance.id == log.task_instance_id)
        .where(*where)
        .group_by(log.signature, log.exit_class)
    )
    rows = session.execute(grouped.order_by(errors.desc(), newest.desc()).limit(limit)).all()
    count = session.scalar(select(func.count()).select_from(grouped.subquery())) or 0
    total_errors, total_tasks = session.execute(
        select(func.count(), func.count(distinct(instance.task_id)))
        .select_from(log)
        .join(instance, instance.id == log.task_instance_id)
        .where(*where)
    ).one()
    samples = _error_samples(session, [row[-1] for row in rows], tail_lines)
    return schemas.ErrorGroupsOut(
        workflow_id=workflow_id,
        count=total_errors,
        tasks=total_tasks,
        group_count=count,
        groups=[
            _error_group(
                (signature, exit_class),
                (n, tasks, _group_task_ids(session, where, signature, exit_class)),
                (first, last),
                samples[sample_id],
            )
            for signature, exit_class, n, tasks, first, last, sample_id in rows
        ],
    )


def _group_task_ids(
    session: Session,
    where: list[ColumnElement[bool]],
    signature: str | None,
    exit_class: str | None,
) -> list[int]:
    """The first task ids of a group, through the (workflow, signature) index."""
    log, instance = models.TaskInstanceErrorLog, models.TaskInstance
    found = session.scalars(
        select(distinct(instance.task_id))
        .join(log, log.task_instance_id == instance.id)
        .where(*where, log.signature == signature, log.exit_class == exit_class)
        .order_by(instance.task_id)
        .limit(schemas.GROUP_TASK_IDS)
    )
    return list(found)


def _error_group(
    key: tuple[str | None, str | None],
    counts: tuple[int, int, list[int]],
    seen: tuple[dt.datetime, dt.datetime],
    sample: tuple[schemas.ErrorSampleOut, str | None],
) -> schemas.ErrorGroupOut:
    (signature, exit_class), (errors, tasks, task_ids), (first, last) = key, counts, seen
    newest, full_stderr = sample
    killed = exit_class == ExitClass.KILLED.value
    pattern = error_signature(newest.message, None if killed else full_stderr).text
    return schemas.ErrorGroupOut(
        signature=signature or "",
        exit_class=exit_class or "",
        pattern=pattern,
        count=errors,
        tasks=tasks,
        task_ids=task_ids,
        first_seen=first.isoformat(),
        last_seen=last.isoformat(),
        sample=newest.message,
        newest=newest,
    )


def _error_samples(
    session: Session, log_ids: list[int], tail_lines: int
) -> dict[int, tuple[schemas.ErrorSampleOut, str | None]]:
    """Each error by its log id, with its attempt's full stderr tail beside it."""
    log, instance, task = models.TaskInstanceErrorLog, models.TaskInstance, models.Task
    found: dict[int, tuple[schemas.ErrorSampleOut, str | None]] = {}
    if not log_ids:
        return found
    rows = session.execute(
        select(
            log.id,
            log.task_instance_id,
            log.error_time,
            log.description,
            instance.task_id,
            task.name,
            instance.exit_code,
            instance.stdout_tail,
            instance.stderr_tail,
        )
        .join(instance, instance.id == log.task_instance_id)
        .join(task, task.id == instance.task_id)
        .where(log.id.in_(log_ids))
    ).all()
    for log_id, instance_id, when, message, task_id, name, code, stdout, stderr in rows:
        sample = schemas.ErrorSampleOut(
            task_instance_id=instance_id,
            task_id=task_id,
            task_name=name,
            error_time=when.isoformat(),
            message=message,
            exit_code=code,
            stdout_tail=last_lines(stdout, tail_lines),
            stderr_tail=last_lines(stderr, tail_lines),
        )
        found[log_id] = (sample, stderr)
    return found


def last_lines(text: str | None, lines: int) -> str:
    """The last ``lines`` lines of ``text`` (all of it for 0), trailing blank lines dropped."""
    if not text:
        return ""
    if lines <= 0:
        return text
    kept = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join(kept) + "\n"


def _failed_task(session: Session, task: models.Task) -> schemas.FailedTaskOut:
    instance, log = models.TaskInstance, models.TaskInstanceErrorLog
    errors = session.execute(
        select(log.task_instance_id, log.error_time, log.description, instance.exit_code)
        .join(instance, instance.id == log.task_instance_id)
        .where(instance.task_id == task.id)
        .order_by(log.id.desc())
        .limit(ERRORS_PER_TASK)
    ).all()
    last = session.scalars(
        select(instance).where(instance.task_id == task.id).order_by(instance.id.desc()).limit(1)
    ).first()
    return schemas.FailedTaskOut(
        task_id=task.id,
        name=task.name,
        num_attempts=task.num_attempts,
        errors=[
            schemas.ErrorOut(
                task_instance_id=instance_id,
                error_time=when.isoformat(),
                description=description,
                exit_code=exit_code,
            )
            for instance_id, when, description, exit_code in errors
        ],
        stdout_tail=(last.stdout_tail or "") if last else "",
        stderr_tail=(last.stderr_tail or "") if last else "",
    )


def error_messages(session: Session, workflow_id: int, limit: int) -> schemas.ErrorMessagesOut:
    """The workflow's error messages, newest first; grouping them is the reader's job."""
    require_workflow(session, workflow_id)
    log, instance, task = models.TaskInstanceErrorLog, models.TaskInstance, models.Task
    where = task.workflow_id == workflow_id
    base = (
        select(log.task_instance_id, instance.task_id, log.error_time, log.description)
        .join(instance, instance.id == log.task_instance_id)
        .join(task, task.id == instance.task_id)
        .where(where)
    )
    count, rows = count_and_first(session, base.order_by(log.id.desc()), limit)
    return schemas.ErrorMessagesOut(
        workflow_id=workflow_id,
        count=count,
        errors=[
            schemas.ErrorMessageOut(
                task_instance_id=instance_id,
                task_id=task_id,
                error_time=when.isoformat(),
                description=description,
            )
            for instance_id, task_id, when, description in rows
        ],
    )


def log_paths(
    session: Session, workflow_id: int, template: str | None, limit: int
) -> schemas.LogPathsOut:
    """Where the workflow's attempts wrote stdout and stderr, newest attempt first."""
    require_workflow(session, workflow_id)
    instance, task = models.TaskInstance, models.Task
    template_name = models.TaskTemplate.name
    joined = with_task_template_names(
        select(
            instance.id,
            instance.status,
            instance.stdout_path,
            instance.stderr_path,
            task.id,
            task.name,
            template_name,
        ).join(task, task.id == instance.task_id)
    ).where(task.workflow_id == workflow_id)
    if template is not None:
        joined = joined.where(template_name == template)
    count, rows = count_and_first(session, joined.order_by(instance.id.desc()), limit)
    return schemas.LogPathsOut(
        workflow_id=workflow_id,
        count=count,
        instances=[
            schemas.LogPathOut(
                task_id=task_id,
                task_name=task_name,
                task_template=template_value,
                task_instance_id=instance_id,
                status=status,
                stdout_path=stdout,
                stderr_path=stderr,
            )
            for instance_id, status, stdout, stderr, task_id, task_name, template_value in rows
        ],
    )


@dataclass(frozen=True)
class TemplateErrors:
    """A task template's errors in a workflow: how many, in how many tasks, how many groups."""

    array_id: int
    template: str
    errors: int
    tasks: int
    groups: int


def errors_by_template(session: Session, workflow_id: int) -> list[TemplateErrors]:
    """The workflow's errors counted by task template, the most errors first (one GROUP BY
    over the error log's workflow index; a row per template that had errors)."""
    require_workflow(session, workflow_id)
    log, instance = models.TaskInstanceErrorLog, models.TaskInstance
    counted = (
        select(
            instance.array_id.label("array_id"),
            func.count().label("errors"),
            func.count(distinct(instance.task_id)).label("tasks"),
            func.count(distinct(log.signature)).label("groups"),
        )
        .join(instance, instance.id == log.task_instance_id)
        .where(log.workflow_id == workflow_id)
        .group_by(instance.array_id)
        .subquery()
    )
    rows = session.execute(
        with_template_names(
            select(
                counted.c.array_id,
                models.TaskTemplate.name,
                counted.c.errors,
                counted.c.tasks,
                counted.c.groups,
            ).join(models.Array, models.Array.id == counted.c.array_id)
        ).order_by(counted.c.errors.desc(), counted.c.array_id)
    ).tuples()
    return [TemplateErrors(*row) for row in rows]
