"""Wire schemas of the worker wrapper's routes: running, heartbeat, done, error."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "InstanceDoneIn",
    "InstanceErrorIn",
    "InstanceHeartbeatIn",
    "InstanceRunningIn",
    "InstanceRunningOut",
    "InstanceStatusOut",
    "Usage",
]

# The worker keeps this many characters of each of stdout and stderr for the server.
TAIL_CHARACTERS = 10_000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceRunningIn(_In):
    """The wrapper started on a node; refused (409) when its version differs from the server's."""

    host: Annotated[str, StringConstraints(max_length=255)]
    pid: int
    distributor_id: Annotated[str, StringConstraints(max_length=64)] | None = None
    herdsman_version: str
    next_report_seconds: float = Field(gt=0)


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


class Usage(_In):
    """Resources the command's process tree used: seconds, seconds, bytes."""

    wall_time: float | None = None
    cpu_time: float | None = None
    max_rss: int | None = None


class InstanceHeartbeatIn(_In):
    next_report_seconds: float = Field(gt=0)
    stdout_tail: Annotated[str, StringConstraints(max_length=TAIL_CHARACTERS)] | None = None
    stderr_tail: Annotated[str, StringConstraints(max_length=TAIL_CHARACTERS)] | None = None


class InstanceStatusOut(BaseModel):
    """The server's view after the report: K means the wrapper must kill its command."""

    task_instance_id: int
    status: str


class InstanceDoneIn(_In):
    exit_code: int = 0
    stdout_tail: Annotated[str, StringConstraints(max_length=TAIL_CHARACTERS)] = ""
    stderr_tail: Annotated[str, StringConstraints(max_length=TAIL_CHARACTERS)] = ""
    stdout_path: str | None = None
    stderr_path: str | None = None
    usage: Usage = Usage()


class InstanceErrorIn(_In):
    """A failed attempt. Z: killed for resources (retried with more); U: lost, not its fault."""

    status: Literal["E", "Z", "U"]
    exit_code: int | None = None
    message: str
    stdout_tail: Annotated[str, StringConstraints(max_length=TAIL_CHARACTERS)] = ""
    stderr_tail: Annotated[str, StringConstraints(max_length=TAIL_CHARACTERS)] = ""
    stdout_path: str | None = None
    stderr_path: str | None = None
    usage: Usage = Usage()
