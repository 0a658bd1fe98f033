"""The words of a run: progress lines and the end-of-run summary, from facts alone."""

from __future__ import annotations

from dataclasses import replace

import pytest

from herdsman.client.run_report import (
    DistributorFacts,
    FailedTask,
    RunFacts,
    describe_exit,
    estimate_seconds_left,
    format_duration,
    interrupted_line,
    progress_line,
    summarize,
)
from herdsman.client.swarm.orchestrator import RunEnding
from herdsman.client.swarm.values import RunProgress
from herdsman.core.statuses import WorkflowRunStatus

E = WorkflowRunStatus.ERROR


def progress(
    total: int = 10,
    done: int = 0,
    running: int = 0,
    queued: int = 0,
    failed: int = 0,
    newly_done: int | None = None,
) -> RunProgress:
    return RunProgress(
        total=total,
        done=done,
        running=running,
        queued=queued,
        failed=failed,
        newly_done=done if newly_done is None else newly_done,
    )


def facts(ending: RunEnding, **overrides: object) -> RunFacts:
    base = RunFacts(
        workflow_id=7,
        workflow_name="genomics",
        run_id=12,
        status=E,
        ending=ending,
        elapsed_seconds=48.2,
        progress=progress(total=8, done=5, failed=1, queued=2),
        timeout_seconds=36_000,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


FAILED = [
    FailedTask(
        21, "reduce_n-1", 3, "exit code 2", "line one\npython3: can't open file 'reduce_typo.py'\n"
    ),
    FailedTask(22, "reduce_n-2", 3, "exit code 2", ""),
    FailedTask(23, "reduce_n-3", 1, "exit code 137", "Killed"),
]


# --- progress ----------------------------------------------------------------------------------


def test_the_time_left_follows_this_runs_rate() -> None:
    assert estimate_seconds_left(progress(total=10, done=4), elapsed=20) == pytest.approx(30)
    # Tasks done before a resume are not this run's work: only the 2 new ones set the rate.
    assert estimate_seconds_left(
        progress(total=10, done=4, newly_done=2), elapsed=20
    ) == pytest.approx(60)


def test_the_time_left_is_unknown_before_any_task_finished_and_nil_at_the_end() -> None:
    assert estimate_seconds_left(progress(total=10), elapsed=20) is None
    assert estimate_seconds_left(progress(total=10, done=9, failed=1), elapsed=20) == 0


def test_a_progress_line_gives_counts_rate_elapsed_and_time_left() -> None:
    line = progress_line(3, progress(total=53, done=40, running=2, queued=5, failed=1), 80)
    assert line == (
        "workflow 3: 40/53 done (75%), 2 running, 5 queued, 1 failed; "
        "1m20s elapsed, 30.0 tasks/min, about 24.0s left"
    )


def test_the_last_progress_line_estimates_nothing() -> None:
    line = progress_line(3, progress(total=5, done=5), 10, final=True)
    assert (
        line == "workflow 3: 5/5 done (100%), 0 running, 0 queued, 0 failed; 10.0s elapsed, "
        "30.0 tasks/min"
    )


@pytest.mark.parametrize(
    ("seconds", "shown"), [(4.04, "4.0s"), (62, "1m02s"), (3599.6, "1h00m"), (7500, "2h05m")]
)
def test_durations_read_briefly(seconds: float, shown: str) -> None:
    assert format_duration(seconds) == shown


@pytest.mark.parametrize(
    ("code", "said"),
    [(None, "it is still running"), (0, "exit code 0"), (1, "exit code 1"), (-9, "SIGKILL")],
)
def test_exits_are_described(code: int | None, said: str) -> None:
    assert said in describe_exit(code)


# --- the summary -------------------------------------------------------------------------------


def test_a_done_run_says_so_in_one_line() -> None:
    done = facts(
        RunEnding.DONE,
        status=WorkflowRunStatus.DONE,
        progress=progress(total=53, done=53, newly_done=41),
        elapsed_seconds=72,
    )
    assert summarize(done) == (
        "herdsman: workflow 7 (genomics) is done: run 12 finished all 53 tasks "
        "(12 were done before this run) in 1m12s"
    )


def test_failed_tasks_are_named_with_their_error_and_stderr_and_what_to_run_next() -> None:
    text = summarize(facts(RunEnding.TASKS_FAILED, failed=FAILED, failed_total=5))
    lines = text.splitlines()
    assert lines[0] == "herdsman: workflow 7 (genomics): run 12 ended error (E) after 48.2s"
    assert lines[1] == "  tasks: 5 done, 1 failed, 2 queued (of 8)"
    assert "5 tasks failed after using all attempts; 2 tasks behind them never ran" in lines[2]
    assert "    task 21 reduce_n-1 (3 attempts): exit code 2" in lines
    assert "      | python3: can't open file 'reduce_typo.py'" in lines
    assert "    task 23 reduce_n-3 (1 attempt): exit code 137" in lines
    assert "    ... and 2 more failed tasks" in lines
    assert "next: herdsman workflow errors -w 7" in text
    assert "herdsman workflow resume -w 7" in text


def test_fail_fast_names_the_task_it_stopped_on() -> None:
    text = summarize(facts(RunEnding.FAIL_FAST, fail_fast_task=FAILED[2], failed_total=1))
    assert "fail_fast is set and task 23 (reduce_n-3) failed" in text
    assert "| Killed" in text


def test_a_timeout_gives_the_limit_the_time_taken_and_what_was_unfinished() -> None:
    text = summarize(
        facts(
            RunEnding.TIMEOUT,
            timeout_seconds=4,
            elapsed_seconds=4.1,
            progress=progress(total=5, running=2, queued=3),
        )
    )
    assert (
        "seconds_until_timeout=4 was reached after 4.1s with 5 tasks unfinished "
        "(2 running, 3 queued)"
    ) in text
    assert "did its node fail" not in text
    assert "herdsman workflow resume -w 7" in text
    assert "workflow errors" not in text  # no task failed


def test_a_dead_distributor_is_named_with_how_it_died_and_its_last_log_lines() -> None:
    died = DistributorFacts(
        cluster="multiprocess",
        pid=4321,
        exit_code=-9,
        log_file="/data/logs/run-12-multiprocess.log",
        last_lines=("herdsman info: distributor ready (pid=4321)", "herdsman info: launched"),
    )
    text = summarize(facts(RunEnding.DISTRIBUTOR_DIED, distributor=died))
    assert "the distributor for cluster multiprocess, pid 4321 died (killed by signal 9" in text
    assert "its last log lines (/data/logs/run-12-multiprocess.log):" in text
    assert "    herdsman info: launched" in text.splitlines()


def test_a_stop_says_who_stopped_the_run() -> None:
    text = summarize(
        facts(
            RunEnding.STOPPED,
            status=WorkflowRunStatus.STOPPED,
            status_message="stopped by alice",
        )
    )
    assert "run 12 ended stopped (S)" in text
    assert "why: the run was stopped by alice; its running jobs were killed" in text
    assert "herdsman workflow resume -w 7" in text


def test_a_run_taken_over_by_a_resume_suggests_nothing() -> None:
    text = summarize(facts(RunEnding.TAKEN_OVER, status=WorkflowRunStatus.TERMINATED))
    assert "took it over" in text and "next:" not in text


def test_ctrl_c_ends_with_one_line() -> None:
    assert summarize(facts(RunEnding.INTERRUPTED)) == interrupted_line(7, 12)
    assert "\n" not in interrupted_line(7, 12)
    assert "herdsman workflow resume -w 7" in interrupted_line(7, 12)


def test_other_ends_give_the_swarms_reason() -> None:
    text = summarize(facts(RunEnding.SERVER_LOST, reason="5 heartbeats in a row failed"))
    assert "why: 5 heartbeats in a row failed" in text
