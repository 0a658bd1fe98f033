"""A resumed workflow's new run waits for the earlier runs to let go, or forces them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from herdsman.client.swarm.handover import take_over
from herdsman.core.schemas.swarm import RunStatusOut, WorkflowRunOut


@dataclass
class ScriptedRuns:
    """Answers get_run from a script of statuses per run; records links, forces and beats."""

    statuses: dict[int, list[str]]
    calls: list[tuple[str, int]] = field(default_factory=list)

    def get_run(self, run_id: int) -> RunStatusOut:
        script = self.statuses[run_id]
        status = script.pop(0) if len(script) > 1 else script[0]
        return RunStatusOut(
            workflow_run_id=run_id, workflow_id=1, status=status, workflow_status="H"
        )

    def link_run(self, run_id: int) -> WorkflowRunOut:
        self.calls.append(("link", run_id))
        return WorkflowRunOut(workflow_run_id=run_id, workflow_id=1, status="B", last_seq=9)

    def force_release(self, run_id: int) -> RunStatusOut:
        self.calls.append(("force", run_id))
        self.statuses[run_id] = ["T"]
        return self.get_run(run_id)

    def heartbeat(self, run_id: int, next_report_seconds: float) -> Any:
        self.calls.append(("beat", run_id))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _new_run(*waiting_on: int) -> WorkflowRunOut:
    return WorkflowRunOut(
        workflow_run_id=5, workflow_id=1, status="G", last_seq=3, waiting_on=list(waiting_on)
    )


def test_a_run_waiting_on_nobody_is_returned_as_it_is() -> None:
    runs = ScriptedRuns({})
    run = WorkflowRunOut(workflow_run_id=5, workflow_id=1, status="B", last_seq=3)
    assert take_over(runs, run) is run  # type: ignore[arg-type]
    assert runs.calls == []


def test_the_new_run_links_once_the_earlier_runs_let_go() -> None:
    runs = ScriptedRuns({3: ["C", "C", "T"], 4: ["H", "T"]})
    clock = Clock()

    linked = take_over(runs, _new_run(3, 4), timeout=60, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]

    assert linked.status == "B"
    assert [call for call in runs.calls if call[0] != "beat"] == [("link", 5)]
    assert ("beat", 5) in runs.calls  # the waiting run keeps the reaper away


def test_runs_that_never_let_go_are_forced_after_the_timeout() -> None:
    runs = ScriptedRuns({3: ["C"]})
    clock = Clock()

    take_over(runs, _new_run(3), timeout=2.0, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]

    assert [call for call in runs.calls if call[0] != "beat"] == [("force", 3), ("link", 5)]
    assert clock.now >= 2.0
