"""The terminal side of a run: plain progress lines, relayed distributor warnings, log tails."""

from __future__ import annotations

import io
import json
from pathlib import Path

from herdsman.client.run_display import LogRelay, RunDisplay, choose_mode, log_tail
from herdsman.client.swarm.values import RunProgress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def event(level: str, name: str, **fields: object) -> str:
    return json.dumps({"event": name, "level": level, **fields})


def test_the_mode_follows_the_output_and_the_switch() -> None:
    assert choose_mode(False) == "off"
    assert choose_mode(True, io.StringIO()) == "lines"  # not a terminal


def test_plain_lines_split_active_tasks_by_what_the_server_says_runs() -> None:
    out, clock = io.StringIO(), Clock()
    display = RunDisplay(3, "lines", running=lambda: 2, stream=out, clock=clock, interval=3600)
    with display:
        display.update(RunProgress(total=10, done=4, running=0, queued=5, failed=1, newly_done=4))
        clock.now += 20
    assert out.getvalue() == (
        "workflow 3: 4/10 done (40%), 2 running, 3 queued, 1 failed; 20.0s elapsed, "
        "12.0 tasks/min\n"
    )
    split = display.split(RunProgress(10, 4, 0, 5, 1, 4))
    assert (split.running, split.queued) == (2, 3)


def test_off_shows_no_progress_but_still_says_and_summarizes() -> None:
    out = io.StringIO()
    display = RunDisplay(3, "off", stream=out)
    with display:
        display.update(RunProgress(1, 1, 0, 0, 0, 1))
        display.say("herdsman warning: something")
    display.print_summary("herdsman: workflow 3 is done", ok=True)
    assert out.getvalue() == "herdsman warning: something\nherdsman: workflow 3 is done\n"


def test_the_relay_shows_warnings_in_the_human_format_and_leaves_the_rest(tmp_path: Path) -> None:
    log = tmp_path / "run-1-multiprocess.log"
    log.write_text(event("warning", "old_warning") + "\n")  # before the relay: not this run's
    said: list[str] = []
    with LogRelay([log], said.append, interval=3600), log.open("a") as stream:
        stream.write(event("info", "distributor_launched", claimed=3) + "\n")
        stream.write("Traceback (most recent call last):\n")
        stream.write(
            event(
                "warning",
                "worker_limit_exceeded",
                task_id=4,
                task_instance_id=9,
                resource="runtime",
                reason=(
                    "ran 12 s, over its runtime request of 10 s; killed so it can be retried "
                    "with more runtime"
                ),
            )
            + "\n"
        )
        stream.write(event("error", "distributor_failed", error="boom"))  # no newline yet
    assert said == [
        "herdsman warning: task 4 (attempt 9): ran 12 s, over its runtime request of 10 s; "
        "killed so it can be retried with more runtime"
    ]


def test_a_log_tail_is_readable(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    lines = [event("info", "distributor_ready", pid=5), "Killed", "", event("info", "x", n=1)]
    log.write_text("\n".join(lines) + "\n")
    assert log_tail(log, 2) == ("Killed", "herdsman info: x (n=1)")
    assert log_tail(log, 10)[0] == "herdsman info: distributor ready (pid=5)"
    assert log_tail(tmp_path / "missing.log", 3) == ()
