"""Recorded usage is the command's own, on both local clusters (issue 14).

A pool process or a distributor is a Python process of 40 MiB and more; a command started
from it used to be recorded at that size. These runs go through the real server, distributor
and (for ``multiprocess``) pool processes.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import pytest
from tests.e2e.conftest import query_rows

from herdsman import Tool
from herdsman.core.requester import Requester

pytestmark = pytest.mark.e2e

_MIB = 1024**2
_ALLOCATE = (
    f"{sys.executable} -c 'import time; block = bytearray(200 * 1024 * 1024); time.sleep(0.5)'"
)


@pytest.mark.parametrize("cluster", ["sequential", "multiprocess"])
def test_echo_and_a_200_mib_task_record_their_own_memory(
    cluster: str, requester: Requester, database_url: str, server: Any
) -> None:
    tool = Tool(f"usage-{cluster}-{time.time()}", requester=requester)
    tool.set_default_cluster_name(cluster)
    template = tool.get_task_template("usage", "{command}", node_args=["command"])
    echo = template.create_task(command="echo hello", name="echo")
    allocate = template.create_task(
        command=_ALLOCATE, name="allocate", compute_resources={"memory": "1G"}
    )
    # Limits are enforced on the same figure: 20 MiB is plenty for an echo.
    limited = template.create_task(
        command="echo limited", name="limited", compute_resources={"memory": "20M"}
    )
    workflow = tool.create_workflow(workflow_args=f"usage-{cluster}")
    workflow.add_tasks([echo, allocate, limited])

    assert workflow.run() == "D"

    recorded = {
        name: (max_rss, cpu_time, wall_time)
        for name, max_rss, cpu_time, wall_time in query_rows(
            database_url,
            "SELECT t.name, ti.max_rss, ti.cpu_time, ti.wall_time FROM task_instance ti "
            "JOIN task t ON t.id = ti.task_id WHERE t.workflow_id = :w",
            w=workflow.workflow_id,
        )
    }
    echo_rss, echo_cpu, echo_wall = recorded["echo"]
    assert 0 < echo_rss < 10 * _MIB, f"echo recorded {echo_rss / _MIB:.1f} MiB"
    assert echo_cpu < 0.5 and echo_wall < 5
    assert recorded["limited"][0] < 20 * _MIB
    allocate_rss, allocate_cpu, allocate_wall = recorded["allocate"]
    assert 200 * _MIB <= allocate_rss <= 260 * _MIB, f"{allocate_rss / _MIB:.1f} MiB"
    assert allocate_wall >= 0.5 and 0 < allocate_cpu < allocate_wall + 1
