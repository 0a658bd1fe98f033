"""How the wrapper's reports reach the server: straight over HTTP, or through a pool's parent.

A wrapper on a cluster node posts each report to its own route (:class:`HttpReporter`). A
process of a local pool hands them to its parent instead, which sends the reports of all its
processes in batches (:mod:`herdsman.plugins._pool`); the wrapper's logic is the same for both
because it only speaks :class:`InstanceReporter`.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from herdsman.core.schemas.worker import (
    InstanceDoneIn,
    InstanceErrorIn,
    InstanceHeartbeatIn,
    InstanceReportsIn,
    InstanceReportsOut,
    InstanceRunningIn,
    InstanceRunningOut,
    InstanceStatusOut,
)

__all__ = ["HttpReporter", "InstanceReporter", "WorkerRequester"]

M = TypeVar("M", bound=BaseModel)


class WorkerRequester(Protocol):
    """The part of :class:`~herdsman.core.requester.Requester` the wrapper uses."""

    def post(self, path: str, body: BaseModel | dict[str, Any] | None, reply: type[M]) -> M: ...


class InstanceReporter(Protocol):
    """The reports of a command that runs: each raises a
    :class:`~herdsman.core.errors.HerdsmanError` when it could not be delivered.

    The running report is not among them: it decides whether the command runs at all, so it
    is made before, by the wrapper (:class:`HttpReporter`) or by a pool's parent for its
    process. ``done`` and ``error`` may return before the server has the report, when whoever
    carries it takes over its delivery (a pool's parent does); a report that is then lost is
    found by triage through the instance's missing heartbeats, as a lost wrapper would be.
    """

    def heartbeat(
        self, task_instance_id: int, report: InstanceHeartbeatIn
    ) -> InstanceStatusOut: ...

    def done(self, task_instance_id: int, report: InstanceDoneIn) -> None: ...

    def error(self, task_instance_id: int, report: InstanceErrorIn) -> None: ...


class HttpReporter:
    """Posts each report, the running report included, to its route of the server: the one
    module that knows the worker's routes.

    A refused running report raises :class:`~herdsman.core.errors.TransitionRefused`, or a
    :class:`~herdsman.core.errors.ConflictError` for a wrapper of another version.
    """

    def __init__(self, requester: WorkerRequester) -> None:
        self._requester = requester

    def running(self, task_instance_id: int, report: InstanceRunningIn) -> InstanceRunningOut:
        path = f"/task_instances/{task_instance_id}/running"
        return self._requester.post(path, report, InstanceRunningOut)

    def heartbeat(self, task_instance_id: int, report: InstanceHeartbeatIn) -> InstanceStatusOut:
        path = f"/task_instances/{task_instance_id}/heartbeat"
        return self._requester.post(path, report, InstanceStatusOut)

    def done(self, task_instance_id: int, report: InstanceDoneIn) -> None:
        self._requester.post(f"/task_instances/{task_instance_id}/done", report, InstanceStatusOut)

    def error(self, task_instance_id: int, report: InstanceErrorIn) -> None:
        self._requester.post(f"/task_instances/{task_instance_id}/error", report, InstanceStatusOut)

    def batch(self, reports: InstanceReportsIn) -> InstanceReportsOut:
        """Reports of many instances in one request (a local pool's), answered one by one."""
        return self._requester.post("/task_instances/reports", reports, InstanceReportsOut)
