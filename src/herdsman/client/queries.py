"""What the ``herdsman`` command and a workflow's script read from the server, as typed
answers, and the few things derived from them: error messages grouped by likeness, and a
resources file from usage.

Every function takes the requester to use, so a command opens one connection for all its
reads; :func:`herdsman.client.embedded.default_requester` gives the configured one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from herdsman.core.errors import InvalidInputError
from herdsman.core.lifecycle import TaskProgress, progress_of
from herdsman.core.requester import Requester
from herdsman.core.schemas import queries as schemas
from herdsman.core.schemas.auth import WhoAmIOut
from herdsman.core.schemas.queries import HistoryOut
from herdsman.core.statuses import TaskStatus
from herdsman.core.suggestions import (
    Strategy,
    resources_yaml,
    strategy,
    suggested_memory,
    suggested_runtime,
)

__all__ = [
    "TASK_STATUS_GROUPS",
    "ErrorGroup",
    "Strategy",
    "error_groups",
    "group_errors",
    "killed_for_resources",
    "log_paths",
    "resource_usage",
    "resources_yaml",
    "strategy",
    "suggested_memory",
    "suggested_runtime",
    "task_attempts",
    "task_dependencies",
    "task_statuses",
    "workflow_clusters",
    "workflow_detail",
    "workflow_errors",
    "workflow_summaries",
    "workflow_tasks",
]

TASK_STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    progress.name: tuple(status.value for status in TaskStatus if progress_of(status) is progress)
    for progress in TaskProgress
}
"""The coarse task states the summaries count, by name, as the letters they cover."""

# Page size for reading a workflow's tasks: the server's largest.
_PAGE = 10_000


def workflow_summaries(
    requester: Requester, workflow_ids: Sequence[int], user: str | None, limit: int
) -> schemas.WorkflowSummariesOut:
    params: dict[str, object] = {"limit": limit, "workflow_id": list(workflow_ids)}
    if user is not None:
        params["user"] = user
    return requester.get("/workflow_summaries", schemas.WorkflowSummariesOut, params=params)


def workflow_detail(requester: Requester, workflow_id: int) -> schemas.WorkflowDetailOut:
    """The workflow with its tasks counted by status."""
    return requester.get(f"/workflows/{workflow_id}", schemas.WorkflowDetailOut)


def workflow_clusters(requester: Requester, workflow_id: int) -> list[str]:
    """Names of the clusters the workflow's tasks run on: one distributor each."""
    return requester.get(f"/workflows/{workflow_id}/clusters", schemas.WorkflowClustersOut).clusters


def workflow_errors(
    requester: Requester, workflow_id: int, limit: int
) -> schemas.WorkflowErrorsOut:
    """Up to ``limit`` fatal tasks of the workflow, with their last errors and output tails."""
    return requester.get(
        f"/workflows/{workflow_id}/errors", schemas.WorkflowErrorsOut, params={"limit": limit}
    )


def task_statuses(names: Iterable[str]) -> list[str]:
    """Letters for status names given by a user: a group (PENDING, RUNNING, DONE, FATAL), a
    task status's name (ERROR_RECOVERABLE) or its letter (E), in any case."""
    letters: list[str] = []
    by_name = {status.name: status.value for status in TaskStatus}
    for name in names:
        key = name.strip().upper()
        if key in TASK_STATUS_GROUPS:
            found = TASK_STATUS_GROUPS[key]
        elif key in by_name:
            found = (by_name[key],)
        elif key in by_name.values():
            found = (key,)
        else:
            known = ", ".join(dict.fromkeys([*TASK_STATUS_GROUPS, *by_name]))
            raise InvalidInputError(f"unknown task status {name!r}; use one of {known}")
        letters.extend(letter for letter in found if letter not in letters)
    return letters


def workflow_tasks(
    requester: Requester, workflow_id: int, statuses: Sequence[str], limit: int
) -> schemas.TasksPageOut:
    """The first ``limit`` tasks (by id) in ``statuses`` (letters; all when empty)."""
    tasks: list[schemas.TaskOut] = []
    count = 0
    while len(tasks) < limit:
        page = requester.get(
            f"/workflows/{workflow_id}/tasks",
            schemas.TasksPageOut,
            params={
                "offset": len(tasks),
                "limit": min(_PAGE, limit - len(tasks)),
                "status": list(statuses),
            },
        )
        count = page.count
        tasks.extend(page.tasks)
        if not page.tasks:
            break
    return schemas.TasksPageOut(count=count, tasks=tasks)


def killed_for_resources(requester: Requester, workflow_id: int) -> schemas.KilledForResourcesOut:
    """The workflow's unfinished tasks whose last attempt was killed for resources, in one
    request."""
    return requester.get(
        f"/workflows/{workflow_id}/killed_for_resources", schemas.KilledForResourcesOut
    )


def task_attempts(
    requester: Requester, task_id: int, tail_lines: int = 0
) -> schemas.TaskAttemptsOut:
    """Every attempt at the task; output tails cut to their last ``tail_lines`` lines (0: all
    the worker kept, up to 10,000 characters each)."""
    return requester.get(
        f"/tasks/{task_id}/attempts", schemas.TaskAttemptsOut, params={"tail_lines": tail_lines}
    )


def task_dependencies(requester: Requester, task_id: int) -> schemas.DependenciesOut:
    return requester.get(f"/tasks/{task_id}/dependencies", schemas.DependenciesOut)


def log_paths(
    requester: Requester, workflow_id: int, task_template: str | None, limit: int
) -> schemas.LogPathsOut:
    params: dict[str, object] = {"limit": limit}
    if task_template is not None:
        params["task_template"] = task_template
    return requester.get(f"/workflows/{workflow_id}/log_paths", schemas.LogPathsOut, params=params)


@dataclass(frozen=True)
class ErrorGroup:
    """Error messages that differ only in numbers and ids; ``sample`` is the newest one.

    For a list of messages at hand; the server groups a workflow's stored errors itself
    (:func:`error_groups`).
    """

    pattern: str
    count: int
    task_ids: tuple[int, ...]
    sample: str
    latest: str


def error_groups(
    requester: Requester, workflow_id: int, *, limit: int = 100, tail_lines: int = 20
) -> schemas.ErrorGroupsOut:
    """The workflow's errors grouped on the server by signature and exit class (see
    :mod:`herdsman.core.error_signature`), largest group first, each with its newest error
    and the last ``tail_lines`` lines of that attempt's output (0: all of it)."""
    return requester.get(
        f"/workflows/{workflow_id}/error_groups",
        schemas.ErrorGroupsOut,
        params={"limit": limit, "tail_lines": tail_lines},
    )


# Numbers, hex ids and the like vary between otherwise identical messages: ids, sizes, times.
# Exit codes and signals are kept: "exit code 1" and "exit code 137" are different failures.
_VARYING = re.compile(
    r"\b0x[0-9a-f]+\b|\b[0-9a-f]{8,}\b|(?<!exit code )(?<!signal )(?<![\d.])\d+(?:\.\d+)?",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
_PATTERN_CHARACTERS = 300


def group_errors(errors: Iterable[schemas.ErrorMessageOut]) -> list[ErrorGroup]:
    """Group messages whose text is the same once numbers and long hex ids are masked.

    ``errors`` come newest first (as the server sends them), so each group's first message
    is its newest and becomes the sample.
    """
    groups: dict[str, list[schemas.ErrorMessageOut]] = {}
    for error in errors:
        masked = _VARYING.sub("#", _SPACE.sub(" ", error.description.strip()))
        groups.setdefault(masked[:_PATTERN_CHARACTERS], []).append(error)
    result = [
        ErrorGroup(
            pattern=pattern,
            count=len(members),
            task_ids=tuple(sorted({member.task_id for member in members})),
            sample=members[0].description,
            latest=members[0].error_time,
        )
        for pattern, members in groups.items()
    ]
    result.sort(key=lambda group: (-group.count, group.pattern))
    return result


def resource_usage(
    requester: Requester,
    task_template: str | None,
    workflow_ids: Sequence[int],
    *,
    tool: str | None = None,
    node_args: Mapping[str, str] | None = None,
) -> schemas.ResourceUsageOut:
    """Usage statistics of done attempts by tool, template and cluster; ``node_args`` keeps
    the tasks whose node has those values."""
    params: dict[str, object] = {"workflow_id": list(workflow_ids)}
    if task_template is not None:
        params["task_template"] = task_template
    if tool is not None:
        params["tool"] = tool
    if node_args:
        params["node_arg"] = [f"{name}={value}" for name, value in node_args.items()]
    return requester.get("/resource_usage", schemas.ResourceUsageOut, params=params)


def whoami(requester: Requester) -> WhoAmIOut:
    """Who the server takes the caller to be: the user its token names, and its role."""
    return requester.get("/auth/whoami", WhoAmIOut)


def workflow_history(requester: Requester, workflow_id: int, limit: int) -> HistoryOut:
    """The workflow's audit trail: who changed it, how, and the server's answer."""
    return requester.get(f"/workflows/{workflow_id}/history", HistoryOut, {"limit": limit})
