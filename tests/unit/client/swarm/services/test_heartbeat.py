"""HeartbeatService and the loop-owned failure counter."""

from __future__ import annotations

import pytest
from tests.support.swarm_gateway import InMemorySwarmGateway

from herdsman.client.swarm.services.heartbeat import (
    MAX_CONSECUTIVE_FAILURES,
    ConsecutiveFailures,
    HeartbeatService,
)
from herdsman.core.errors import ServerUnavailableError
from herdsman.core.statuses import WorkflowRunStatus


@pytest.fixture
def gateway() -> InMemorySwarmGateway:
    gateway = InMemorySwarmGateway()
    gateway.add_task(1)
    gateway.create_run(1, resume=False, reset_running_jobs=True)
    return gateway


def test_a_beat_is_due_at_once_then_every_interval(gateway: InMemorySwarmGateway) -> None:
    service = HeartbeatService(gateway, run_id=1, interval=10.0, report_by_buffer=3.1)
    assert service.due(0.0)
    service.tick(0.0)
    assert not service.due(9.9)
    assert service.seconds_until_due(4.0) == pytest.approx(6.0)
    assert service.due(10.0)


def test_the_beat_promises_interval_times_buffer_and_returns_status_and_limits(
    gateway: InMemorySwarmGateway,
) -> None:
    gateway.set_limits(7, {1: 3})
    service = HeartbeatService(gateway, run_id=1, interval=10.0, report_by_buffer=3.1)
    beat = service.tick(0.0)
    assert gateway.report_by(1) == pytest.approx(31.0)
    assert beat.run_status is WorkflowRunStatus.BOUND
    assert beat.max_concurrently_running == 7
    assert dict(beat.array_limits) == {1: 3}


def test_a_failed_beat_raises_and_counts_as_the_attempt(gateway: InMemorySwarmGateway) -> None:
    gateway.fail_heartbeats(1)
    service = HeartbeatService(gateway, run_id=1, interval=10.0)
    with pytest.raises(ServerUnavailableError):
        service.tick(0.0)
    assert not service.due(5.0)


def test_bad_settings_are_refused(gateway: InMemorySwarmGateway) -> None:
    with pytest.raises(ValueError):
        HeartbeatService(gateway, run_id=1, interval=0)
    with pytest.raises(ValueError):
        HeartbeatService(gateway, run_id=1, interval=1, report_by_buffer=0.5)


def test_five_failures_in_a_row_are_fatal() -> None:
    failures = ConsecutiveFailures()
    assert failures.limit == MAX_CONSECUTIVE_FAILURES == 5
    assert [failures.record_failure() for _ in range(5)] == [False, False, False, False, True]


def test_a_success_resets_the_count() -> None:
    failures = ConsecutiveFailures(limit=5)
    for _ in range(4):
        assert not failures.record_failure()
    failures.record_success()
    assert failures.count == 0
    assert not any(failures.record_failure() for _ in range(4))
