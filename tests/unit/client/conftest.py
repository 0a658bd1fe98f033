"""Fixtures for the authoring-API unit tests: a tool whose "server" knows two clusters.

Nothing here touches the network. ``Workflow.validate()`` looks clusters up through the tool's
requester (``GET /clusters/{name}``, the server's real route) and asks for the server's input
limits (``GET /health``); :class:`FakeClusterRequester` answers both from memory (the default
limits, or ``limits``), raises ``NotFoundError`` for unknown cluster names like the server
does, and fails the test on any other request, so a unit test that would write to a server
fails loudly.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

import pytest
from pydantic import BaseModel

from herdsman import Tool, Workflow
from herdsman.core.errors import NotFoundError
from herdsman.core.limits import InputLimits
from herdsman.core.requester import Requester
from herdsman.core.schemas.client import ClusterOut, HealthOut, QueueOut

M = TypeVar("M", bound=BaseModel)

# "dummy": a default queue and a smaller one; "other": one roomy queue.
DUMMY_CLUSTER = ClusterOut(
    id=1,
    name="dummy",
    plugin="dummy",
    parameters={},
    queues=[
        QueueOut(
            id=1,
            name="default",
            is_default=True,
            limits={"cores": [1, 8], "memory": [0.0, 64.0], "runtime": [1, 86400]},
        ),
        QueueOut(
            id=2,
            name="small",
            is_default=False,
            limits={"cores": [1, 2], "memory": [0.0, 4.0], "runtime": [1, 3600]},
        ),
    ],
)
OTHER_CLUSTER = ClusterOut(
    id=2,
    name="other",
    plugin="dummy",
    parameters={},
    queues=[QueueOut(id=3, name="batch", is_default=True, limits={"memory": [0.0, 512.0]})],
)


class FakeClusterRequester:
    """Stands in for :class:`Requester`: serves ``GET /clusters/{name}`` and nothing else."""

    def __init__(self, clusters: list[ClusterOut], limits: InputLimits | None = None) -> None:
        self.clusters = {cluster.name: cluster for cluster in clusters}
        self.limits = limits or InputLimits()
        self.lookups: list[str] = []

    def get(self, path: str, reply: type[M], params: dict[str, Any] | None = None) -> M:
        if path == "/health":
            health = HealthOut(status="ok", version="test", database="none", limits=self.limits)
            return reply.model_validate(health.model_dump())
        prefix = "/clusters/"
        if not path.startswith(prefix):
            raise AssertionError(f"unit test sent an unexpected GET {path}")
        name = path.removeprefix(prefix)
        self.lookups.append(name)
        cluster = self.clusters.get(name)
        if cluster is None:
            raise NotFoundError(f"cluster {name!r} does not exist")
        return reply.model_validate(cluster.model_dump())

    def put(self, path: str, *args: object, **kwargs: object) -> Any:
        raise AssertionError(f"unit test tried to PUT {path}")

    def post(self, path: str, *args: object, **kwargs: object) -> Any:
        raise AssertionError(f"unit test tried to POST {path}")


@pytest.fixture
def requester() -> FakeClusterRequester:
    return FakeClusterRequester([DUMMY_CLUSTER, OTHER_CLUSTER])


@pytest.fixture
def tool(requester: FakeClusterRequester) -> Tool:
    return Tool("unit-tests", requester=cast(Requester, requester))


@pytest.fixture
def workflow(tool: Tool) -> Workflow:
    return tool.create_workflow(name="unit", workflow_args="unit-args")


@pytest.fixture
def dummy_cluster() -> ClusterOut:
    return DUMMY_CLUSTER.model_copy(deep=True)


@pytest.fixture
def cluster_lookups(requester: FakeClusterRequester) -> list[str]:
    """The cluster names looked up so far, in order (grows as the test runs)."""
    return requester.lookups
