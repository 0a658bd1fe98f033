"""Reads for finding out why tasks failed: failed tasks with their errors and output tails,
error messages, and where attempts wrote their output."""

from __future__ import annotations

from typing import TypeVarTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from herdsman.core.schemas import queries as schemas
from herdsman.core.statuses import TaskStatus
from herdsman.server.database import models
from herdsman.server.queries.lookups import (
    count_and_first,
    require_workflow,
    with_task_template_names,
)

_Columns = TypeVarTuple("_Columns")

__all__ = ["ERRORS_PER_TASK", "error_messages", "log_paths", "workflow_errors"]


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
