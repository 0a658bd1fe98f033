"""Wire schemas of the distributor's routes: claiming work, recording launches, kills."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "ClaimIn",
    "ClaimedInstance",
    "ClaimedOut",
    "FinishIn",
    "LaunchedIn",
    "LaunchedItem",
    "SubmitFailedIn",
    "TransitionsOut",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClaimIn(_In):
    """Take up to ``limit`` queued instances of the run (Q -> I), oldest first."""

    limit: int = Field(default=10_000, ge=1, le=100_000)


class ClaimedInstance(BaseModel):
    """Everything needed to submit one instance: the command and its validated resources."""

    task_instance_id: int
    task_id: int
    array_id: int
    name: str
    command: str
    queue: str
    resources: dict[str, Any]


class ClaimedOut(BaseModel):
    workflow_run_id: int
    workflow_id: int
    instances: list[ClaimedInstance]


class LaunchedItem(_In):
    task_instance_id: int
    distributor_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    array_batch_num: int | None = None
    array_step_id: int | None = None


class LaunchedIn(_In):
    """Instances handed to the cluster (I -> O) with the cluster's job ids."""

    items: list[LaunchedItem]


class SubmitFailedIn(_In):
    """Instances the cluster refused (I -> W); ``message`` is the cluster's error text."""

    task_instance_ids: list[int]
    message: str


class TransitionsOut(BaseModel):
    """Status of each instance after the request, aligned with the request's ids."""

    task_instance_ids: list[int]
    statuses: list[str]


class FinishIn(_In):
    """Instances the dummy cluster "ran": they go straight to D without a process."""

    task_instance_ids: list[int]
