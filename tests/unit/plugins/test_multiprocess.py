"""The multiprocess plugin: a pool of long-lived processes running real commands.

Pool processes talk to the fake server over HTTP, as they would to a real one.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import psutil
import pytest

from herdsman.core.errors import ConfigurationError
from herdsman.distributor.plugin import SubmitBatch
from herdsman.plugins.multiprocess import MultiprocessPlugin, default_worker_count
from herdsman.worker.command import process_group_exists

if TYPE_CHECKING:
    from .conftest import FakeServer

FAST = {"heartbeat_interval": 0.2, "kill_grace_seconds": 1.0}


def _pool_pids() -> set[int]:
    """This process's Python children, minus multiprocessing's resource tracker.

    The tracker starts with the first ``spawn`` queue of the process and outlives every pool
    by design, so it would count as a leftover of whichever test happened to start it.
    """
    pids = set()
    for child in psutil.Process().children():
        try:
            if "python" in child.name() and not any(
                "resource_tracker" in part for part in child.cmdline()
            ):
                pids.add(child.pid)
        except psutil.Error:  # ended while we looked: not a leftover
            continue
    return pids


@pytest.fixture
def start_pool(fake_http_server: FakeServer) -> Iterator[Callable[..., MultiprocessPlugin]]:
    """Starts a pool of ``workers`` with fast heartbeats and more ``parameters``; stops it."""
    started: list[MultiprocessPlugin] = []

    def start(workers: int, **parameters: Any) -> MultiprocessPlugin:
        plugin = MultiprocessPlugin(
            requester=fake_http_server, parameters={"workers": workers, **FAST, **parameters}
        )
        plugin.start()
        started.append(plugin)
        return plugin

    try:
        yield start
    finally:
        for plugin in started:
            plugin.stop()


def test_commands_run_in_parallel_in_warm_processes(
    fake_http_server: FakeServer,
    start_pool: Callable[[int], MultiprocessPlugin],
    make_batch: Callable[..., SubmitBatch],
) -> None:
    pool = start_pool(2)
    for task_instance_id in (1, 2):
        fake_http_server.add(task_instance_id, "sleep 1.5", status="I")

    submitted = time.monotonic()
    job_ids = pool.submit(make_batch(1, 2))
    assert pool.submitted_or_running(job_ids) == set(job_ids)
    done = [fake_http_server.wait_for(i, "done") for i in (1, 2)]

    assert job_ids == ["mp-1", "mp-2"]
    assert max(report.at for report in done) - submitted < 2.9  # together, not one by one
    for task_instance_id in (1, 2):
        # A warm process reports running at once; a fresh interpreter would take longer.
        assert fake_http_server.first(task_instance_id, "running").at - submitted < 1.0
    pids = {fake_http_server.first(i, "running").body["pid"] for i in (1, 2)}
    assert len(pids) == 2 and os.getpid() not in pids
    time.sleep(0.3)
    assert pool.submitted_or_running(job_ids) == set()


def test_a_batch_larger_than_the_pool_is_worked_off(
    fake_http_server: FakeServer,
    start_pool: Callable[[int], MultiprocessPlugin],
    make_batch: Callable[..., SubmitBatch],
) -> None:
    pool = start_pool(2)
    ids = list(range(1, 8))
    for task_instance_id in ids:
        fake_http_server.add(task_instance_id, f"exit $(( {task_instance_id} % 2 ))", status="I")

    pool.submit(make_batch(*ids))

    for task_instance_id in ids:
        kind = "error" if task_instance_id % 2 else "done"
        fake_http_server.wait_for(task_instance_id, kind)
    time.sleep(0.3)
    assert pool.remote_exit_info("mp-3") == ("E", "job mp-3 ended with exit code 1")


def test_terminate_kills_a_sleeping_process_tree(
    fake_http_server: FakeServer,
    start_pool: Callable[[int], MultiprocessPlugin],
    make_batch: Callable[..., SubmitBatch],
) -> None:
    pool = start_pool(1)
    fake_http_server.add(1, "echo $$; sleep 60 & sleep 60; wait", status="I")
    fake_http_server.add(2, "true", status="I")
    pool.submit(make_batch(1, 2))
    fake_http_server.wait_for(1, "running")
    time.sleep(0.5)  # the command starts and its process group reaches the parent

    began = time.monotonic()
    pool.terminate(["mp-1", "mp-2"])
    error = fake_http_server.wait_for(1, "error")

    assert time.monotonic() - began < 5
    assert error.body["message"] == "killed by signal SIGTERM"
    assert not process_group_exists(int(error.body["stdout_tail"]))
    time.sleep(0.5)
    assert fake_http_server.kinds(2) == []  # queued, never started: dropped


def test_stop_kills_running_commands_and_ends_the_pool(
    fake_http_server: FakeServer, make_batch: Callable[..., SubmitBatch]
) -> None:
    before = _pool_pids()
    pool = MultiprocessPlugin(requester=fake_http_server, parameters={"workers": 2, **FAST})
    pool.start()
    fake_http_server.add(1, "echo $$; sleep 60", status="I")
    pool.submit(make_batch(1))
    fake_http_server.wait_for(1, "running")
    time.sleep(0.5)

    began = time.monotonic()
    pool.stop()

    assert time.monotonic() - began < 10
    error = fake_http_server.first(1, "error")
    assert not process_group_exists(int(error.body["stdout_tail"]))
    assert _pool_pids() <= before
    pool.stop()  # idempotent


def test_reports_of_a_busy_pool_share_requests(
    fake_http_server: FakeServer,
    start_pool: Callable[[int], MultiprocessPlugin],
    make_batch: Callable[..., SubmitBatch],
) -> None:
    fake_http_server.batch_delay = 0.2  # a slow server: reports pile up meanwhile
    pool = start_pool(2)
    ids = list(range(1, 13))
    for task_instance_id in ids:
        fake_http_server.add(task_instance_id, "true", status="I")

    pool.submit(make_batch(*ids))
    for task_instance_id in ids:
        fake_http_server.wait_for(task_instance_id, "done")

    for task_instance_id in ids:  # each instance's reports arrive in order
        assert fake_http_server.kinds(task_instance_id) == ["running", "done"]
    assert sum(fake_http_server.batch_sizes) == 2 * len(ids)
    assert len(fake_http_server.batch_sizes) < 2 * len(ids)
    assert max(fake_http_server.batch_sizes) > 2


def test_a_job_stays_active_until_the_server_has_its_report(
    fake_http_server: FakeServer,
    start_pool: Callable[[int], MultiprocessPlugin],
    make_batch: Callable[..., SubmitBatch],
) -> None:
    # Triage takes a launched job that the cluster no longer lists for lost: a finished job
    # must stay listed while its done report is still on its way.
    fake_http_server.batch_delay = 1.5
    pool = start_pool(1)
    fake_http_server.add(1, "true", status="I")

    pool.submit(make_batch(1))
    fake_http_server.wait_for(1, "running")
    time.sleep(0.7)  # `true` has ended; its report waits behind the slow batch

    assert fake_http_server.kinds(1) == ["running"]
    assert pool.submitted_or_running(["mp-1"]) == {"mp-1"}
    fake_http_server.wait_for(1, "done")
    deadline = time.monotonic() + 10
    while pool.submitted_or_running(["mp-1"]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pool.submitted_or_running(["mp-1"]) == set()


def test_a_refused_running_report_kills_the_command(
    fake_http_server: FakeServer,
    start_pool: Callable[[int], MultiprocessPlugin],
    make_batch: Callable[..., SubmitBatch],
) -> None:
    pool = start_pool(1)
    # Told to die before its command could start: the server answers K, not R.
    fake_http_server.add(1, "echo $$; sleep 60", status="K")

    pool.submit(make_batch(1))
    error = fake_http_server.wait_for(1, "error")

    assert error.body["message"] == "killed by signal SIGTERM"
    # The kill may come before the shell printed its pid; when it did print, its whole
    # process group must be gone.
    printed_pid = error.body["stdout_tail"].strip()
    if printed_pid:
        assert not process_group_exists(int(printed_pid))


def test_a_kill_request_reaches_the_command_through_the_parent(
    fake_http_server: FakeServer,
    start_pool: Callable[[int], MultiprocessPlugin],
    make_batch: Callable[..., SubmitBatch],
) -> None:
    pool = start_pool(1)
    fake_http_server.add(1, "echo $$; sleep 60", status="I")
    pool.submit(make_batch(1))
    fake_http_server.wait_for(1, "running")

    fake_http_server.set_status(1, "K")  # the next heartbeat's answer
    error = fake_http_server.wait_for(1, "error")

    assert "heartbeat" in fake_http_server.kinds(1)
    assert error.body["message"] == "killed on the server's request"
    assert not process_group_exists(int(error.body["stdout_tail"]))


def test_a_dead_pool_process_is_replaced(
    fake_http_server: FakeServer,
    start_pool: Callable[[int], MultiprocessPlugin],
    make_batch: Callable[..., SubmitBatch],
) -> None:
    pool = start_pool(1)
    fake_http_server.add(1, "echo $$; sleep 60", status="I")
    fake_http_server.add(2, "echo second", status="I")
    pool.submit(make_batch(1))
    running = fake_http_server.wait_for(1, "running")

    time.sleep(0.5)  # the command's process group reaches the parent
    (command,) = psutil.Process(running.body["pid"]).children()
    os.kill(running.body["pid"], signal.SIGKILL)  # the pool process, not the command
    time.sleep(2.0)
    # The orphaned command was killed too. Whoever adopted it may not have reaped it yet.
    assert not command.is_running() or command.status() == psutil.STATUS_ZOMBIE
    assert pool.submitted_or_running(["mp-1"]) == set()
    assert pool.remote_exit_info("mp-1")[0] == "U"
    pool.submit(make_batch(2))

    assert fake_http_server.wait_for(2, "done").body["stdout_tail"] == "second\n"


def test_the_pool_size_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERDSMAN_MULTIPROCESS_WORKERS", "3")
    assert default_worker_count() == 3
    monkeypatch.setenv("HERDSMAN_MULTIPROCESS_WORKERS", "many")
    with pytest.raises(ConfigurationError):
        default_worker_count()
    monkeypatch.delenv("HERDSMAN_MULTIPROCESS_WORKERS")
    assert default_worker_count() >= 1


def test_requests_are_enforced_by_default(
    fake_http_server: FakeServer,
    start_pool: Callable[..., MultiprocessPlugin],
    make_batch: Callable[..., SubmitBatch],
) -> None:
    pool = start_pool(1)
    fake_http_server.add(1, "sleep 30", status="I", resources={"runtime": 1})

    pool.submit(make_batch(1))
    error = fake_http_server.wait_for(1, "error")

    assert error.body["status"] == "Z"
    assert "more than its runtime request of 1 s" in error.body["message"]


def test_enforcement_can_be_turned_off(
    fake_http_server: FakeServer,
    start_pool: Callable[..., MultiprocessPlugin],
    make_batch: Callable[..., SubmitBatch],
) -> None:
    pool = start_pool(1, enforce_limits=False)
    fake_http_server.add(1, "sleep 1.5", status="I", resources={"runtime": 1})

    pool.submit(make_batch(1))

    fake_http_server.wait_for(1, "done")


def test_a_bad_enforce_limits_is_refused(fake_http_server: FakeServer) -> None:
    with pytest.raises(ConfigurationError, match="enforce_limits"):
        MultiprocessPlugin(requester=fake_http_server, parameters={"enforce_limits": "maybe"})
