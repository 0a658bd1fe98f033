"""A workflow that holds one long task until it is stopped: run by the CLI and report tests.

Usage: ``python sleeping_workflow.py SERVER_URL NAME``. Prints the workflow id once bound,
then runs the workflow (a quick task and a ten-minute one) on the ``multiprocess`` cluster and
prints the run's final status.
"""

from __future__ import annotations

import sys

from herdsman import Tool
from herdsman.core.requester import Requester


def main(server_url: str, name: str) -> None:
    with Requester(server_url, timeout=30, retries=3) as requester:
        tool = Tool(name, requester=requester)
        tool.set_default_cluster_name("multiprocess")
        nap = tool.get_task_template("nap", "sleep {seconds}", node_args=["seconds"])
        workflow = tool.create_workflow(workflow_args=f"{name}-running", name=f"{name}-running")
        workflow.add_tasks([nap.create_task(seconds=600), nap.create_task(seconds=0)])
        print(workflow.bind(), flush=True)
        # A one-second heartbeat: the swarm learns of a stop within a second, not thirty.
        print(workflow.run(workflow_run_heartbeat_interval=1.0), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
