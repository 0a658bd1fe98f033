"""Wire schemas of the worker wrapper's routes: running, heartbeat, done, error."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.schemas.types import (
    Count,
    Id,
    Int32,
    Limit32,
    OptionalName,
    ReportedText,
    Seconds,
    check_text,
)

__all__ = [
    "InstanceDoneIn",
    "InstanceErrorIn",
    "InstanceHeartbeatIn",
    "InstanceReportIn",
    "InstanceReportOut",
    "InstanceReportsIn",
    "InstanceReportsOut",
    "InstanceRunningIn",
    "InstanceRunningOut",
    "InstanceStatusOut",
    "ReportRefusal",
    "Usage",
    "enforceable_limits",
    "output_file_path",
    "running_answer",
]

# The worker keeps this many characters of each of stdout and stderr for the server.
TAIL_CHARACTERS = 10_000
# Reports in one batch: a pool's reports since its last batch, so far fewer in practice.
MAX_REPORTS_PER_BATCH = 10_000


# An output tail: the end of what the command printed, any bytes included.
Tail = Annotated[ReportedText, StringConstraints(max_length=TAIL_CHARACTERS)]
Duration = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceRunningIn(_In):
    """The wrapper started on a node; refused (409) when its version differs from the server's."""

    host: OptionalName
    pid: Limit32
    distributor_id: (
        Annotated[str, StringConstraints(max_length=64), AfterValidator(check_text)] | None
    ) = None
    herdsman_version: str
    next_report_seconds: Seconds


class InstanceRunningOut(BaseModel):
    """What the wrapper needs to run the task; ``status`` R, or the status that refused it.

    ``memory`` (GiB) and ``runtime`` (seconds) are the task's requests, None when it made
    none. A cluster scheduler enforces them itself; a wrapper on a cluster without one (the
    local plugins) may be asked to enforce them instead.
    """

    status: str
    task_instance_id: int
    task_id: int
    workflow_id: int
    workflow_run_id: int
    name: str
    command: str
    stdout_dir: str | None
    stderr_dir: str | None
    memory: float | None = None
    runtime: float | None = None


def enforceable_limits(resources: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """The ``memory`` (GiB) and ``runtime`` (s) requests of validated resources, for a wrapper.

    Canonical requests are positive numbers; anything else is no request a wrapper could
    enforce, so it counts as none rather than failing the worker's start.
    """

    def limit(key: str) -> float | None:
        value = resources.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return float(value)
        return None

    return limit("memory"), limit("runtime")


def running_answer(
    *,
    status: str,
    task_instance_id: int,
    task_id: int,
    workflow_id: int,
    workflow_run_id: int,
    name: str,
    command: str,
    resources: Mapping[str, Any],
) -> InstanceRunningOut:
    """The answer to an instance's running report, from its task and validated resources.

    The server answers the report with it; a local pool, which starts a job before the
    server's answer arrives, plans the same answer from the job's claim. Both build it here,
    so a wrapper is told the same output directories and limits either way.
    """
    memory, runtime = enforceable_limits(resources)
    return InstanceRunningOut(
        status=status,
        task_instance_id=task_instance_id,
        task_id=task_id,
        workflow_id=workflow_id,
        workflow_run_id=workflow_run_id,
        name=name,
        command=command,
        stdout_dir=resources.get("stdout"),
        stderr_dir=resources.get("stderr"),
        memory=memory,
        runtime=runtime,
    )


def output_file_path(
    directory: str | None, task_name: str, suffix: str, job_id: str
) -> Path | None:
    """``<directory>/<task name>.<suffix><job id>`` (e.g. ``fit.o1234``), or None without a dir.

    A ``/`` in the task name would point into another directory, so it becomes ``_``. The
    worker writes there, and the server records the same paths when the attempt starts, so
    the GUI can follow the files of a running attempt.
    """
    if not directory:
        return None
    safe_name = task_name.replace(os.sep, "_") or "task"
    return Path(directory) / f"{safe_name}.{suffix}{job_id}"


class Usage(_In):
    """Resources the command's process tree used: seconds, seconds, bytes."""

    wall_time: Duration | None = None
    cpu_time: Duration | None = None
    max_rss: Count | None = None


class InstanceHeartbeatIn(_In):
    next_report_seconds: Seconds
    stdout_tail: Tail | None = None
    stderr_tail: Tail | None = None


class InstanceStatusOut(BaseModel):
    """The server's view after the report: K means the wrapper must kill its command."""

    task_instance_id: int
    status: str


class InstanceDoneIn(_In):
    exit_code: Int32 = 0
    stdout_tail: Tail = ""
    stderr_tail: Tail = ""
    stdout_path: ReportedText | None = None
    stderr_path: ReportedText | None = None
    usage: Usage = Usage()


class InstanceErrorIn(_In):
    """A failed attempt. Z: killed for resources (retried with more); U: lost, not its fault."""

    status: ErrorStatus
    exit_code: Int32 | None = None
    message: ReportedText
    stdout_tail: Tail = ""
    stderr_tail: Tail = ""
    stdout_path: ReportedText | None = None
    stderr_path: ReportedText | None = None
    usage: Usage = Usage()


class InstanceReportIn(_In):
    """One report of a batch: exactly one of ``running``, ``heartbeat``, ``done``, ``error``.

    Each means what the single route of the same name means; a batch is how a local pool's
    distributor sends the reports of all its processes in one request.
    """

    task_instance_id: Id
    running: InstanceRunningIn | None = None
    heartbeat: InstanceHeartbeatIn | None = None
    done: InstanceDoneIn | None = None
    error: InstanceErrorIn | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> InstanceReportIn:
        kinds = [self.running, self.heartbeat, self.done, self.error]
        if sum(kind is not None for kind in kinds) != 1:
            raise ValueError("a report must have exactly one of running, heartbeat, done and error")
        return self


class InstanceReportsIn(_In):
    reports: list[InstanceReportIn] = Field(max_length=MAX_REPORTS_PER_BATCH)


class ReportRefusal(BaseModel):
    """Why the server refused one report of a batch: the error its single route would raise."""

    error: str
    message: str
    details: dict[str, Any] = {}


class InstanceReportOut(BaseModel):
    """The answer to one report: the instance's status afterwards, or why it was refused.

    ``running`` is set for an accepted running report: what its single route answers.
    """

    task_instance_id: int
    status: str | None = None
    running: InstanceRunningOut | None = None
    refused: ReportRefusal | None = None


class InstanceReportsOut(BaseModel):
    """Answers aligned with the batch's reports."""

    reports: list[InstanceReportOut]
