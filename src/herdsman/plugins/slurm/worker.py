"""The worker of a Slurm job: ``python -m herdsman.plugins.slurm.worker``.

It is ``herdsman-worker`` (same options; the job script passes the array element's instance
id and job id) with Slurm's reading of a command's death, so resource kills come back as Z
and the task is retried with more:

* killed by a signal while the job's memory cgroup recorded an OOM kill: the command ran out
  of memory (cgroup enforcement kills only the largest process, often the command, and the
  worker lives on to report it);
* killed by a signal otherwise: Slurm itself may be ending the job, and the job's own
  ``sacct`` line tells why: TIMEOUT (Z), CANCELLED by whom (E), PREEMPTED or NODE_FAIL (U).
  slurmctld hands the job to the accounting daemon as it signals the job, and a busy
  slurmdbd may not have the job at all for seconds: after SIGTERM or SIGKILL the worker asks
  again for up to :data:`VERDICT_WAIT_SECONDS`. If Slurm's own SIGKILL (``KillWait`` after
  the SIGTERM) ends the worker first, the distributor's triage reads the same ``sacct`` line
  later, so the outcome is the same. A few sacct calls per job killed this way, never per job.

Where Slurm kills the worker along with the command (polling memory enforcement kills the
whole step), the worker cannot report; the distributor's triage finds the job in sacct
instead (:func:`herdsman.plugins.slurm.parsing.classify_job`), with the same outcome.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from herdsman.core.lifecycle import ErrorStatus
from herdsman.core.statuses import TaskInstanceStatus
from herdsman.plugins.slurm.parsing import SACCT_FIELDS, classify_job, parse_sacct
from herdsman.worker.exit_status import default_exit_code_status, describe_exit_code

__all__ = ["VERDICT_WAIT_SECONDS", "job_oom_kills", "main", "slurm_exit_code_status"]

_SHELL_SIGNAL_BASE = 128
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_SACCT_TIMEOUT = 30.0
VERDICT_WAIT_SECONDS = 20.0
"""How long a worker whose command Slurm signalled waits for the job's end in ``sacct``."""
_VERDICT_POLL_SECONDS = 0.5
# The signals Slurm ends a job with (scancel's default, time limits, preemption).
_ENDING_SIGNALS = frozenset({signal.SIGTERM, signal.SIGKILL})


def _killed_by_signal(exit_code: int) -> bool:
    return exit_code < 0 or 0 < exit_code - _SHELL_SIGNAL_BASE < signal.NSIG


def _signal_number(exit_code: int) -> int:
    return -exit_code if exit_code < 0 else exit_code - _SHELL_SIGNAL_BASE


def job_oom_kills(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = _CGROUP_ROOT) -> int:
    """OOM kills the kernel counted in this process's memory cgroup and its parent (the job).

    Reads ``memory.oom_control`` (cgroup v1) or ``memory.events`` (v2); 0 when neither is
    there, as outside a cgroup-enforcing Slurm.
    """
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return 0
    candidates: list[Path] = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        relative = path.lstrip("/")
        if "memory" in controllers.split(","):
            candidates.append(root / "memory" / relative)
        elif controllers == "":
            candidates.append(root / relative)
    kills = 0
    for directory in candidates:
        for level in (directory, directory.parent):
            for name in ("memory.oom_control", "memory.events"):
                kills = max(kills, _oom_kill_count(level / name))
    return kills


def _oom_kill_count(path: Path) -> int:
    try:
        text = path.read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return 0


def _own_job_id() -> str | None:
    array_job, index = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and index:
        return f"{array_job}_{index}"
    return os.environ.get("SLURM_JOB_ID")


def _own_job_verdict(job_id: str, wait: float) -> tuple[ErrorStatus, str] | None:
    """What Slurm recorded for this job, if it ended it (a timeout, a cancel); asked again
    for up to ``wait`` seconds while the accounting still shows the job running."""
    deadline = time.monotonic() + wait
    while True:
        try:
            done = subprocess.run(
                ["sacct", "-n", "-P", "-X", "-o", SACCT_FIELDS, "-j", job_id],
                capture_output=True,
                text=True,
                timeout=_SACCT_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        record = parse_sacct(done.stdout).get(job_id)
        if record is not None and record.state not in ("RUNNING", "PENDING", "COMPLETING"):
            return classify_job(record, job_id)
        if time.monotonic() >= deadline:
            return None
        time.sleep(_VERDICT_POLL_SECONDS)


def slurm_exit_code_status(exit_code: int) -> tuple[ErrorStatus, str]:
    """The status of a command that exited with ``exit_code`` inside a Slurm job."""
    if not _killed_by_signal(exit_code):
        return default_exit_code_status(exit_code)
    if job_oom_kills() > 0:
        return TaskInstanceStatus.RESOURCE_ERROR, (
            f"the command was {describe_exit_code(exit_code)} after the kernel's OOM killer "
            "acted in the job's memory cgroup: it used more memory than it requested"
        )
    job_id = _own_job_id()
    wait = VERDICT_WAIT_SECONDS if _signal_number(exit_code) in _ENDING_SIGNALS else 0.0
    verdict = _own_job_verdict(job_id, wait) if job_id else None
    if verdict is not None:
        status, message = verdict
        return status, f"{message}; the command was {describe_exit_code(exit_code)}"
    return default_exit_code_status(exit_code)


def main(argv: Sequence[str] | None = None) -> int:
    """``herdsman-worker``'s main with Slurm's exit-code reading."""
    from herdsman.worker.cli import main as worker_main

    return worker_main(argv, exit_code_status=slurm_exit_code_status)


if __name__ == "__main__":
    sys.exit(main())
