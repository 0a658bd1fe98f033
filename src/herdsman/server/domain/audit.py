"""The audit trail: one row per state-changing request by a person, and per refusal."""

from __future__ import annotations

from sqlalchemy.orm import Session

from herdsman.server.database import models

__all__ = ["record"]

MESSAGE_LENGTH = 1024
PATH_LENGTH = 1024


def record(
    session: Session,
    *,
    user: str,
    role: str,
    token_kind: str,
    method: str,
    path: str,
    workflow_id: int | None,
    status_code: int,
    message: str,
) -> None:
    session.add(
        models.Audit(
            user=user[:255],
            role=role,
            token_kind=token_kind,
            method=method,
            path=path[:PATH_LENGTH],
            workflow_id=workflow_id,
            status_code=status_code,
            message=message[:MESSAGE_LENGTH],
        )
    )
