"""Bulk bind requests are split to stay under the server's limit on request bodies."""

from __future__ import annotations

from typing import Any, TypeVar, cast

import orjson
import pytest
from pydantic import BaseModel

from herdsman.client import bind_requests
from herdsman.core.errors import InvalidInputError
from herdsman.core.requester import Requester, encode_json
from herdsman.core.schemas.client import EdgesIn, NodesIn, TasksIn, TasksOut

M = TypeVar("M", bound=BaseModel)


class RecordingRequester:
    """Answers bulk PUTs as the server would (one id per row), keeping each body sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def put(self, path: str, body: Any, reply: type[M]) -> M:
        content = encode_json(body)
        self.bodies.append(content)
        sent = orjson.loads(content)
        if path == "/nodes":
            return reply.model_validate({"ids": sent["node_args_hashes"]})
        if path.endswith("/edges"):
            return reply.model_validate({"count": len(sent["upstream"])})
        rows = len(sent["node_ids"])
        # Each row's attributes come back in its status, to check they stayed with their row.
        statuses = [sent["attributes"].get(str(i), {}).get("row", "") for i in range(rows)]
        return reply.model_validate({"ids": sent["node_ids"], "statuses": statuses})


def _nodes(rows: int, value_size: int) -> NodesIn:
    return NodesIn.model_construct(
        task_template_version_id=1,
        arg_ids=[1],
        node_args_hashes=list(range(1, rows + 1)),
        values=[("v" * value_size,) for _ in range(rows)],
    )


def _tasks(rows: int, command_size: int) -> TasksIn:
    return TasksIn.model_construct(
        task_arg_ids={},
        node_ids=list(range(1, rows + 1)),
        array_ids=[1] * rows,
        names=[f"t{i}" for i in range(rows)],
        commands=["c" * command_size] * rows,
        task_args_hashes=[0] * rows,
        task_arg_values=[()] * rows,
        cluster_ids=[1] * rows,
        original_resources_ids=[1] * rows,
        task_resources_ids=[1] * rows,
        max_attempts=[3] * rows,
        resource_scales=[""] * rows,
        fallback_queues=[""] * rows,
        attributes={i: {"row": str(i)} for i in range(0, rows, 7)},
    )


def test_a_body_under_the_limit_is_one_request() -> None:
    requester = RecordingRequester()

    reply = bind_requests.put_nodes(cast(Requester, requester), _nodes(100, 10), 1 << 20)

    assert reply.ids == list(range(1, 101))
    assert len(requester.bodies) == 1


def test_nodes_over_the_limit_are_split_in_order_and_each_part_fits() -> None:
    requester = RecordingRequester()

    reply = bind_requests.put_nodes(cast(Requester, requester), _nodes(1000, 100), 20_000)

    assert reply.ids == list(range(1, 1001))
    assert len(requester.bodies) > 5
    assert max(len(body) for body in requester.bodies) <= 20_000


def test_tasks_over_the_limit_keep_their_attributes_with_their_rows() -> None:
    requester = RecordingRequester()

    reply = bind_requests.put_tasks(cast(Requester, requester), 1, _tasks(500, 200), 30_000)

    assert isinstance(reply, TasksOut)
    assert reply.ids == list(range(1, 501))
    assert reply.statuses == [str(i) if i % 7 == 0 else "" for i in range(500)]
    assert max(len(body) for body in requester.bodies) <= 30_000


def test_edges_over_the_limit_are_counted_across_parts() -> None:
    requester = RecordingRequester()
    body = EdgesIn.model_construct(upstream=list(range(5000)), downstream=list(range(5000)))

    reply = bind_requests.put_edges(cast(Requester, requester), 1, body, 10_000)

    assert reply.count == 5000
    assert len(requester.bodies) > 1


def test_a_single_row_over_the_limit_is_refused_with_the_setting_named() -> None:
    requester = RecordingRequester()

    with pytest.raises(InvalidInputError, match=r"limits\.max_request_bytes"):
        bind_requests.put_nodes(cast(Requester, requester), _nodes(3, 50_000), 40_000)
    assert all(len(body) <= 40_000 for body in requester.bodies)
