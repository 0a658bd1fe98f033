"""Attributes added after binding: to a workflow, or to a task (also from inside the task).

Jobmon's ``add_task_attributes`` finds the task from the environment its command runs in;
herdsman's worker sets ``JOBMON_TASK_ID`` beside ``HERDSMAN_TASK_ID`` for that.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from herdsman.core.errors import InvalidInputError
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import AttributesIn, AttributesOut

__all__ = ["add_task_attributes", "put_task_attributes", "put_workflow_attributes"]

_TASK_ID_VARIABLES = ("HERDSMAN_TASK_ID", "JOBMON_TASK_ID")


def put_task_attributes(
    requester: Requester, task_id: int, attributes: Mapping[str, Any]
) -> AttributesOut:
    """Add or update the task's attributes on the server; answers all its attributes."""
    body = AttributesIn(attributes={str(k): str(v) for k, v in attributes.items()})
    return requester.put(f"/tasks/{task_id}/attributes", body, AttributesOut)


def put_workflow_attributes(
    requester: Requester, workflow_id: int, attributes: Mapping[str, Any]
) -> AttributesOut:
    """Add or update the workflow's attributes on the server; answers all its attributes."""
    body = AttributesIn(attributes={str(k): str(v) for k, v in attributes.items()})
    return requester.put(f"/workflows/{workflow_id}/attributes", body, AttributesOut)


def add_task_attributes(
    attr_dict: Mapping[str, Any],
    task_id: int | None = None,
    requester: Requester | None = None,
) -> None:
    """Record attributes of a task: of ``task_id``, or of the task whose command calls this
    (found from ``HERDSMAN_TASK_ID`` or ``JOBMON_TASK_ID`` in the environment)."""
    if task_id is None:
        task_id = _task_id_from_environment()
    if requester is None:
        from herdsman.client.embedded import default_requester

        requester = default_requester()
    put_task_attributes(requester, task_id, attr_dict)


def _task_id_from_environment() -> int:
    for name in _TASK_ID_VARIABLES:
        value = os.environ.get(name)
        if value:
            try:
                return int(value)
            except ValueError:
                raise InvalidInputError(f"{name}={value!r} is not a task id") from None
    raise InvalidInputError(
        "no task id: pass task_id, or call add_task_attributes from a task's command, where "
        "HERDSMAN_TASK_ID (and JOBMON_TASK_ID) are set"
    )
