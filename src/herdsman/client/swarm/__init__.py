"""The swarm: the scheduling loop of one workflow run.

A functional core with an imperative shell: :mod:`~herdsman.client.swarm.state` (pure, in
memory), :mod:`~herdsman.client.swarm.gateway` (the only code that knows the routes),
:mod:`~herdsman.client.swarm.services` (one unit of work per ``tick``),
:mod:`~herdsman.client.swarm.orchestrator` (the loop) and
:mod:`~herdsman.client.swarm.workflow_run` (the documented facade).
:mod:`~herdsman.client.swarm.values` holds the value objects the state takes and gives,
and :mod:`~herdsman.client.swarm.policies` where resource scales, fallback queues and
resources callables come from. Tests drive the swarm with an in-memory server,
``tests/support/swarm_gateway.py``, checked against a real one by a contract test.
"""

from herdsman.client.swarm.gateway import HttpSwarmGateway, SwarmGateway
from herdsman.client.swarm.orchestrator import SwarmConfig, SwarmOrchestrator, SwarmResult
from herdsman.client.swarm.services.adjuster import ResourceAdjustmentError
from herdsman.client.swarm.state import QueueBatch, StateUpdate, SwarmState, TaskRow
from herdsman.client.swarm.workflow_run import WorkflowRun

__all__ = [
    "HttpSwarmGateway",
    "QueueBatch",
    "ResourceAdjustmentError",
    "StateUpdate",
    "SwarmConfig",
    "SwarmGateway",
    "SwarmOrchestrator",
    "SwarmResult",
    "SwarmState",
    "TaskRow",
    "WorkflowRun",
]
