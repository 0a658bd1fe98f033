"""A cluster added and tuned with ``herdsman server cluster`` reaches the next run's pool.

The commands write the server's database directly, as an operator would; the runs go through
the real server, distributor and multiprocess pool.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from tests.conftest import RunningServer

from herdsman import Tool
from herdsman.cli.main import cli
from herdsman.core.requester import Requester

pytestmark = pytest.mark.integration

# Each task marks its start, then waits (``patience`` tenths of a second at most) until
# ``expected`` tasks have started, and records that it met them; else it fails.
MEET = (
    "touch {dir}/started.{i}; n=0; "
    "while [ $(ls {dir} | grep -c started) -lt {expected} ]; do "
    "n=$((n+1)); [ $n -gt {patience} ] && exit 1; sleep 0.1; done; "
    "echo {i} >> {dir}/met"
)


def cluster_command(server: RunningServer, *args: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["server", "cluster", *args, "--database-url", server.database_url],
        env=dict(os.environ),
    )
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
