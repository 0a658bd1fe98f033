"""How a Slurm job's worker reads its command's death, against a stand-in ``sacct`` on PATH.

The stand-in answers as a real one does when slurmctld has signalled a job but the accounting
daemon has not yet recorded its end: RUNNING for the first calls, then the final state.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from herdsman.plugins.slurm import worker

FAKE_SACCT = """#!/bin/sh
calls=$(cat "$SACCT_CALLS" 2>/dev/null || echo 0)
calls=$((calls + 1))
echo "$calls" > "$SACCT_CALLS"
if [ "$calls" -le "$SACCT_RUNNING_CALLS" ]; then
  echo "63|RUNNING|0:0|00:00:04|00:00.100|"
else
  echo "63|CANCELLED by 0|0:0|00:00:04|00:01.166|"
fi
"""


@pytest.fixture
def sacct_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stand-in sacct first on PATH; the returned file counts its calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    sacct = bin_dir / "sacct"
    sacct.write_text(FAKE_SACCT)
    sacct.chmod(0o755)
    calls = tmp_path / "calls"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SACCT_CALLS", str(calls))
    monkeypatch.setenv("SLURM_JOB_ID", "63")
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    monkeypatch.setattr(worker, "job_oom_kills", lambda: 0)  # this machine's own cgroup
    return calls


def _calls(path: Path) -> int:
    return int(path.read_text())


def test_a_cancel_the_accounting_records_late_still_names_who_cancelled(
    sacct_calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SACCT_RUNNING_CALLS", "2")

    status, message = worker.slurm_exit_code_status(-signal.SIGTERM)

    assert status == "E"
    assert "Slurm job 63 was cancelled by" in message
    assert message.endswith("the command was killed by signal SIGTERM")
    assert _calls(sacct_calls) == 3


def test_a_shell_reported_sigterm_is_read_the_same_way(
    sacct_calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SACCT_RUNNING_CALLS", "1")

    status, message = worker.slurm_exit_code_status(128 + signal.SIGTERM)

    assert status == "E"
    assert "was cancelled by" in message


def test_a_signal_slurm_does_not_end_jobs_with_asks_once(
    sacct_calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SACCT_RUNNING_CALLS", "100")

    status, message = worker.slurm_exit_code_status(-signal.SIGSEGV)

    assert (status, message) == worker.default_exit_code_status(-signal.SIGSEGV)
    assert _calls(sacct_calls) == 1


def test_an_accounting_that_never_records_the_end_gives_the_plain_reading(
    sacct_calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SACCT_RUNNING_CALLS", "100")
    monkeypatch.setattr(worker, "VERDICT_WAIT_SECONDS", 0.6)

    status, message = worker.slurm_exit_code_status(-signal.SIGTERM)

    assert (status, message) == worker.default_exit_code_status(-signal.SIGTERM)
    assert 2 <= _calls(sacct_calls) < 100


def test_a_command_that_exited_on_its_own_is_not_looked_up(sacct_calls: Path) -> None:
    assert worker.slurm_exit_code_status(3) == worker.default_exit_code_status(3)
    assert not sacct_calls.exists()
