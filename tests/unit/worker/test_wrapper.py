"""The worker wrapper against a fake server, running real shell commands."""

from __future__ import annotations

import os
import re
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from herdsman.core.schemas.worker import TAIL_CHARACTERS
from herdsman.worker.command import process_group_exists
from herdsman.worker.wrapper import WRAPPER_ERROR_EXIT_CODE, run_task_instance

if TYPE_CHECKING:
    from .conftest import FakeWorkerServer


def _run(server: FakeWorkerServer, task_instance_id: int, **options: Any) -> int:
    """run_task_instance with quick heartbeats and a short kill grace."""
    options.setdefault("heartbeat_interval", 0.2)
    options.setdefault("kill_grace_seconds", 1.0)
    return run_task_instance(server, task_instance_id, **options)


def test_exit_zero_reports_done_with_usage(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, "echo hello; echo oops >&2")

    exit_code = _run(fake_server, 1)

    assert exit_code == 0
    assert fake_server.kinds(1)[0] == "running"
    assert fake_server.kinds(1)[-1] == "done"
    done = fake_server.last(1, "done")
    assert done["stdout_tail"] == "hello\n"
    assert done["stderr_tail"] == "oops\n"
    usage = done["usage"]
    assert usage["wall_time"] > 0
    assert usage["cpu_time"] >= 0
    assert usage["max_rss"] > 1024 * 1024  # a shell needs more than a megabyte


def test_running_report_names_this_process(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, "true")

    _run(fake_server, 1, distributor_id="job-9")

    running = fake_server.last(1, "running")
    assert running["pid"] == os.getpid()
    assert running["host"]
    assert running["distributor_id"] == "job-9"
    # The server's deadline for the next report: the interval plus its margin.
    assert running["next_report_seconds"] == pytest.approx(0.2 * 3.1)


def test_non_zero_exit_reports_error(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, "echo bad >&2; exit 3")

    exit_code = _run(fake_server, 1)

    assert exit_code == 3
    error = fake_server.last(1, "error")
    assert error["status"] == "E"
    assert error["exit_code"] == 3
    assert error["message"] == "exit code 3"
    assert error["stderr_tail"] == "bad\n"
    assert fake_server.instances[1].status == "E"


def test_a_signal_is_reported_by_name(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, "kill -KILL $$")

    exit_code = _run(fake_server, 1)

    assert exit_code == 128 + 9
    error = fake_server.last(1, "error")
    assert error["exit_code"] == -9
    assert error["message"] == "killed by signal SIGKILL"


def test_the_plugin_maps_exit_codes(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, "exit 137")

    _run(fake_server, 1, exit_code_status=lambda code: ("Z", f"out of memory ({code})"))

    error = fake_server.last(1, "error")
    assert (error["status"], error["message"]) == ("Z", "out of memory (137)")


def test_the_command_sees_its_ids(fake_server: FakeWorkerServer) -> None:
    fake_server.add(
        5,
        'echo "$HERDSMAN_WORKFLOW_ID $HERDSMAN_WORKFLOW_RUN_ID '
        '$HERDSMAN_TASK_ID $HERDSMAN_TASK_INSTANCE_ID"',
    )

    _run(fake_server, 5)

    assert fake_server.last(5, "done")["stdout_tail"] == "7 8 1005 5\n"


def test_the_command_sees_its_ids_by_jobmons_names_too(fake_server: FakeWorkerServer) -> None:
    fake_server.add(5, 'echo "$JOBMON_WORKFLOW_ID $JOBMON_TASK_ID $JOBMON_TASK_INSTANCE_ID"')

    _run(fake_server, 5)

    assert fake_server.last(5, "done")["stdout_tail"] == "7 1005 5\n"


def test_tails_keep_the_last_characters(fake_server: FakeWorkerServer) -> None:
    # 30,000 characters ending in a recognisable line, written in many pieces.
    fake_server.add(1, "for i in $(seq 1 3000); do printf '%09d\\n' $i; done; printf END")

    _run(fake_server, 1)

    tail = fake_server.last(1, "done")["stdout_tail"]
    assert len(tail) == TAIL_CHARACTERS
    assert tail.endswith("000003000\nEND")
    assert tail.startswith("002001\n")  # the first 20,003 characters are gone


def test_undecodable_output_is_replaced(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, r"printf 'a\377\376b\000c'")

    assert _run(fake_server, 1) == 0

    assert fake_server.last(1, "done")["stdout_tail"] == "a\ufffd\ufffdb\ufffdc"


def test_a_character_split_across_reads_survives(fake_server: FakeWorkerServer) -> None:
    # "é" is two bytes; the pause makes the reader see them in two reads.
    fake_server.add(1, r"printf '\303'; sleep 0.3; printf '\251!'")

    _run(fake_server, 1)

    assert fake_server.last(1, "done")["stdout_tail"] == "é!"


def test_output_goes_to_files_in_the_requested_dirs(
    fake_server: FakeWorkerServer, tmp_path: Path
) -> None:
    out_dir, err_dir = tmp_path / "logs" / "out", tmp_path / "logs" / "err"
    fake_server.add(
        1,
        r"echo to-stdout; printf 'x\377' >&2",
        name="fit_model",
        stdout_dir=str(out_dir),
        stderr_dir=str(err_dir),
    )

    _run(fake_server, 1, distributor_id="4242")

    stdout_file, stderr_file = out_dir / "fit_model.o4242", err_dir / "fit_model.e4242"
    assert stdout_file.read_text() == "to-stdout\n"
    assert stderr_file.read_bytes() == b"x\xff"  # the file keeps the raw bytes
    done = fake_server.last(1, "done")
    assert (done["stdout_path"], done["stderr_path"]) == (str(stdout_file), str(stderr_file))


def test_without_dirs_no_file_is_written(
    fake_server: FakeWorkerServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fake_server.add(1, "echo hello")

    _run(fake_server, 1)

    assert list(tmp_path.iterdir()) == []
    done = fake_server.last(1, "done")
    assert (done["stdout_path"], done["stderr_path"]) == (None, None)


def test_the_instance_id_names_files_without_a_job_id(
    fake_server: FakeWorkerServer, tmp_path: Path
) -> None:
    fake_server.add(12, "echo hi", name="a/b", stdout_dir=str(tmp_path))

    _run(fake_server, 12)

    assert (tmp_path / "a_b.o12").read_text() == "hi\n"


def test_an_unwritable_dir_does_not_fail_the_task(
    fake_server: FakeWorkerServer, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    fake_server.add(1, "echo hi", stdout_dir=str(blocker / "out"))

    assert _run(fake_server, 1) == 0

    done = fake_server.last(1, "done")
    assert done["stdout_path"] is None
    assert done["stdout_tail"] == "hi\n"


def test_heartbeats_carry_the_tails(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, "echo started; sleep 0.7")

    _run(fake_server, 1)

    beats = [b for tid, kind, b in fake_server.reports if kind == "heartbeat"]
    assert len(beats) >= 2
    assert beats[-1]["stdout_tail"] == "started\n"


def test_kill_on_k_stops_the_whole_process_tree(fake_server: FakeWorkerServer) -> None:
    instance = fake_server.add(1, "sleep 60 & sleep 60; wait")
    pgids: list[int] = []

    def started(pgid: int) -> None:
        pgids.append(pgid)
        instance.status = "K"  # the next heartbeat is told to die

    began = time.monotonic()
    exit_code = _run(fake_server, 1, on_command_start=started)

    assert time.monotonic() - began < 10
    assert exit_code == 128 + 15
    assert not process_group_exists(pgids[0])
    error = fake_server.last(1, "error")
    assert error["message"] == "killed on the server's request"


def test_a_command_ignoring_sigterm_is_killed_after_the_grace(
    fake_server: FakeWorkerServer,
) -> None:
    instance = fake_server.add(1, "trap '' TERM; sleep 60 & wait; wait")
    pgids: list[int] = []

    def started(pgid: int) -> None:
        pgids.append(pgid)
        instance.status = "K"

    began = time.monotonic()
    _run(fake_server, 1, on_command_start=started, heartbeat_interval=0.2, kill_grace_seconds=0.5)

    assert time.monotonic() - began < 10
    assert not process_group_exists(pgids[0])


def test_background_leftovers_are_cleaned_up(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, "sleep 60 & echo done")
    pgids: list[int] = []

    began = time.monotonic()
    exit_code = _run(fake_server, 1, on_command_start=pgids.append)

    assert exit_code == 0
    assert time.monotonic() - began < 5
    assert not process_group_exists(pgids[0])
    assert fake_server.last(1, "done")["stdout_tail"] == "done\n"


@pytest.mark.parametrize("status", ["K", "D", "F"])
def test_an_instance_that_may_not_run_is_not_run(
    fake_server: FakeWorkerServer, tmp_path: Path, status: str
) -> None:
    marker = tmp_path / "ran"
    fake_server.add(1, f"touch {marker}", status=status)

    assert _run(fake_server, 1) == 0

    assert not marker.exists()
    assert fake_server.kinds(1) == ["running"]


def test_a_version_mismatch_is_not_retried(
    fake_server: FakeWorkerServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import herdsman

    monkeypatch.setattr(herdsman, "__version__", "0.0.0-other")
    marker = tmp_path / "ran"
    fake_server.add(1, f"touch {marker}")

    assert _run(fake_server, 1) == WRAPPER_ERROR_EXIT_CODE

    assert fake_server.kinds(1) == ["running"]
    assert not marker.exists()


def test_an_unknown_instance_is_a_wrapper_error(fake_server: FakeWorkerServer) -> None:
    assert _run(fake_server, 99) == WRAPPER_ERROR_EXIT_CODE


def test_an_undeliverable_result_is_a_wrapper_error(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, "true")
    fake_server.unreachable.add("done")

    assert _run(fake_server, 1) == WRAPPER_ERROR_EXIT_CODE


def test_failed_heartbeats_do_not_stop_the_command(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, "sleep 0.6; echo survived")
    fake_server.unreachable.add("heartbeat")

    assert _run(fake_server, 1) == 0

    assert fake_server.last(1, "done")["stdout_tail"] == "survived\n"


def test_usage_counts_the_cpu_of_the_tree(fake_server: FakeWorkerServer) -> None:
    # Busy children of the shell, reaped by it: their CPU counts, via wait4.
    burn = "i=0; while [ $i -lt 60000 ]; do i=$((i+1)); done"
    fake_server.add(1, f"({burn}) & ({burn}) & wait")

    _run(fake_server, 1)

    usage = fake_server.last(1, "done")["usage"]
    assert usage["cpu_time"] > 0.05


# --- enforcing the task's memory and runtime requests ---------------------------------------

# Holds about 300 MiB until killed; exits 0 on its own after ``seconds``.
_ALLOCATE = (
    f"{shlex.quote(sys.executable)} -c "
    "'b = bytearray(300 * 2**20); import time; time.sleep({seconds})'"
)


def test_a_command_above_its_memory_request_is_killed_as_a_resource_error(
    fake_server: FakeWorkerServer,
) -> None:
    fake_server.add(1, _ALLOCATE.format(seconds=30), memory=0.1)
    pgids: list[int] = []

    exit_code = _run(fake_server, 1, enforce_limits=True, on_command_start=pgids.append)

    assert exit_code == 128 + 15
    assert not process_group_exists(pgids[0])
    error = fake_server.last(1, "error")
    assert error["status"] == "Z"
    assert error["exit_code"] == -15
    # The amount used depends on when a sample caught the allocation, and the request is
    # written with as many decimals as the amount used (0.1, 0.10 or 0.100).
    assert re.fullmatch(
        r"the command used [0-9.]+ GiB, more than its memory request of 0\.10* GiB; "
        "killed so it can be retried with more memory",
        error["message"],
    ), error["message"]
    assert error["usage"]["max_rss"] > 0.1 * 1024**3
    assert error["usage"]["wall_time"] > 0
    assert fake_server.instances[1].status == "Z"


def test_a_command_past_its_runtime_request_is_killed_as_a_resource_error(
    fake_server: FakeWorkerServer,
) -> None:
    fake_server.add(1, "sleep 30", runtime=1)

    began = time.monotonic()
    exit_code = _run(fake_server, 1, enforce_limits=True)

    assert time.monotonic() - began < 20  # far from the 30 s it would have slept
    assert exit_code == 128 + 15
    error = fake_server.last(1, "error")
    assert error["status"] == "Z"
    assert error["message"] == (
        "the command ran for more than its runtime request of 1 s; "
        "killed so it can be retried with more time"
    )
    assert error["usage"]["wall_time"] >= 1


def test_a_command_that_exits_0_when_killed_for_a_limit_still_failed(
    fake_server: FakeWorkerServer,
) -> None:
    # A checkpointing command: it catches SIGTERM and ends "successfully", unfinished.
    fake_server.add(1, "trap 'exit 0' TERM; sleep 30 & wait", runtime=1)

    exit_code = _run(fake_server, 1, enforce_limits=True)

    assert exit_code == 0
    assert fake_server.last(1, "error")["status"] == "Z"


def test_a_command_within_its_requests_is_not_affected(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, "sleep 0.5; echo fine", memory=1.0, runtime=60)

    assert _run(fake_server, 1, enforce_limits=True) == 0

    assert fake_server.last(1, "done")["stdout_tail"] == "fine\n"


def test_without_enforcement_requests_are_not_limits(fake_server: FakeWorkerServer) -> None:
    fake_server.add(1, _ALLOCATE.format(seconds=1.5), memory=0.1, runtime=1)

    assert _run(fake_server, 1) == 0

    done = fake_server.last(1, "done")
    assert done["usage"]["max_rss"] > 0.1 * 1024**3
    assert done["usage"]["wall_time"] > 1


def test_a_kill_on_k_is_still_the_servers_kill_when_limits_are_enforced(
    fake_server: FakeWorkerServer,
) -> None:
    instance = fake_server.add(1, "sleep 60", memory=1.0, runtime=3600)

    def started(_pgid: int) -> None:
        instance.status = "K"

    _run(fake_server, 1, enforce_limits=True, on_command_start=started)

    assert fake_server.last(1, "error")["message"] == "killed on the server's request"


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("echo a\x00b", "ValueError: embedded null byte"),
        ("echo " + "x" * 200_000, "OSError: [Errno 7] Argument list too long"),
    ],
)
def test_a_command_that_cannot_start_is_an_error_of_the_attempt(
    fake_server: FakeWorkerServer, command: str, reason: str
) -> None:
    fake_server.add(1, command)

    exit_code = _run(fake_server, 1)

    assert exit_code == WRAPPER_ERROR_EXIT_CODE
    error = fake_server.last(1, "error")
    assert error["status"] == "E"
    assert error["message"].startswith(f"could not start the command: {reason}")
    assert fake_server.instances[1].status == "E"


def test_an_output_dir_with_a_nul_does_not_stop_the_command(
    fake_server: FakeWorkerServer,
) -> None:
    fake_server.add(1, "echo fine", stdout_dir="/tmp/bad\x00dir")

    exit_code = _run(fake_server, 1)

    assert exit_code == 0
    assert fake_server.last(1, "done")["stdout_tail"] == "fine\n"
