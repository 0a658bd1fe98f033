"""The sequential plugin: one command at a time, in a thread of the distributor."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from herdsman.core.errors import ConfigurationError
from herdsman.distributor.plugin import SubmitBatch
from herdsman.plugins.sequential import SequentialPlugin
from herdsman.worker.command import process_group_exists

if TYPE_CHECKING:
    from .conftest import FakeServer

FAST = {"heartbeat_interval": 0.2, "kill_grace_seconds": 1.0}


@pytest.fixture
def plugin(fake_server: FakeServer) -> Iterator[SequentialPlugin]:
    plugin = SequentialPlugin(requester=fake_server, parameters=FAST)
    plugin.start()
    try:
        yield plugin
    finally:
        plugin.stop()


def test_commands_run_one_after_the_other(
    fake_server: FakeServer, plugin: SequentialPlugin, make_batch: Callable[..., SubmitBatch]
) -> None:
    for task_instance_id in (1, 2, 3):
        fake_server.add(task_instance_id, "sleep 0.2", status="I")

    job_ids = plugin.submit(make_batch(1, 2, 3))

    assert job_ids == ["seq-1", "seq-2", "seq-3"]
    for task_instance_id in (1, 2, 3):
        fake_server.wait_for(task_instance_id, "done")
    assert fake_server.first(1, "done").at <= fake_server.first(2, "running").at
    assert fake_server.first(2, "done").at <= fake_server.first(3, "running").at
    assert plugin.submitted_or_running(job_ids) == set()


def test_terminate_kills_the_running_command_and_drops_the_waiting_one(
    fake_server: FakeServer, plugin: SequentialPlugin, make_batch: Callable[..., SubmitBatch]
) -> None:
    fake_server.add(1, "echo $$; sleep 60 & sleep 60; wait", status="I")
    fake_server.add(2, "true", status="I")
    plugin.submit(make_batch(1, 2))
    fake_server.wait_for(1, "running")
    time.sleep(0.3)  # let the command start and report its process group

    began = time.monotonic()
    plugin.terminate(["seq-1", "seq-2"])
    error = fake_server.wait_for(1, "error")

    assert time.monotonic() - began < 5
    assert error.body["message"] == "killed by signal SIGTERM"
    pgid = int(error.body["stdout_tail"])
    assert not process_group_exists(pgid)
    time.sleep(0.3)
    assert fake_server.kinds(2) == []  # dropped before it started
    assert plugin.submitted_or_running(["seq-1", "seq-2"]) == set()


def test_exit_information_is_kept_for_triage(
    fake_server: FakeServer, plugin: SequentialPlugin, make_batch: Callable[..., SubmitBatch]
) -> None:
    fake_server.add(1, "exit 5", status="I")
    plugin.submit(make_batch(1))
    fake_server.wait_for(1, "error")
    time.sleep(0.2)

    assert plugin.remote_exit_info("seq-1") == ("E", "job seq-1 ended with exit code 5")
    assert plugin.remote_exit_info("seq-99")[0] == "U"


def test_stop_kills_what_runs(
    fake_server: FakeServer, make_batch: Callable[..., SubmitBatch]
) -> None:
    plugin = SequentialPlugin(requester=fake_server, parameters=FAST)
    plugin.start()
    fake_server.add(1, "echo $$; sleep 60", status="I")
    plugin.submit(make_batch(1))
    fake_server.wait_for(1, "running")
    time.sleep(0.3)

    began = time.monotonic()
    plugin.stop()

    assert time.monotonic() - began < 5
    error = fake_server.first(1, "error")
    assert not process_group_exists(int(error.body["stdout_tail"]))


def test_requests_are_enforced_by_default(
    fake_server: FakeServer, plugin: SequentialPlugin, make_batch: Callable[..., SubmitBatch]
) -> None:
    fake_server.add(1, "sleep 30", status="I", resources={"runtime": 1})
    fake_server.add(2, "echo next", status="I")

    plugin.submit(make_batch(1, 2))
    error = fake_server.wait_for(1, "error")

    assert error.body["status"] == "Z"
    assert "more than its runtime request of 1 s" in error.body["message"]
    assert fake_server.wait_for(2, "done").body["stdout_tail"] == "next\n"


@pytest.mark.parametrize("off", [False, "no", 0])
def test_enforcement_can_be_turned_off(
    fake_server: FakeServer, make_batch: Callable[..., SubmitBatch], off: object
) -> None:
    plugin = SequentialPlugin(requester=fake_server, parameters={**FAST, "enforce_limits": off})
    plugin.start()
    try:
        fake_server.add(1, "sleep 1.5", status="I", resources={"runtime": 1})
        plugin.submit(make_batch(1))

        fake_server.wait_for(1, "done")
    finally:
        plugin.stop()


@pytest.mark.parametrize("bad", ["maybe", 2, None])
def test_a_bad_enforce_limits_is_refused(fake_server: FakeServer, bad: object) -> None:
    with pytest.raises(ConfigurationError, match="enforce_limits"):
        SequentialPlugin(requester=fake_server, parameters={"enforce_limits": bad})
