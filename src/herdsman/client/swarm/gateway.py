"""The swarm's only door to the server: one method per HTTP call, typed replies.

Services depend on the :class:`SwarmGateway` protocol, never on HTTP, so tests swap in an
in-memory server (``tests/support/swarm_gateway.py``) without patching anything. This module
is the only swarm code that knows the routes; the one read it shares with binding (a cluster
and its queues) comes from :mod:`herdsman.client.bind_requests`.

Failures surface as :mod:`herdsman.core.errors` exceptions raised by the requester: transport
failures and 503s have already been retried when :class:`ServerUnavailableError` arrives.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Protocol

from herdsman.client import bind_requests
from herdsman.core.changes import ChangeFilter, ChangeKind
from herdsman.core.requester import Requester
from herdsman.core.schemas.auth import TokenOut
from herdsman.core.schemas.client import ClusterOut
from herdsman.core.schemas.swarm import (
    AdjustedResourcesIn,
    AdjustedResourcesItemIn,
    AdjustedResourcesOut,
    ChangesOut,
    QueueTasksIn,
    RunHeartbeatIn,
    RunHeartbeatOut,
    RunStatusIn,
    RunStatusOut,
    SwarmEdgesOut,
    SwarmTasksOut,
    TaskResourcesOut,
    TaskResourcesQueryIn,
    TaskStatusesOut,
    WorkflowRunIn,
    WorkflowRunOut,
)

__all__ = ["MAX_POLL_SECONDS", "TASK_AND_RUN_CHANGES", "HttpSwarmGateway", "SwarmGateway"]

MAX_POLL_SECONDS = 10.0
"""Longest long-poll the swarm asks for.

The requester's HTTP timeout is fixed per client (120 s by default, ``http.timeout``), so the
server's wait must stay well below it or a quiet feed would look like a dead server. The
server caps waits at 30 s; 10 s leaves room for a slow answer on a loaded server.
"""

TASK_AND_RUN_CHANGES = ChangeFilter.of({ChangeKind.TASK: None, ChangeKind.RUN: None})
"""What a feed read asks for when its caller names no filter: every task and run change."""


class SwarmGateway(Protocol):
    """The HTTP calls of one workflow run. Every state-changing call is idempotent."""

    def create_run(
        self, workflow_id: int, *, resume: bool, reset_running_jobs: bool
    ) -> WorkflowRunOut:
        """Start a run; ConflictError if another live run holds the workflow and not resume."""
        ...

    def get_run(self, run_id: int) -> RunStatusOut: ...

    def link_run(self, run_id: int) -> WorkflowRunOut:
        """Bind a registered run once the runs it waited on have let go (409 while they hold)."""
        ...

    def force_release(self, run_id: int) -> RunStatusOut:
        """End a letting-go run whose kills nobody confirmed: its jobs are taken to be gone."""
        ...

    def set_run_status(self, run_id: int, status: str, message: str = "") -> RunStatusOut:
        """Move the run to ``status``; TransitionRefused carries the current status."""
        ...

    def heartbeat(self, run_id: int, next_report_seconds: float) -> RunHeartbeatOut:
        """Promise the next beat within ``next_report_seconds``; answers status and limits."""
        ...

    def queue_tasks(
        self, run_id: int, task_ids: tuple[int, ...], task_resources_id: int = 0
    ) -> TaskStatusesOut:
        """Queue REGISTERING / ADJUSTING_RESOURCES tasks; answers every task's status.

        A ``task_resources_id`` other than 0 becomes the resources of every task queued.
        """
        ...

    def changes(
        self,
        workflow_id: int,
        after: int,
        timeout: float,
        kinds: ChangeFilter = TASK_AND_RUN_CHANGES,
    ) -> ChangesOut:
        """Changes with seq > ``after`` that ``kinds`` wants; waits up to ``timeout`` seconds
        when there are none."""
        ...

    def tasks_page(self, workflow_id: int, after_task_id: int, limit: int) -> SwarmTasksOut:
        """Tasks with id > ``after_task_id`` in id order."""
        ...

    def edges_page(self, workflow_id: int, offset: int, limit: int) -> SwarmEdgesOut:
        """Dependencies ``offset`` to ``offset + limit``, in a stable order."""
        ...

    def get_cluster(self, name: str) -> ClusterOut:
        """A cluster with its queues and their limits; NotFoundError if it does not exist."""
        ...

    def read_resources(
        self, task_resources_ids: Sequence[int], task_ids: Sequence[int] = ()
    ) -> TaskResourcesOut:
        """Stored requests by id, and the current ones of ``task_ids``; NotFoundError if absent."""
        ...

    def create_adjusted_resources(
        self, workflow_id: int, items: Sequence[AdjustedResourcesItemIn]
    ) -> AdjustedResourcesOut:
        """Store new requests, one row each; InvalidResourceError names an unknown queue."""
        ...


class HttpSwarmGateway:
    """:class:`SwarmGateway` over a :class:`Requester` (thread-safe, as the requester is)."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

    def create_run(
        self, workflow_id: int, *, resume: bool, reset_running_jobs: bool
    ) -> WorkflowRunOut:
        from herdsman import __version__  # at call time: herdsman imports client modules

        body = WorkflowRunIn(
            host=socket.gethostname()[:255],
            pid=os.getpid(),
            herdsman_version=__version__,
            resume=resume,
            reset_running_jobs=reset_running_jobs,
        )
        return self._requester.post(f"/workflows/{workflow_id}/runs", body, WorkflowRunOut)

    def run_token(self, run_id: int) -> str:
        """A token for this run's distributors and jobs, which may act on it alone."""
        return self._requester.post(f"/workflow_runs/{run_id}/token", None, TokenOut).token

    def get_run(self, run_id: int) -> RunStatusOut:
        return self._requester.get(f"/workflow_runs/{run_id}", RunStatusOut)

    def link_run(self, run_id: int) -> WorkflowRunOut:
        return self._requester.post(f"/workflow_runs/{run_id}/link", None, WorkflowRunOut)

    def force_release(self, run_id: int) -> RunStatusOut:
        return self._requester.post(f"/workflow_runs/{run_id}/force_release", None, RunStatusOut)

    def set_run_status(self, run_id: int, status: str, message: str = "") -> RunStatusOut:
        body = RunStatusIn(status=status, message=message)
        return self._requester.put(f"/workflow_runs/{run_id}/status", body, RunStatusOut)

    def heartbeat(self, run_id: int, next_report_seconds: float) -> RunHeartbeatOut:
        body = RunHeartbeatIn(next_report_seconds=next_report_seconds)
        return self._requester.post(f"/workflow_runs/{run_id}/heartbeat", body, RunHeartbeatOut)

    def queue_tasks(
        self, run_id: int, task_ids: tuple[int, ...], task_resources_id: int = 0
    ) -> TaskStatusesOut:
        resources = [task_resources_id] * len(task_ids) if task_resources_id else None
        body = QueueTasksIn(task_ids=list(task_ids), task_resources_ids=resources)
        return self._requester.post(f"/workflow_runs/{run_id}/queue", body, TaskStatusesOut)

    def changes(
        self,
        workflow_id: int,
        after: int,
        timeout: float,
        kinds: ChangeFilter = TASK_AND_RUN_CHANGES,
    ) -> ChangesOut:
        wait = min(max(timeout, 0.0), MAX_POLL_SECONDS)
        return self._requester.get(
            f"/workflows/{workflow_id}/changes",
            ChangesOut,
            params={"after": after, "timeout": wait, "kinds": kinds.spec},
        )

    def tasks_page(self, workflow_id: int, after_task_id: int, limit: int) -> SwarmTasksOut:
        return self._requester.get(
            f"/workflows/{workflow_id}/swarm_tasks",
            SwarmTasksOut,
            params={"after_task_id": after_task_id, "limit": limit},
        )

    def edges_page(self, workflow_id: int, offset: int, limit: int) -> SwarmEdgesOut:
        return self._requester.get(
            f"/workflows/{workflow_id}/swarm_edges",
            SwarmEdgesOut,
            params={"offset": offset, "limit": limit},
        )

    def get_cluster(self, name: str) -> ClusterOut:
        return bind_requests.get_cluster(self._requester, name)

    def read_resources(
        self, task_resources_ids: Sequence[int], task_ids: Sequence[int] = ()
    ) -> TaskResourcesOut:
        body = TaskResourcesQueryIn(
            task_resources_ids=list(task_resources_ids), task_ids=list(task_ids)
        )
        return self._requester.post("/task_resources/query", body, TaskResourcesOut)

    def create_adjusted_resources(
        self, workflow_id: int, items: Sequence[AdjustedResourcesItemIn]
    ) -> AdjustedResourcesOut:
        body = AdjustedResourcesIn(items=list(items))
        return self._requester.post(
            f"/workflows/{workflow_id}/adjusted_resources", body, AdjustedResourcesOut
        )
