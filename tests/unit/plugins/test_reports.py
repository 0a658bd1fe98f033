"""The pool's report batches ride out a server outage instead of dropping finished work."""

from __future__ import annotations

import socket
import threading

from tests.unit.plugins.conftest import FakeServer, serve_http

from herdsman.core.errors import HerdsmanError, ServerUnavailableError
from herdsman.core.schemas.worker import InstanceReportIn, InstanceReportOut
from herdsman.plugins._reports import ReportBatcher
from herdsman.worker.wrapper import running_report

Answer = InstanceReportOut | HerdsmanError


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _running(task_instance_id: int) -> InstanceReportIn:
    report = running_report(pid=1, distributor_id=f"mp-{task_instance_id}", next_report_seconds=9)
    return InstanceReportIn(task_instance_id=task_instance_id, running=report)


class Answers:
    def __init__(self) -> None:
        self.received: list[Answer] = []
        self.arrived = threading.Event()

    def __call__(self, answer: Answer) -> None:
        self.received.append(answer)
        self.arrived.set()


def test_a_batch_waits_for_a_server_that_is_down_and_is_delivered_when_it_is_back(
    fake_server: FakeServer,
) -> None:
    fake_server.add(1, "true", status="I")
    port = _free_port()
    batcher = ReportBatcher(f"http://127.0.0.1:{port}", retry_pause=0.1)
    answers = Answers()
    batcher.start()
    try:
        batcher.send([(_running(1), answers)])
        # Longer than the requester's own retries (about 1.5 s): the batch must be kept.
        assert not answers.arrived.wait(3.0)

        httpd = serve_http(fake_server, port)
        try:
            assert answers.arrived.wait(30.0)
        finally:
            batcher.stop()
            httpd.shutdown()
            httpd.server_close()
    finally:
        batcher.stop()

    (answer,) = answers.received
    assert isinstance(answer, InstanceReportOut)
    assert answer.status == "R"
    assert fake_server.kinds(1) == ["running"]


def test_after_the_longest_outage_the_reports_are_given_up(fake_server: FakeServer) -> None:
    batcher = ReportBatcher(f"http://127.0.0.1:{_free_port()}", max_outage_seconds=0.0)
    answers = Answers()
    batcher.start()
    try:
        batcher.send([(_running(1), answers)])
        assert answers.arrived.wait(30.0)
    finally:
        batcher.stop()

    (answer,) = answers.received
    assert isinstance(answer, ServerUnavailableError)


def test_a_stopping_pool_does_not_wait_for_the_server(fake_server: FakeServer) -> None:
    batcher = ReportBatcher(f"http://127.0.0.1:{_free_port()}", retry_pause=60.0)
    answers = Answers()
    batcher.start()
    batcher.send([(_running(1), answers)])

    batcher.stop()  # returns once the kept batch failed again, not after the minute's pause

    (answer,) = answers.received
    assert isinstance(answer, ServerUnavailableError)
