"""Steering a workflow from any process that reaches the server: its limits while it runs,
stopping it, and the owner's resets and task updates.

The running swarm learns the new limits from its next heartbeat, so a change takes effect
within one heartbeat interval (30 s by default): lowering a limit stops new launches until
enough active tasks have finished; nothing running is killed. A value set here survives a
resume of the workflow, unless the resuming script binds a limit other than the one it bound
before (see :func:`herdsman.server.domain.binding.bind_arrays`).
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import structlog

from herdsman.core.errors import InvalidInputError
from herdsman.core.lifecycle import OWNER_TASK_TARGETS
from herdsman.core.requester import Requester
from herdsman.core.schemas.control import (
    ConcurrencyLimitIn,
    OwnerUpdateOut,
    TaskUpdateIn,
    WorkflowResetIn,
)
from herdsman.core.schemas.swarm import ConcurrencyOut, RunStatusOut

__all__ = [
    "reset_workflow",
    "set_max_concurrently_running",
    "stop_workflow",
    "update_task_statuses",
]

logger = structlog.get_logger(__name__)


def set_max_concurrently_running(
    workflow_id: int,
    limit: int,
    *,
    task_template_name: str | None = None,
    requester: Requester | None = None,
) -> ConcurrencyOut:
    """Set how many of the workflow's tasks may be active at once; 0 pauses launching.

    With ``task_template_name`` the limit applies to the workflow's tasks of that template
    only (their array), else to the whole workflow. Returns the limits now in force: the
    workflow's and each array's (by array id). Raises NotFoundError for an unknown workflow or
    a template the workflow does not use (the message lists the ones it does).

    ``requester`` defaults to the configured server, or the embedded one.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise InvalidInputError(
            f"max_concurrently_running {limit!r} must be a whole number >= 0 (0 pauses launching)"
        )
    if requester is None:
        from herdsman.client.embedded import default_requester

        with default_requester() as owned:
            return _send(owned, workflow_id, limit, task_template_name)
    return _send(requester, workflow_id, limit, task_template_name)


def _send(
    requester: Requester, workflow_id: int, limit: int, task_template_name: str | None
) -> ConcurrencyOut:
    path = f"/workflows/{workflow_id}/max_concurrently_running"
    if task_template_name is not None:
        path = (
            f"/workflows/{workflow_id}/task_templates/{quote(task_template_name, safe='')}"
            "/max_concurrently_running"
        )
    limits = requester.put(path, ConcurrencyLimitIn(max_concurrently_running=limit), ConcurrencyOut)
    logger.info(
        "concurrency_limit_set",
        workflow_id=workflow_id,
        task_template_name=task_template_name,
        max_concurrently_running=limit,
    )
    return limits


def stop_workflow(requester: Requester, workflow_id: int) -> RunStatusOut:
    """Stop the run holding the workflow; its jobs are killed. Returns the run's status.

    The swarm notices at its next heartbeat and ends; a stopped workflow can be resumed.
    Raises ConflictError when no run holds the workflow.
    """
    stopped = requester.post(f"/workflows/{workflow_id}/stop", None, RunStatusOut)
    logger.info(
        "workflow_stopped", workflow_id=workflow_id, workflow_run_id=stopped.workflow_run_id
    )
    return stopped


def reset_workflow(requester: Requester, workflow_id: int, *, partial: bool) -> OwnerUpdateOut:
    """Reset a workflow whose last run failed so a resume runs its tasks again.

    Only its owner may; ``partial`` keeps done tasks done. Raises PermissionDeniedError for
    anyone else and ConflictError unless the last run failed.
    """
    reset = requester.post(
        f"/workflows/{workflow_id}/reset",
        WorkflowResetIn(partial=partial),
        OwnerUpdateOut,
    )
    logger.info("workflow_reset", workflow_id=workflow_id, tasks=len(reset.changed_task_ids))
    return reset


def update_task_statuses(
    requester: Requester,
    workflow_id: int,
    task_ids: Sequence[int],
    status: str,
    *,
    recursive: bool,
) -> OwnerUpdateOut:
    """Set tasks of a workflow no run holds to ``status``, the letter of one of
    :data:`~herdsman.core.lifecycle.OWNER_TASK_TARGETS`: done, or back to registering.

    Resetting a task resets every task downstream of it; ``recursive`` with done marks every
    upstream task done too. Only the workflow's owner may.
    """
    target = next((t for t in OWNER_TASK_TARGETS if t.value == status), None)
    if target is None:
        allowed = " or ".join(f"{t.value} ({t.name.lower()})" for t in sorted(OWNER_TASK_TARGETS))
        raise InvalidInputError(f"status {status!r} must be {allowed}")
    updated = requester.post(
        f"/workflows/{workflow_id}/task_updates",
        TaskUpdateIn(
            task_ids=list(task_ids),
            status=target.value,
            recursive=recursive,
        ),
        OwnerUpdateOut,
    )
    logger.info(
        "task_statuses_updated",
        workflow_id=workflow_id,
        status=status,
        tasks=len(updated.changed_task_ids),
    )
    return updated
