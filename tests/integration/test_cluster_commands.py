"""A cluster added and tuned with ``herdsman server cluster`` reaches the next run's pool.

The commands write the server's database directly, as an operator would; the runs go through
the real server, distributor and multiprocess pool.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from tests.conftest import RunningServer

from herdsman import Tool
from herdsman.cli.main import cli
from herdsman.core.errors import InvalidResourceError
from herdsman.core.requester import Requester
from herdsman.core.schemas.queries import TaskDetailOut

pytestmark = pytest.mark.integration

# Each task marks its start, then waits (``patience`` tenths of a second at most) until
# ``expected`` tasks have started, and records that it met them; else it fails.
MEET = (
    "touch {dir}/started.{i}; n=0; "
    "while [ $(ls {dir} | grep -c started) -lt {expected} ]; do "
    "n=$((n+1)); [ $n -gt {patience} ] && exit 1; sleep 0.1; done; "
    "echo {i} >> {dir}/met"
)


def cluster_invoke(server: RunningServer, *args: str) -> Result:
    return CliRunner().invoke(
        cli,
        ["server", "cluster", *args, "--database-url", server.database_url],
        env=dict(os.environ),
    )


def cluster_command(server: RunningServer, *args: str) -> None:
    result = cluster_invoke(server, *args)
    assert result.exit_code == 0, result.output


def run_meeting(
    requester: Requester, cluster: str, tasks: int, workdir: Path, patience: int
) -> str:
    """Run ``tasks`` tasks that all wait for each other on ``cluster``; the run's status."""
    workdir.mkdir()
    tool = Tool(f"{cluster}-{workdir.name}-{time.time_ns()}", requester=requester)
    tool.set_default_cluster_name(cluster)
    template = tool.get_task_template(
        "meet", MEET, node_args=["i"], task_args=["dir", "expected", "patience"]
    )
    workflow = tool.create_workflow(workflow_args=tool.name)
    workflow.add_tasks(
        template.create_tasks(
            i=range(tasks), dir=str(workdir), expected=tasks, patience=patience, max_attempts=1
        )
    )
    return workflow.run()


def test_a_new_cluster_runs_with_its_pool_size_and_a_change_reaches_the_next_run(
    server: RunningServer, requester: Requester, tmp_path: Path
) -> None:
    name = f"pool-{server.engine}-{time.time_ns()}"
    cluster_command(server, "add", name, "--plugin", "multiprocess", "workers=1")

    # One pool process: the second task starts only when the first gave up waiting for it.
    assert run_meeting(requester, name, 2, tmp_path / "one", patience=30) == "E"
    assert (tmp_path / "one" / "met").read_text().split() == ["1"]

    cluster_command(server, "set", name, "workers=3")

    assert run_meeting(requester, name, 3, tmp_path / "three", patience=300) == "D"
    assert sorted((tmp_path / "three" / "met").read_text().split()) == ["0", "1", "2"]


def test_a_local_cluster_takes_any_queue_name_and_gets_queues_from_the_cli(
    server: RunningServer, requester: Requester, tmp_path: Path
) -> None:
    name = f"local-{server.engine}-{time.time_ns()}"
    cluster_command(server, "add", name, "--plugin", "multiprocess", "workers=2")
    added = cluster_invoke(
        server, "add-queue", name, "long.q", "memory=0,2", "runtime=1,600", "--json"
    )
    assert added.exit_code == 0, added.output
    queues = {queue["name"]: queue for queue in json.loads(added.output)["queues"]}
    assert set(queues) == {"default", "long.q"}
    # The resources given take their bounds; the others are the default queue's.
    assert queues["long.q"]["limits"] == {
        **queues["default"]["limits"],
        "memory": [0.0, 2.0],
        "runtime": [1.0, 600.0],
    }
    bad = cluster_invoke(server, "add-queue", name, "x.q", "runtime=5")
    assert bad.exit_code == 1
    assert "'runtime=5' is not RESOURCE=LOW,HIGH" in bad.output

    out = tmp_path / "out"
    out.mkdir()
    tool = Tool(f"queues-{name}", requester=requester)
    tool.set_default_cluster_name(name)
    template = tool.get_task_template(
        "touch", "touch {dir}/{q}", node_args=["q"], task_args=["dir"]
    )
    workflow = tool.create_workflow(workflow_args=tool.name)
    tasks = {
        queue: template.create_task(
            q=queue, dir=str(out), compute_resources={"queue": queue, "memory": "1G"}
        )
        for queue in ("all.q", "null.q", "long.q")
    }
    workflow.add_tasks(list(tasks.values()))
    assert workflow.run() == "D"
    assert sorted(path.name for path in out.iterdir()) == ["all.q", "long.q", "null.q"]
    on_queue = {
        queue: requester.get(f"/tasks/{task.task_id}", TaskDetailOut).resources.queue_id
        for queue, task in tasks.items()
    }
    assert on_queue == {
        "all.q": queues["default"]["id"],
        "null.q": queues["default"]["id"],
        "long.q": queues["long.q"]["id"],
    }

    # A queue the cluster has keeps its limits.
    over = tool.create_workflow(workflow_args=f"{tool.name}-over")
    too_big = {"queue": "long.q", "memory": "4G"}
    over.add_task(template.create_task(q="big", dir=str(out), compute_resources=too_big))
    with pytest.raises(InvalidResourceError, match=r"queue 'long\.q' .* allows memory from 0 to 2"):
        over.bind()
