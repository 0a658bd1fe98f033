"""Attributes of a bound workflow or task, added or updated by their owner.

Binding writes the attributes a script declared; these are the later ones (Jobmon's
``workflow.add_attributes`` and ``add_task_attributes``). A name already present gets the
new value; other names are left as they were.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from herdsman.core.errors import NotFoundError
from herdsman.server.database import models
from herdsman.server.database.bulk import insert_ignore

__all__ = ["set_task_attributes", "set_workflow_attributes"]


def set_workflow_attributes(
    session: Session, workflow_id: int, attributes: Mapping[str, str]
) -> dict[str, str]:
    """Add or update the workflow's attributes; all its attributes afterwards."""
    if session.get(models.Workflow, workflow_id) is None:
        raise NotFoundError(f"workflow {workflow_id} does not exist")
    table = models.WorkflowAttribute
    return _set_attributes(session, table, table.workflow_id, workflow_id, attributes)


def set_task_attributes(
    session: Session, task_id: int, attributes: Mapping[str, str]
) -> dict[str, str]:
    """Add or update the task's attributes; all its attributes afterwards."""
    if session.get(models.Task, task_id) is None:
        raise NotFoundError(f"task {task_id} does not exist")
    table = models.TaskAttribute
    return _set_attributes(session, table, table.task_id, task_id, attributes)


def _set_attributes(
    session: Session,
    table: type[models.WorkflowAttribute] | type[models.TaskAttribute],
    owner: InstrumentedAttribute[int],
    owner_id: int,
    attributes: Mapping[str, str],
) -> dict[str, str]:
    """Replace the named attributes of one row of the owning table; all of its attributes."""
    if attributes:
        session.execute(delete(table).where(owner == owner_id, table.name.in_(list(attributes))))
        insert_ignore(
            session,
            table,
            (owner.key, "name", "value"),
            [(owner_id, name, value) for name, value in attributes.items()],
        )
    rows = session.execute(select(table.name, table.value).where(owner == owner_id))
    return {name: value for name, value in rows}
