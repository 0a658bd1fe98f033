"""The shared timing defaults keep the promises their docstrings make."""

from __future__ import annotations

from herdsman.core import timing


def test_a_report_by_time_survives_two_lost_beats() -> None:
    interval = timing.DEFAULT_INSTANCE_HEARTBEAT_INTERVAL
    deadline = timing.report_by_seconds(interval)

    assert deadline > 3 * interval
    assert timing.report_by_seconds(2.0, 1.5) == 3.0


def test_the_silence_grace_ends_before_a_silent_worker_would_be_reaped() -> None:
    # After an outage every worker reports again within one interval; the grace must cover
    # that beat but not outlast the report-by deadline, or a really lost job waits longer.
    assert 1 < timing.SILENCE_GRACE_HEARTBEATS < timing.DEFAULT_REPORT_BY_BUFFER
