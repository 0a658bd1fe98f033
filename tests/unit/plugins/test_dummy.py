"""The dummy plugin finishes every batch in one request and runs nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from herdsman.distributor.plugin import SubmitBatch
from herdsman.plugins.dummy import DummyPlugin

if TYPE_CHECKING:
    from .conftest import FakeServer


def test_submit_finishes_the_batch_in_one_request(
    fake_server: FakeServer, make_batch: Callable[..., SubmitBatch]
) -> None:
    for task_instance_id in (1, 2, 3):
        fake_server.add(task_instance_id, "exit 1", status="I")
    plugin = DummyPlugin(requester=fake_server, parameters={})
    plugin.start()

    job_ids = plugin.submit(make_batch(1, 2, 3))
    plugin.stop()

    assert job_ids == ["dummy-1", "dummy-2", "dummy-3"]
    finishes = [r for r in fake_server.reports if r.kind == "finish"]
    assert [r.body for r in finishes] == [{"task_instance_ids": [1, 2, 3]}]
    assert {i.status for i in fake_server.instances.values()} == {"D"}


def test_nothing_is_ever_running(fake_server: FakeServer) -> None:
    plugin = DummyPlugin(requester=fake_server, parameters={})

    assert plugin.submitted_or_running(["dummy-1"]) == set()
    plugin.terminate(["dummy-1"])
    assert plugin.remote_exit_info("dummy-1")[0] == "U"
    assert plugin.exit_code_status(2) == ("E", "exit code 2")
