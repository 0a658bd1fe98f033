"""The distributor's only door to the server: one method per HTTP call, typed replies.

:class:`~herdsman.distributor.service.DistributorService` depends on the
:class:`DistributorGateway` protocol, never on HTTP, so a test may hand it an in-memory server
instead. This module is the only distributor code that knows the routes; the dummy plugin's
one call (its jobs finish as they are submitted) is here too, because it is a distributor
route. The worker's routes are in :mod:`herdsman.worker.reporter`.

Failures surface as :mod:`herdsman.core.errors` exceptions raised by the requester: transport
failures and 503s have already been retried when :class:`ServerUnavailableError` arrives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from herdsman.core.changes import ChangeFilter
from herdsman.core.schemas.client import ClusterOut
from herdsman.core.schemas.distributor import (
    ClaimedOut,
    ClaimIn,
    FinishIn,
    KilledIn,
    LaunchedIn,
    LaunchedItem,
    PendingReasonItem,
    PendingReasonsIn,
    PendingReasonsOut,
    SubmitFailedIn,
    TransitionsOut,
    TriagedIn,
    TriagedItem,
    TriageIn,
    TriageOut,
)
from herdsman.core.schemas.swarm import ChangesOut, RunStatusOut
from herdsman.core.timing import MAX_FEED_WAIT_SECONDS
from herdsman.distributor.plugin import PluginRequester

__all__ = ["DistributorGateway", "HttpDistributorGateway"]


class DistributorGateway(Protocol):
    """The HTTP calls of one distributor. Every state-changing call is idempotent."""

    def get_cluster(self, name: str) -> ClusterOut:
        """The cluster's plugin and parameters; NotFoundError naming the clusters there are."""
        ...

    def get_run(self, run_id: int) -> RunStatusOut:
        """The run's status and its workflow's id."""
        ...

    def changes(
        self, workflow_id: int, after: int, timeout: float, kinds: ChangeFilter
    ) -> ChangesOut:
        """Changes with seq > ``after`` that ``kinds`` wants; waits up to ``timeout`` seconds
        (at most the server's longest wait) while there are none."""
        ...

    def claim(self, run_id: int, request: ClaimIn) -> ClaimedOut:
        """Take queued instances of the run (Q -> I); a replayed ``claim_id`` gets the same."""
        ...

    def launched(self, items: Sequence[LaunchedItem]) -> TransitionsOut:
        """Instances handed to the cluster with their job ids (I -> O)."""
        ...

    def submit_failed(self, report: SubmitFailedIn) -> TransitionsOut:
        """Instances the cluster refused (I -> W), with the cluster's explanation."""
        ...

    def finish_without_running(self, task_instance_ids: Sequence[int]) -> TransitionsOut:
        """Instances the dummy cluster "ran": straight to D."""
        ...

    def triage(self, run_id: int, *, judge_silence: bool) -> TriageOut:
        """The run's instances that need the cluster's word (overdue running ones move to T
        first when ``judge_silence``)."""
        ...

    def triaged(self, items: Sequence[TriagedItem]) -> TransitionsOut:
        """What the cluster says became of silent and vanished instances."""
        ...

    def killed(self, task_instance_ids: Sequence[int]) -> TransitionsOut:
        """Instances whose kill request was carried out (K -> F)."""
        ...

    def pending_reasons(
        self, run_id: int, scheduler: str, reasons: Mapping[int, str]
    ) -> PendingReasonsOut:
        """Why the cluster has yet to start the run's launched instances (instance id ->
        the cluster's reason), replacing the last report."""
        ...


class HttpDistributorGateway:
    """:class:`DistributorGateway` over a requester (the distributor's, or a plugin's)."""

    def __init__(self, requester: PluginRequester) -> None:
        self._requester = requester

    def get_cluster(self, name: str) -> ClusterOut:
        return self._requester.get(f"/clusters/{name}", ClusterOut)

    def get_run(self, run_id: int) -> RunStatusOut:
        return self._requester.get(f"/workflow_runs/{run_id}", RunStatusOut)

    def changes(
        self, workflow_id: int, after: int, timeout: float, kinds: ChangeFilter
    ) -> ChangesOut:
        params = {
            "after": after,
            "kinds": kinds.spec,
            "timeout": min(timeout, MAX_FEED_WAIT_SECONDS),
        }
        return self._requester.get(f"/workflows/{workflow_id}/changes", ChangesOut, params)

    def claim(self, run_id: int, request: ClaimIn) -> ClaimedOut:
        return self._requester.post(f"/workflow_runs/{run_id}/claim", request, ClaimedOut)

    def launched(self, items: Sequence[LaunchedItem]) -> TransitionsOut:
        body = LaunchedIn(items=list(items))
        return self._requester.post("/task_instances/launched", body, TransitionsOut)

    def submit_failed(self, report: SubmitFailedIn) -> TransitionsOut:
        return self._requester.post("/task_instances/submit_failed", report, TransitionsOut)

    def finish_without_running(self, task_instance_ids: Sequence[int]) -> TransitionsOut:
        body = FinishIn(task_instance_ids=list(task_instance_ids))
        return self._requester.post("/task_instances/finish_without_running", body, TransitionsOut)

    def triage(self, run_id: int, *, judge_silence: bool) -> TriageOut:
        body = TriageIn(judge_silence=judge_silence)
        return self._requester.post(f"/workflow_runs/{run_id}/triage", body, TriageOut)

    def triaged(self, items: Sequence[TriagedItem]) -> TransitionsOut:
        body = TriagedIn(items=list(items))
        return self._requester.post("/task_instances/triaged", body, TransitionsOut)

    def killed(self, task_instance_ids: Sequence[int]) -> TransitionsOut:
        body = KilledIn(task_instance_ids=list(task_instance_ids))
        return self._requester.post("/task_instances/killed", body, TransitionsOut)

    def pending_reasons(
        self, run_id: int, scheduler: str, reasons: Mapping[int, str]
    ) -> PendingReasonsOut:
        body = PendingReasonsIn(
            scheduler=scheduler,
            items=[
                PendingReasonItem(task_instance_id=instance_id, reason=reason)
                for instance_id, reason in sorted(reasons.items())
            ],
        )
        path = f"/workflow_runs/{run_id}/pending_reasons"
        return self._requester.post(path, body, PendingReasonsOut)
