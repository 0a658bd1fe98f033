"""The server's memory of why clusters have yet to start instances' jobs."""

from __future__ import annotations

from herdsman.server.domain.pending_reasons import MAX_AGE, PendingReasons


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_report_replaces_the_runs_last_and_old_reasons_fade() -> None:
    clock = Clock()
    reasons = PendingReasons(clock)
    reasons.report(1, "Slurm", {10: "Priority", 11: "Resources"})
    reasons.report(2, "Slurm", {20: "Priority"})
    found = reasons.of(10)
    assert found is not None and (found.scheduler, found.reason) == ("Slurm", "Priority")
    reasons.report(1, "Slurm", {11: "Dependency"})
    assert reasons.of(10) is None
    assert reasons.of(11) is not None and reasons.of(11).reason == "Dependency"  # type: ignore[union-attr]
    assert reasons.of(20) is not None
    clock.now += MAX_AGE + 1
    assert reasons.of(11) is None and reasons.of(20) is None
