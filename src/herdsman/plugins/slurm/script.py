"""The batch script of one Slurm job array: resources as ``#SBATCH`` lines, instances by index.

One array carries a batch of instances with identical resources. Element ``i`` of the array
runs instance ``ids[i]``: the script holds the ids in a bash array and hands the element's
id to the worker, so a job that starts before the distributor has recorded the launch still
knows which instance it is, without asking the server.

Resource keys (values as the server validated them: memory in GiB, runtime in seconds):
``cores`` -> ``--cpus-per-task``, ``memory`` -> ``--mem``, ``runtime`` -> ``--time``, the
queue -> ``--partition``, ``project`` -> ``--account``, ``constraints`` -> ``--constraint``,
``gpus`` -> ``--gpus``, ``stderr`` -> where Slurm's own log of the job goes, and
``sbatch_args`` (a list of strings) passed through as they are. The ``stdout``/``stderr``
directories of the task's command are the worker's business (it writes the files there).
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from herdsman.core.errors import InvalidResourceError
from herdsman.plugins.slurm.parsing import format_memory, format_time

__all__ = ["ArrayJob", "build_script", "sbatch_options"]

# Resource keys the plugin turns into options; any other key is refused by the plugin rather
# than silently ignored, unless it is one of the worker's own.
HANDLED_KEYS = frozenset(
    {
        "cores",
        "memory",
        "runtime",
        "queue",
        "project",
        "constraints",
        "gpus",
        "stdout",
        "stderr",
        "sbatch_args",
    }
)


@dataclass(frozen=True)
class ArrayJob:
    """Everything one ``sbatch`` of an array needs.

    ``throttle``: at most this many elements run at once (``%N``); None for no throttle.
    ``worker``: the worker command's words, to which the instance id and options are added.
    """

    name: str
    task_instance_ids: Sequence[int]
    options: Sequence[str]
    worker: Sequence[str]
    throttle: int | None = None
    extra_options: Sequence[str] = field(default_factory=tuple)


def sbatch_options(
    resources: Mapping[str, Any], partition: str | None, log_dir: str | None
) -> list[str]:
    """``#SBATCH`` options for ``resources``; InvalidResourceError for a malformed value."""
    options = [f"--partition={partition}"] if partition else []
    if "cores" in resources:
        options.append(f"--cpus-per-task={int(resources['cores'])}")
    if "memory" in resources:
        options.append(f"--mem={format_memory(float(resources['memory']))}")
    if "runtime" in resources:
        options.append(f"--time={format_time(float(resources['runtime']))}")
    if resources.get("project"):
        options.append(f"--account={resources['project']}")
    if resources.get("constraints"):
        options.append(f"--constraint={resources['constraints']}")
    if resources.get("gpus"):
        options.append(f"--gpus={resources['gpus']}")
    directory = resources.get("stderr") or log_dir
    log = f"{directory}/%x.slurm-%A_%a.log" if directory else "/dev/null"
    options += [f"--output={log}", f"--error={log}"]
    extra = resources.get("sbatch_args", [])
    if isinstance(extra, str):
        extra = shlex.split(extra)
    if not isinstance(extra, list) or not all(isinstance(item, str) for item in extra):
        raise InvalidResourceError(
            f"sbatch_args must be a list of strings or one string, got {extra!r}"
        )
    return options + list(extra)


def _quoted(option: str) -> str:
    return shlex.quote(option) if any(c in option for c in " \t'\"") else option


def build_script(job: ArrayJob) -> str:
    """The batch script for ``job``; sbatch reads it on stdin."""
    last = len(job.task_instance_ids) - 1
    array = f"0-{last}" + (f"%{job.throttle}" if job.throttle else "")
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={_quoted(job.name)}",
        f"#SBATCH --array={array}",
        *(f"#SBATCH {_quoted(option)}" for option in (*job.options, *job.extra_options)),
        "# Element i of the array runs task instance ids[i].",
    ]
    ids = [str(task_instance_id) for task_instance_id in job.task_instance_ids]
    # Twenty ids a line keeps the script readable in `scontrol write batch_script`.
    lines.append("ids=(")
    lines += [" ".join(ids[start : start + 20]) for start in range(0, len(ids), 20)]
    lines.append(")")
    worker = " ".join(shlex.quote(word) for word in job.worker)
    lines.append(
        f'exec {worker} --task-instance-id "${{ids[$SLURM_ARRAY_TASK_ID]}}" '
        '--distributor-id "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"'
    )
    return "\n".join(lines) + "\n"
