"""A workflow's audit trail: who changed it, when, how, and what the server answered."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from herdsman.core.schemas import queries as schemas
from herdsman.server.database import models
from herdsman.server.database.feed import require_workflow

__all__ = ["workflow_history"]


def workflow_history(session: Session, workflow_id: int, limit: int) -> schemas.HistoryOut:
    """The newest ``limit`` audited requests about the workflow, oldest first."""
    require_workflow(session, workflow_id)
    audit = models.Audit
    rows = session.scalars(
        select(audit).where(audit.workflow_id == workflow_id).order_by(audit.id.desc()).limit(limit)
    ).all()
    return schemas.HistoryOut(
        workflow_id=workflow_id,
        entries=[
            schemas.HistoryEntryOut(
                time=row.created_date,
                user=row.user,
                role=row.role,
                method=row.method,
                path=row.path,
                status_code=row.status_code,
                message=row.message,
            )
            for row in reversed(rows)
        ],
    )
