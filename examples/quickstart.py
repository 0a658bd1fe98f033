"""A small workflow: prepare data per location, fit two models each, then summarize.

Run it with no set-up at all: herdsman starts its embedded server on SQLite in your data
directory. Binding the same script again finds the same workflow and task ids.

    python examples/quickstart.py
"""

from __future__ import annotations

import sys

from herdsman import Tool
from herdsman.core.schemas.gui import WorkflowDetailOut


def build(locations: list[str]) -> object:
    tool = Tool("quickstart")
    tool.set_default_cluster_name("multiprocess")
    tool.set_default_compute_resources_from_dict("multiprocess", {"cores": 1, "memory": "1G"})

    prepare = tool.get_task_template("prepare", "echo preparing {location}", node_args=["location"])
    fit = tool.get_task_template(
        "fit", "echo fitting {model} for {location}", node_args=["location", "model"]
    )
    summarize = tool.get_task_template(
        "summarize", "echo summary of {release}", task_args=["release"]
    )

    workflow = tool.create_workflow(
        name="quickstart", workflow_args="quickstart-v1", max_concurrently_running=4
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
    workflow_id = workflow.bind()  # type: ignore[attr-defined]
    detail = workflow.requester.get(  # type: ignore[attr-defined]
        f"/workflows/{workflow_id}", WorkflowDetailOut
    )
    print(f"workflow {workflow_id} '{detail.name}': {detail.num_tasks} tasks bound")
    for status, count in sorted(detail.task_status_counts.items()):
        print(f"  status {status}: {count}")
    print(f"server: {workflow.requester.base_url}")  # type: ignore[attr-defined]
    return 0


if __name__ == "__main__":
    sys.exit(main())
