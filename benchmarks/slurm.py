"""Slurm benchmark: 1,000 `true` tasks of one template in one workflow on a real Slurm.

What it measures, against a fresh embedded server and the local cluster of
``scripts/local-slurm`` (or any Slurm whose commands are on PATH):

* sbatch calls for the whole workflow, and seconds until the last sbatch returned (all tasks
  submitted): from ``run()`` (which starts the distributor process) and from the plugin's
  start in the distributor; plus the seconds of the longest sbatch call itself;
* squeue, sacct and scontrol calls per minute while the workflow runs;
* completion throughput: tasks done per second, from the first done to the last.

Every Slurm command the plugin runs goes through a logging shim (the cluster parameter
``bin_dir`` points at it), so the counts are what slurmctld actually saw. The cluster row
uses the plugin's default intervals, as a user's would.

Usage:
    scripts/local-slurm start
    python benchmarks/slurm.py            # 1,000 tasks
    python benchmarks/slurm.py --tasks 5000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import bench_server
from herdsman import Tool
from herdsman.core.requester import Requester

COMMANDS = ("sbatch", "squeue", "sacct", "scancel", "scontrol")
SHIM = """#!/bin/sh
start=$(date +%s.%N)
"{real}" "$@"
status=$?
echo "{name} $start $(date +%s.%N) $status" >> "{log}"
exit $status
"""


def make_shims(directory: Path, log: Path) -> None:
    """A script per Slurm command that logs the call (start, end, status) and runs the real one."""
    for name in COMMANDS:
        real = shutil.which(name)
        if real is None:
            raise SystemExit(f"{name} is not on PATH: is Slurm installed? (scripts/local-slurm)")
        shim = directory / name
        shim.write_text(SHIM.format(real=real, name=name, log=log))
        shim.chmod(0o755)


def create_cluster(database_url: str, bin_dir: Path) -> str:
    name = f"slurm-bench-{uuid.uuid4().hex[:8]}"
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO cluster (name, plugin, parameters) VALUES (:n, 'slurm', :p)"),
                {"n": name, "p": json.dumps({"bin_dir": str(bin_dir)})},
            )
            cluster_id = connection.execute(
                text("SELECT id FROM cluster WHERE name = :n"), {"n": name}
            ).scalar_one()
            connection.execute(
                text(
                    "INSERT INTO queue (cluster_id, name, is_default, limits) "
                    "VALUES (:c, 'default', :d, :l)"
                ),
                {"c": cluster_id, "d": True, "l": json.dumps({"cores": [1, 8]})},
            )
    finally:
        engine.dispose()
    return name


def done_times(database_url: str, workflow_id: int) -> list[float]:
    """Seconds since the epoch at which each task instance reached D (from the change feed)."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT ti.status_date FROM task_instance ti JOIN task t ON t.id = ti.task_id "
                    "WHERE t.workflow_id = :w AND ti.status = 'D'"
                ),
                {"w": workflow_id},
            ).all()
    finally:
        engine.dispose()
    # SQLite hands back text, the other engines datetimes; both are naive UTC.
    return sorted(
        (
            row[0] if isinstance(row[0], dt.datetime) else dt.datetime.fromisoformat(row[0])
        ).timestamp()
        for row in rows
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="herdsman-slurm-bench-") as tmp:
        shims, log = Path(tmp) / "bin", Path(tmp) / "calls.log"
        shims.mkdir()
        make_shims(shims, log)
        with bench_server() as server:
            os.environ.update(server.environment())
            cluster = create_cluster(server.database_url, shims)
            tool = Tool("slurm-benchmark", requester=Requester(server.url, token=server.token))
            tool.set_default_cluster_name(cluster)
            job = tool.get_task_template("job", "true {i}", node_args=["i"])
            workflow = tool.create_workflow(workflow_args=f"slurm-{time.time()}")
            workflow.add_tasks(job.create_tasks(i=range(args.tasks)))
            workflow.bind()
            log.write_text("")
            start = time.time()
            status = workflow.run()
            elapsed = time.time() - start
            assert workflow.workflow_id is not None
            finished = done_times(server.database_url, workflow.workflow_id)
        calls = [line.split() for line in log.read_text().splitlines()]
    counts = Counter(call[0] for call in calls)
    sbatch_ends = [float(call[2]) for call in calls if call[0] == "sbatch"]
    # The plugin's first call (scontrol show config) is the distributor's plugin starting.
    plugin_start = min(float(call[1]) for call in calls) if calls else start
    sbatch_seconds = [float(call[2]) - float(call[1]) for call in calls if call[0] == "sbatch"]
    minutes = elapsed / 60
    # The first and last done bound the throughput.
    span = finished[-1] - finished[0] if len(finished) > 1 else float("nan")
    result = {
        "status": status,
        "tasks": args.tasks,
        "run_s": round(elapsed, 1),
        "sbatch_calls": counts["sbatch"],
        "submitted_after_s": round(max(sbatch_ends) - start, 2) if sbatch_ends else None,
        "submitted_after_plugin_start_s": (
            round(max(sbatch_ends) - plugin_start, 2) if sbatch_ends else None
        ),
        "sbatch_call_s": round(max(sbatch_seconds), 3) if sbatch_seconds else None,
        "squeue_per_min": round(counts["squeue"] / minutes, 2),
        "sacct_per_min": round(counts["sacct"] / minutes, 2),
        "scontrol_per_min": round(counts["scontrol"] / minutes, 2),
        "scancel_calls": counts["scancel"],
        "done_per_s": round((len(finished) - 1) / span, 1) if len(finished) > 1 else None,
    }
    print(json.dumps(result))
    return 0 if status == "D" else 1


if __name__ == "__main__":
    sys.exit(main())
