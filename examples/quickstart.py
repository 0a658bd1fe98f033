"""A small workflow: prepare data per location, fit two models each, then summarize.

Run it with no set-up at all: herdsman starts its embedded server on SQLite in your data
directory and runs the tasks on this machine (the ``multiprocess`` cluster). Each run is a new
workflow (``workflow_args`` carries the time); with fixed ``workflow_args`` a second run would
find the finished workflow and say so.

    python examples/quickstart.py

On a Slurm cluster, set ``CLUSTER = "slurm"``: the same tasks become Slurm job arrays.
"""

from __future__ import annotations

import sys
import time

from herdsman import Tool, Workflow

# The cluster the tasks run on: "slurm" on a Slurm cluster, nothing else changes.
CLUSTER = "multiprocess"


def build(locations: list[str]) -> Workflow:
    tool = Tool("quickstart")
    tool.set_default_cluster_name(CLUSTER)
    tool.set_default_compute_resources_from_dict(CLUSTER, {"cores": 1, "memory": "1G"})

    prepare = tool.get_task_template("prepare", "echo preparing {location}", node_args=["location"])
    fit = tool.get_task_template(
        "fit", "echo fitting {model} for {location}", node_args=["location", "model"]
    )
    summarize = tool.get_task_template(
        "summarize", "echo summary of {release}", task_args=["release"]
    )

    workflow = tool.create_workflow(
        name="quickstart", workflow_args=f"quickstart-{time.time()}", max_concurrently_running=4
    )
    prepared = prepare.create_tasks(location=locations)
    fits = []
    for task in prepared:
        fits += fit.create_tasks(
            location=task.node_args["location"],
            model=["linear", "forest"],
            upstream_tasks=[task],
            compute_resources={"runtime": "10m"},
        )
    workflow.add_tasks(prepared + fits)
    workflow.add_task(summarize.create_task(release="2026", upstream_tasks=fits))
    return workflow


def main() -> int:
    workflow = build(["kenya", "peru", "norway"])
    status = workflow.run(progress=True)
    print(f"workflow {workflow.workflow_id} finished with status {status}")
    for task_id, failure in workflow.get_errors().items():
        print(f"  task {task_id} {failure.name}: {failure.errors[0].description}")
    return 0 if status == "D" else 1


if __name__ == "__main__":
    sys.exit(main())
