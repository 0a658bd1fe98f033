"""Reading what Slurm's commands print, and what a job's final state means for its task.

Pure functions only, so every format Slurm prints is tested on recorded output with no
cluster: ``sbatch --parsable``, ``squeue -h -r -o '%i|%T|%r'``, ``sacct -n -P -o`` with
:data:`SACCT_FIELDS`, ``scontrol show partition -o`` and ``scontrol show config``.

How a final state maps to a task-instance status (:func:`classify_job`):

* ``OUT_OF_MEMORY`` (the kernel's OOM killer under cgroup enforcement), ``FAILED`` with
  exit code ``0:9`` (slurmstepd's polling memory enforcement kills the step with SIGKILL) and
  ``TIMEOUT``: Z, the task is retried with more of the resource;
* ``FAILED``: E;
* ``NODE_FAIL``, ``PREEMPTED``, ``BOOT_FAIL``: U, lost through no fault of the task;
* ``CANCELLED by <uid>``: E naming who cancelled it, unless herdsman cancelled it itself;
* ``COMPLETED`` with no report from the worker: U (the worker could not reach the server).
"""

from __future__ import annotations

import math
import pwd
import re
from collections.abc import Iterable
from dataclasses import dataclass

from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.statuses import TaskInstanceStatus

__all__ = [
    "SACCT_FIELDS",
    "AccountingRecord",
    "PartitionLimits",
    "classify_job",
    "format_memory",
    "format_time",
    "is_live",
    "parse_config_value",
    "parse_duration",
    "parse_memory_size",
    "parse_partitions",
    "parse_sacct",
    "parse_sbatch",
    "parse_squeue",
    "parse_squeue_reasons",
]

SACCT_FIELDS = "JobID,State,ExitCode,Elapsed,TotalCPU,MaxRSS"
"""The ``sacct -o`` fields :func:`parse_sacct` reads, in this order."""

# States in which a job still holds (or waits for) a place on the cluster.
_LIVE_STATES = frozenset(
    {
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "COMPLETING",
        "SUSPENDED",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
        "RESV_DEL_HOLD",
        "STOPPED",
    }
)
_LOST_STATES = {
    "NODE_FAIL": "its node failed",
    "PREEMPTED": "it was preempted by a job of higher priority",
    "BOOT_FAIL": "its node failed to boot",
}
_UNLIMITED = frozenset({"UNLIMITED", "INFINITE", "NONE", ""})


def parse_sbatch(output: str) -> str:
    """The job id in ``sbatch --parsable`` output (``"123"`` or ``"123;cluster"``)."""
    line = output.strip().splitlines()[-1] if output.strip() else ""
    job_id = line.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise ValueError(f"sbatch printed no job id: {output.strip()!r}")
    return job_id


def parse_squeue(output: str) -> dict[str, str]:
    """Job id -> state from ``squeue -h -r -o '%i|%T|%r'`` (or ``'%i|%T'``); array elements
    as ``"123_4"``.

    A pending array not yet split into elements prints once, as ``123_[4-9%5]``; its range is
    expanded so every element it stands for is known to be queued.
    """
    return {job: fields[0] for job, fields in _squeue_rows(output)}


def parse_squeue_reasons(output: str) -> dict[str, str]:
    """Job id -> Slurm's reason a pending job waits (``%r``: ``Priority``, ``Resources``, ...)
    from the same output as :func:`parse_squeue`; jobs that do not wait, or wait without a
    reason (``None``), are left out."""
    reasons = {}
    for job, fields in _squeue_rows(output):
        if len(fields) > 1 and fields[0] == "PENDING" and fields[1] not in ("", "None"):
            reasons[job] = fields[1]
    return reasons


def _squeue_rows(output: str) -> Iterable[tuple[str, list[str]]]:
    """(job id, its other fields) per element, array ranges expanded."""
    for line in output.splitlines():
        if "|" not in line:
            continue
        job, *fields = (part.strip() for part in line.split("|"))
        base, _, elements = job.partition("_[")
        if elements:
            for index in _expand_indices(elements.rstrip("]").split("%", 1)[0]):
                yield f"{base}_{index}", fields
        else:
            yield job, fields


def _expand_indices(ranges: str) -> Iterable[int]:
    for part in ranges.split(","):
        low, _, high = part.partition("-")
        if not low.isdigit():
            continue
        step = 1
        if ":" in high:
            high, step_text = high.split(":", 1)
            step = int(step_text) if step_text.isdigit() else 1
        yield from range(int(low), int(high or low) + 1, step)


def is_live(state: str) -> bool:
    """True for a state in which the job still waits or runs (squeue's ``%T``)."""
    return state.split()[0] in _LIVE_STATES if state else False


def parse_duration(text: str) -> float | None:
    """Seconds in Slurm's ``[D-]HH:MM:SS[.fff]``, ``MM:SS`` or ``MM:SS.fff``; None if unlimited.

    ``sacct`` prints CPU time with milliseconds and elapsed time without; partitions print
    ``UNLIMITED``.
    """
    text = text.strip()
    if text.upper() in _UNLIMITED:
        return None
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
    parts = [float(part) for part in text.split(":")]
    while len(parts) < 3:
        parts.insert(0, 0.0)
    hours, minutes, seconds = parts[-3:]
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}


def parse_memory_size(text: str) -> int | None:
    """Bytes in ``sacct``'s ``3316K``/``1.50G``; None when empty (not sampled)."""
    match = re.fullmatch(r"\s*([0-9.]+)([KMGTP]?)\s*", text.upper())
    if match is None:
        return None
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


@dataclass(frozen=True)
class AccountingRecord:
    """A job's final state from ``sacct``: its allocation line plus the most of its steps.

    ``state`` is the allocation's state word (``CANCELLED``), ``detail`` what follows it
    (``by 1000``). ``exit_code`` and ``signal`` are the two halves of ``ExitCode``.
    ``max_rss`` (bytes) is the largest of the steps'; the allocation line has none.
    """

    job_id: str
    state: str
    detail: str
    exit_code: int
    signal: int
    elapsed: float | None
    cpu_time: float | None
    max_rss: int | None


def parse_sacct(output: str) -> dict[str, AccountingRecord]:
    """Job id -> record from ``sacct -n -P -o`` :data:`SACCT_FIELDS` (steps folded in)."""
    records: dict[str, AccountingRecord] = {}
    step_rss: dict[str, int] = {}
    for line in output.splitlines():
        fields = line.split("|")
        if len(fields) < 6:
            continue
        job_id, state_text, exit_text, elapsed, cpu, rss = (f.strip() for f in fields[:6])
        base, dot, _step = job_id.partition(".")
        if dot:  # a step: only its memory matters
            size = parse_memory_size(rss)
            if size is not None:
                step_rss[base] = max(step_rss.get(base, 0), size)
            continue
        state, _, detail = state_text.partition(" ")
        code_text, _, signal_text = exit_text.partition(":")
        records[job_id] = AccountingRecord(
            job_id=job_id,
            state=state,
            detail=detail.strip(),
            exit_code=int(code_text) if code_text.isdigit() else 0,
            signal=int(signal_text) if signal_text.isdigit() else 0,
            elapsed=_duration_or_none(elapsed),
            cpu_time=_duration_or_none(cpu),
            max_rss=parse_memory_size(rss),
        )
    return {job_id: _with_rss(record, step_rss.get(job_id)) for job_id, record in records.items()}


def _duration_or_none(text: str) -> float | None:
    try:
        return parse_duration(text) if text else None
    except ValueError:
        return None


def _with_rss(record: AccountingRecord, rss: int | None) -> AccountingRecord:
    if rss is None or (record.max_rss is not None and record.max_rss >= rss):
        return record
    return AccountingRecord(
        record.job_id,
        record.state,
        record.detail,
        record.exit_code,
        record.signal,
        record.elapsed,
        record.cpu_time,
        rss,
    )


def _canceller(detail: str) -> str:
    """``"by 1000"`` -> ``"user alice (uid 1000)"``; the uid alone if it has no name here."""
    uid_text = detail.removeprefix("by").strip()
    if not uid_text.isdigit():
        return "someone outside herdsman"
    try:
        return f"user {pwd.getpwuid(int(uid_text)).pw_name} (uid {uid_text})"
    except KeyError:
        return f"uid {uid_text}"


def classify_job(
    record: AccountingRecord | None, job_id: str, *, cancelled_by_herdsman: bool = False
) -> tuple[ErrorStatus, str]:
    """What became of job ``job_id`` whose worker did not report: a status and a message."""
    if record is None:
        return TaskInstanceStatus.UNKNOWN_ERROR, f"Slurm has no accounting record of job {job_id}"
    state = record.state
    code = f"{record.exit_code}:{record.signal}"
    if state == "OUT_OF_MEMORY":
        return (
            TaskInstanceStatus.RESOURCE_ERROR,
            f"Slurm job {job_id} ran out of memory (OUT_OF_MEMORY, exit {code})",
        )
    if state == "FAILED" and record.signal == 9 and record.exit_code == 0:
        return TaskInstanceStatus.RESOURCE_ERROR, (
            f"Slurm job {job_id} was killed with SIGKILL (FAILED 0:9), as Slurm does to a job "
            "over its memory limit when it enforces memory by polling"
        )
    if state == "TIMEOUT":
        return (
            TaskInstanceStatus.RESOURCE_ERROR,
            f"Slurm job {job_id} reached its time limit (TIMEOUT)",
        )
    if state in _LOST_STATES:
        return TaskInstanceStatus.UNKNOWN_ERROR, (
            f"Slurm job {job_id} was lost through no fault of the task: {_LOST_STATES[state]} "
            f"({state})"
        )
    if state == "CANCELLED":
        if cancelled_by_herdsman:
            return TaskInstanceStatus.ERROR, f"Slurm job {job_id} was cancelled by herdsman"
        return (
            TaskInstanceStatus.ERROR,
            f"Slurm job {job_id} was cancelled by {_canceller(record.detail)} (scancel)",
        )
    if state == "FAILED":
        return TaskInstanceStatus.ERROR, f"Slurm job {job_id} failed with exit code {code} (FAILED)"
    if state == "COMPLETED":
        return TaskInstanceStatus.UNKNOWN_ERROR, (
            f"Slurm job {job_id} completed but its worker's report never arrived (can the node "
            "reach the herdsman server?)"
        )
    return (
        TaskInstanceStatus.UNKNOWN_ERROR,
        f"Slurm job {job_id} ended in state {state} (exit {code})",
    )


@dataclass(frozen=True)
class PartitionLimits:
    """A partition's limits on one job: seconds, MiB, CPUs; None where unlimited."""

    name: str
    is_default: bool
    max_time: float | None
    max_memory_mb: int | None
    max_cpus: int | None


def _words(line: str) -> dict[str, str]:
    """``Key=Value`` pairs of one ``scontrol -o`` line (values have no spaces there)."""
    return dict(word.split("=", 1) for word in line.split() if "=" in word)


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() else None


def parse_partitions(output: str) -> dict[str, PartitionLimits]:
    """Partition name -> limits from ``scontrol show partition -o``.

    The CPU limit is the partition's ``MaxCPUsPerNode``, else its ``TotalCPUs`` (a one-node
    job can use no more); memory is ``MaxMemPerNode``, else unlimited.
    """
    partitions: dict[str, PartitionLimits] = {}
    for line in output.splitlines():
        words = _words(line)
        name = words.get("PartitionName")
        if not name:
            continue
        partitions[name] = PartitionLimits(
            name=name,
            is_default=words.get("Default") == "YES",
            max_time=parse_duration(words.get("MaxTime", "UNLIMITED")),
            max_memory_mb=_int_or_none(words.get("MaxMemPerNode")),
            max_cpus=_int_or_none(words.get("MaxCPUsPerNode"))
            or _int_or_none(words.get("TotalCPUs")),
        )
    return partitions


def parse_config_value(output: str, key: str) -> str | None:
    """The value of ``key`` in ``scontrol show config`` output (``Key = Value`` lines)."""
    for line in output.splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() == key:
            return value.strip()
    return None


def format_time(seconds: float) -> str:
    """``--time`` for ``seconds``: ``D-HH:MM:SS``, rounded up to whole minutes (Slurm's unit)."""
    minutes = max(1, math.ceil(seconds / 60))
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    return f"{days}-{hours:02d}:{minutes:02d}:00"


def format_memory(gib: float) -> str:
    """``--mem`` for ``gib`` GiB, in whole MiB rounded up."""
    return f"{max(1, math.ceil(gib * 1024))}M"
