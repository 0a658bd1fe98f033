"""Wire schemas of the distributor's routes: claiming work, recording launches, kills."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.schemas.types import Id, Int32, OptionalName, ReportedText, check_text
from herdsman.core.schemas.worker import Usage

__all__ = [
    "ClaimIn",
    "ClaimedInstance",
    "ClaimedOut",
    "FinishIn",
    "InstanceRef",
    "KilledIn",
    "LaunchedIn",
    "LaunchedItem",
    "PendingReasonItem",
    "PendingReasonsIn",
    "PendingReasonsOut",
    "SubmitFailedIn",
    "TransitionsOut",
    "TriageIn",
    "TriageOut",
    "TriagedIn",
    "TriagedItem",
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClaimIn(_In):
    """Take up to ``limit`` queued instances of the run (Q -> I), oldest first.

    ``cluster_name``: only instances of tasks on that cluster (a workflow may span several,
    one distributor each). ``claim_id``: the caller's name for this claim; a request replayed
    after a lost answer gets the instances the first one took instead of taking more.
    """

    limit: int = Field(default=10_000, ge=1, le=100_000)
    cluster_name: OptionalName | None = None
    claim_id: (
        Annotated[str, StringConstraints(min_length=1, max_length=36), AfterValidator(check_text)]
        | None
    ) = None


class ClaimedInstance(BaseModel):
    """Everything needed to submit one instance: the command and its validated resources."""

    task_instance_id: int
    task_id: int
    array_id: int
    name: str
    command: str
    queue: str
    resources: dict[str, Any]
    # The array's name (its template's) and its max_concurrently_running when claimed: a
    # cluster with job arrays names and throttles the job array after them.
    array_name: str = ""
    array_limit: int | None = None


class ClaimedOut(BaseModel):
    workflow_run_id: int
    workflow_id: int
    instances: list[ClaimedInstance]


class LaunchedItem(_In):
    task_instance_id: Id
    distributor_id: Annotated[
        str, StringConstraints(min_length=1, max_length=64), AfterValidator(check_text)
    ]
    array_batch_num: Int32 | None = None
    array_step_id: Int32 | None = None


class LaunchedIn(_In):
    """Instances handed to the cluster (I -> O) with the cluster's job ids."""

    items: list[LaunchedItem]


class SubmitFailedIn(_In):
    """Instances the cluster refused (I -> W); ``message`` is the cluster's error text."""

    task_instance_ids: list[Id]
    message: ReportedText


class TransitionsOut(BaseModel):
    """Status of each instance after the request, aligned with the request's ids."""

    task_instance_ids: list[int]
    statuses: list[str]


class FinishIn(_In):
    """Instances the dummy cluster "ran": they go straight to D without a process."""

    task_instance_ids: list[Id]


class InstanceRef(BaseModel):
    """An instance the distributor must look after, with its cluster job id (None: unsent)."""

    task_instance_id: int
    distributor_id: str | None
    status: str


class TriageIn(BaseModel):
    """``judge_silence``: move overdue running instances to T. A distributor that could not
    reach the server turns it off for a while: the silence was the outage's, and the workers
    report again within a heartbeat interval once the server is back."""

    judge_silence: bool = True


class TriageOut(BaseModel):
    """The run's instances that need the cluster's word, after overdue ones moved R -> T.

    ``launched``: submitted, not yet running; still alive only while the cluster knows their
    jobs. ``triaging``: stopped heart-beating (T) or lost before they ran (X). ``kill``: told
    to die (K). ``live``: instances of the run not yet final (I, O, R, T, X, K); a distributor
    whose run has ended leaves once this reaches 0.
    """

    workflow_run_id: int
    run_status: str
    launched: list[InstanceRef]
    triaging: list[InstanceRef]
    kill: list[InstanceRef]
    live: int


class TriagedItem(_In):
    """What the cluster says became of one instance; ``message`` is recorded as its error.

    ``usage``: what the cluster measured of the job (its accounting), for an instance whose
    worker could not report its own; None when the cluster keeps no such record.
    """

    task_instance_id: Id
    status: ErrorStatus
    message: ReportedText
    usage: Usage | None = None


class TriagedIn(_In):
    """Outcomes of triage: T -> E/Z/U; a launched instance whose job vanished goes O -> X -> E."""

    items: list[TriagedItem]


class KilledIn(_In):
    """Instances whose kill request (K) was carried out: K -> F."""

    task_instance_ids: list[Id]


class PendingReasonItem(_In):
    """Why the cluster has yet to start one launched instance's job, in the cluster's word
    (Slurm's pending reason, ``squeue %r``: ``Priority``, ``Resources``, ...)."""

    task_instance_id: Id
    reason: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class PendingReasonsIn(_In):
    """The pending reasons of a run's launched instances at the distributor's last poll of
    the cluster; ``scheduler``: whose words they are (``Slurm``). Replaces the run's last
    report: an instance not named has none (any more)."""

    scheduler: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    items: list[PendingReasonItem] = Field(default_factory=list, max_length=100_000)


class PendingReasonsOut(BaseModel):
    """How many instances of the run now have a pending reason on this server."""

    recorded: int
