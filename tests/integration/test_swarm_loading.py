"""A run loaded from the database (resume by id) sees the same DAG as the one bound."""

from __future__ import annotations

import itertools
import time

import pytest

from herdsman import Tool
from herdsman.client.swarm.workflow_run import WorkflowRun
from herdsman.core.requester import Requester
from herdsman.core.schemas.distributor import ClaimedOut, ClaimIn, FinishIn, TransitionsOut

pytestmark = pytest.mark.integration


def test_from_workflow_id_loads_tasks_and_edges_in_chunks(requester: Requester) -> None:
    tool = Tool(f"loading-{time.time()}", requester=requester)
    tool.set_default_cluster_name("dummy")
    step = tool.get_task_template("step", "true {layer} {i}", node_args=["layer", "i"])
    workflow = tool.create_workflow(workflow_args="loading")
    layers = [step.create_tasks(layer=layer, i=range(6)) for layer in range(4)]
    for upper, lower in itertools.pairwise(layers):
        for index, task in enumerate(lower):
            task.add_upstreams(upper[max(0, index - 1) : index + 1])
    for layer in layers:
        workflow.add_tasks(layer)
    workflow_id = workflow.bind()

    # Pages of 7 edges cut through the middle of tasks' upstream lists.
    swarm = WorkflowRun.from_workflow_id(workflow_id, edge_chunk_size=7, requester=requester)
    swarm.set_initial_fringe()
    first = swarm.get_swarm_commands()
    assert {t for batch in first for t in batch.task_ids} == {task.task_id for task in layers[0]}

    # Finish the first layer on the server; the loaded edges must release exactly the second.
    swarm.process_commands()
    claimed = requester.post(f"/workflow_runs/{swarm.workflow_run_id}/claim", ClaimIn(), ClaimedOut)
    requester.post(
        "/task_instances/finish_without_running",
        FinishIn(task_instance_ids=[i.task_instance_id for i in claimed.instances]),
        TransitionsOut,
    )
    swarm.synchronize_state(full_sync=True)
    second = swarm.get_swarm_commands()
    assert {t for batch in second for t in batch.task_ids} == {task.task_id for task in layers[1]}
