"""Jobmon's status functions of ``jobmon.client.api``: workflows, their tasks, task attempts.

Jobmon returns pandas DataFrames; herdsman does not depend on pandas, so these return lists
of plain dicts (``pandas.DataFrame(rows)`` makes the frame) and, with ``json=True``, the same
rows as JSON text.
"""

from __future__ import annotations

import getpass
import json as json_module
from collections.abc import Sequence
from typing import Any

from herdsman.client import queries
from herdsman.core.requester import Requester

__all__ = ["task_status", "workflow_status", "workflow_tasks"]

Rows = list[dict[str, Any]]


def _requester(requester: Requester | None) -> Requester:
    if requester is not None:
        return requester
    from herdsman.client.embedded import default_requester

    return default_requester()


def _answer(rows: Rows, as_json: bool) -> Rows | str:
    return json_module.dumps(rows) if as_json else rows


def workflow_status(
    workflow_id: Sequence[int] | None = None,
    user: Sequence[str] | None = None,
    json: bool = False,
    limit: int | None = 5,
    requester: Requester | None = None,
) -> Rows | str:
    """The newest ``limit`` workflows (all with None or a negative limit) of these ids, or of
    these users (you by default), with their tasks counted by status."""
    requester = _requester(requester)
    users: list[str | None] = list(user) if user else [None if workflow_id else getpass.getuser()]
    wanted = 10**9 if limit is None or limit < 0 else limit
    rows: Rows = []
    for name in users:
        summaries = queries.workflow_summaries(requester, list(workflow_id or ()), name, wanted)
        rows.extend(summary.model_dump(mode="json") for summary in summaries.workflows)
    rows.sort(key=lambda row: -int(row["id"]))
    return _answer(rows[:wanted], json)


def workflow_tasks(
    workflow_id: int,
    status: Sequence[str] | None = None,
    json: bool = False,
    limit: int = 5,
    requester: Requester | None = None,
) -> Rows | str:
    """The workflow's first ``limit`` tasks, of these statuses (PENDING, RUNNING, DONE,
    FATAL, a status's name or letter) or all."""
    letters = queries.task_statuses(status or ())
    page = queries.workflow_tasks(_requester(requester), workflow_id, letters, limit)
    return _answer([task.model_dump(mode="json") for task in page.tasks], json)


def task_status(
    task_ids: Sequence[int],
    status: Sequence[str] | None = None,
    json: bool = False,
    requester: Requester | None = None,
) -> Rows | str:
    """One row per attempt (task instance) of these tasks, with the task's status; only tasks
    of these statuses when given."""
    requester = _requester(requester)
    letters = set(queries.task_statuses(status or ()))
    rows: Rows = []
    for task_id in task_ids:
        found = queries.task_attempts(requester, task_id)
        if letters and found.status not in letters:
            continue
        for attempt in found.attempts:
            rows.append(
                {
                    "task_id": found.task_id,
                    "task_name": found.name,
                    "task_status": found.status,
                    "task_instance_id": attempt.id,
                    "status": attempt.status,
                    "host": attempt.host,
                    "distributor_id": attempt.distributor_id,
                    "exit_code": attempt.exit_code,
                    "error": attempt.error,
                    "wall_time": attempt.wall_time,
                    "max_rss": attempt.max_rss,
                }
            )
    return _answer(rows, json)
