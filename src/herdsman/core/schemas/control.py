"""Wire schemas of the control routes: limits while running, stopping, resets, task updates.

A limit change answers with the swarm's own :class:`~herdsman.core.schemas.swarm.ConcurrencyOut`,
the limits in force, which is also what the running swarm reads from its next heartbeat.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from herdsman.core.schemas.types import Id, Limit32

__all__ = [
    "ConcurrencyLimitIn",
    "OwnerUpdateOut",
    "TaskUpdateIn",
    "WorkflowResetIn",
]


class ConcurrencyLimitIn(BaseModel):
    """A new ``max_concurrently_running``; 0 pauses launching (running tasks are not killed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrently_running: Limit32


class WorkflowResetIn(BaseModel):
    """``partial`` keeps done tasks done; a full reset runs every task again. Only the
    workflow's owner or an admin may ask (who asks comes from the token, not the body)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partial: bool = False


class TaskUpdateIn(BaseModel):
    """Set tasks of one workflow to done (D) or back to registering (G).

    Resetting (G) always resets every task downstream too, since their results were made from
    the old output. ``recursive`` with D marks every upstream task done as well.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    task_ids: list[Id] = Field(min_length=1)
    status: Literal["D", "G"]
    recursive: bool = False


class OwnerUpdateOut(BaseModel):
    """The tasks whose status changed (a repeated request changes none) and where the
    workflow is now."""

    workflow_id: int
    workflow_status: str
    changed_task_ids: list[int]
