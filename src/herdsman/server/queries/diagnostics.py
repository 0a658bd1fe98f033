"""Reads for finding out why tasks failed: errors grouped by signature, failed tasks with
their errors and output tails, error messages, and where attempts wrote their output."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeVarTuple

from sqlalchemy import ColumnElement, exists, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

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
    where = (
        task.workflow_id == workflow_id,
        task.status == TaskStatus.ERROR_FATAL.value,
        task.removed_date.is_(None),
    )
    count = session.scalar(select(func.count()).select_from(task).where(*where))
    failed = session.scalars(select(task).where(*where).order_by(task.id).limit(limit)).all()
    return schemas.WorkflowErrorsOut(
        workflow_id=workflow_id,
        count=count or 0,
        tasks=[_failed_task(session, row) for row in failed],
    )


@dataclass(frozen=True)
class _Grouped:
    """One signature's errors within one array (one task template)."""

    array_id: int | None
    signature: str
    exit_class: str
    errors: int
    tasks: int
    first: dt.datetime
    last: dt.datetime
    newest: int


@dataclass(frozen=True)
class _ErrorCounts:
    """A workflow's errors by array and signature, and its tasks with errors by array."""

    grouped: list[_Grouped]
    tasks_by_array: dict[int, int]


def _error_counts(session: Session, workflow_id: int) -> _ErrorCounts:
    """The workflow's kept error counts (a row per array and group, and per array).

    Everything the errors page shows comes from these: a task is in one array only, so
    distinct tasks add up across arrays, and a group's figures over all templates are the
    sums of its figures per array.
    """
    group, tasks = models.ErrorGroupCount, models.ErrorTaskCount
    grouped = session.execute(
        select(
            group.array_id,
            group.signature,
            group.exit_class,
            group.errors,
            group.tasks,
            group.first_seen,
            group.last_seen,
            group.newest_id,
        ).where(group.workflow_id == workflow_id)
    ).tuples()
    by_array = session.execute(
        select(tasks.array_id, tasks.tasks).where(tasks.workflow_id == workflow_id)
    ).tuples()
    return _ErrorCounts([_Grouped(*row) for row in grouped], dict(by_array.all()))


def _merged(rows: list[_Grouped]) -> list[_Grouped]:
    """The groups over all arrays, the most errors first, the newest first among equals."""
    by_key: dict[tuple[str, str], _Grouped] = {}
    for row in rows:
        key = (row.signature, row.exit_class)
        seen = by_key.get(key)
        by_key[key] = (
            row
            if seen is None
            else _Grouped(
                None,
                row.signature,
                row.exit_class,
                seen.errors + row.errors,
                seen.tasks + row.tasks,
                min(seen.first, row.first),
                max(seen.last, row.last),
                max(seen.newest, row.newest),
            )
        )
    return sorted(by_key.values(), key=lambda group: (-group.errors, -group.newest))


def error_groups(
    session: Session,
    workflow_id: int,
    limit: int,
    tail_lines: int,
    array_id: int | None = None,
    offset: int = 0,
) -> schemas.ErrorGroupsOut:
    """The workflow's errors grouped by signature and exit class, largest group first: the
    ``limit`` groups after the first ``offset``.

    Each group's sample is its newest error, with the last ``tail_lines`` lines of its
    attempt's output (0: all the worker kept). ``array_id`` keeps the errors of one of its
    task templates (its array).
    """
    require_workflow(session, workflow_id)
    counts = _error_counts(session, workflow_id)
    return _groups_out(session, workflow_id, counts, limit, tail_lines, array_id, offset)


def _groups_out(
    session: Session,
    workflow_id: int,
    counts: _ErrorCounts,
    limit: int,
    tail_lines: int,
    array_id: int | None,
    offset: int,
) -> schemas.ErrorGroupsOut:
    rows = counts.grouped
    tasks = sum(counts.tasks_by_array.values())
    if array_id is not None:
        rows = [row for row in rows if row.array_id == array_id]
        tasks = counts.tasks_by_array.get(array_id, 0)
    groups = _merged(rows)
    shown = groups[offset : offset + limit]
    samples = _error_samples(session, [group.newest for group in shown], tail_lines)
    return schemas.ErrorGroupsOut(
        workflow_id=workflow_id,
        count=sum(group.errors for group in groups),
        tasks=tasks,
        group_count=len(groups),
        groups=[
            _error_group(
                group,
                _group_task_ids(session, workflow_id, array_id, group),
                samples[group.newest],
            )
            for group in shown
        ],
    )


def _group_task_ids(
    session: Session, workflow_id: int, array_id: int | None, group: _Grouped
) -> list[int]:
    """The first task ids of a group, in order from the (workflow, signature, task) index."""
    log = models.TaskInstanceErrorLog
    task = models.Task
    where = [
        log.workflow_id == workflow_id,
        _kept_as(log.signature, group.signature),
        _kept_as(log.exit_class, group.exit_class),
        # Not those of tasks a resume removed, which the group's counts leave out too.
        exists().where(task.id == log.task_id, task.removed_date.is_(None)),
    ]
    if array_id is not None:
        where.append(log.array_id == array_id)
    found = session.scalars(
        select(log.task_id)
        .distinct()
        .where(*where)
        .order_by(log.task_id)
        .limit(schemas.GROUP_TASK_IDS)
    )
    return [task_id for task_id in found if task_id is not None]


def _kept_as(column: InstrumentedAttribute[str | None], kept: str) -> ColumnElement[bool]:
    """The log's rows counted under ``kept``: "" stands for none (errors logged before
    signatures and exit classes existed)."""
    return column == kept if kept else column.is_(None)


def _error_group(
    group: _Grouped, task_ids: list[int], sample: tuple[schemas.ErrorSampleOut, str | None]
) -> schemas.ErrorGroupOut:
    newest, full_stderr = sample
    killed = group.exit_class == ExitClass.KILLED.value
    pattern = error_signature(newest.message, None if killed else full_stderr).text
    return schemas.ErrorGroupOut(
        signature=group.signature or "",
        exit_class=group.exit_class or "",
        pattern=pattern,
        count=group.errors,
        tasks=group.tasks,
        task_ids=task_ids,
        first_seen=group.first.isoformat(),
        last_seen=group.last.isoformat(),
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
    """The workflow's errors counted by task template, the most errors first (a row per
    template that had errors)."""
    require_workflow(session, workflow_id)
    return _by_template(session, _error_counts(session, workflow_id))


def _by_template(session: Session, counts: _ErrorCounts) -> list[TemplateErrors]:
    errors: dict[int, int] = {}
    signatures: dict[int, set[str | None]] = {}
    for row in counts.grouped:
        if row.array_id is None:
            continue  # an error logged before errors carried their array
        errors[row.array_id] = errors.get(row.array_id, 0) + row.errors
        signatures.setdefault(row.array_id, set()).add(row.signature)
    names = dict(
        session.execute(
            with_template_names(
                select(models.Array.id, models.TaskTemplate.name).select_from(models.Array)
            ).where(models.Array.id.in_(list(errors)))
        )
        .tuples()
        .all()
    )
    found = [
        TemplateErrors(
            array_id,
            names.get(array_id, ""),
            count,
            counts.tasks_by_array.get(array_id, 0),
            len(signatures[array_id]),
        )
        for array_id, count in errors.items()
    ]
    return sorted(found, key=lambda row: (-row.errors, row.array_id))
