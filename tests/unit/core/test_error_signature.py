"""Error signatures: errors that differ only in what varies per task share one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herdsman.core.error_signature import (
    DIGEST_LENGTH,
    ExitClass,
    error_signature,
    exit_class_of,
    last_meaningful_lines,
    mask,
)
from herdsman.core.statuses import TaskInstanceStatus as I

_MISSING = "python3: can't open file '{}': [Errno 2] No such file or directory"


def _traceback(path: str, line: int, value: int) -> str:
    return (
        "Traceback (most recent call last):\n"
        f'  File "{path}", line {line}, in <module>\n'
        "    main()\n"
        f'  File "{path}", line {line + 3}, in main\n'
        '    raise ValueError(f"bad value {x}")\n'
        f"ValueError: bad value {value}\n\n"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("task 17 of 200 took 3.25 s", "task <n> of <n> took <n> s"),
        ("at 2026-12-04T13:45:07.123Z and 2026-12-04 13:45", "at <time> and <time>"),
        ("started 09:15:02, ended 9:16:00.5", "started <time>, ended <time>"),
        ("run 123e4567-e89b-12d3-a456-426614174000 failed", "run <id> failed"),
        ("pointer 0xDEADbeef, commit 3f2a9c1d0e", "pointer <hex>, commit <hex>"),
        ("open /home/ana/run_3/out.csv and ./data/x.h5", "open <path> and <path>"),
        ("read ~/cfg/a.yaml or results/2024/b.txt", "read <path> or <path>"),
        ("/usr/bin/python3: can't open /a/b, or /c/d", "<path>: can't open <path>, or <path>"),
        ("exit code 137 after signal 9 (attempt 2)", "exit code 137 after signal 9 (attempt <n>)"),
        ("  many \t spaces\nand lines  ", "many spaces and lines"),
        ("words like deadline and facade stay", "words like deadline and facade stay"),
    ],
)
def test_mask_replaces_what_varies(text: str, expected: str) -> None:
    assert mask(text) == expected


def test_failures_differing_only_in_numbers_and_paths_share_a_signature() -> None:
    first = error_signature("exit code 2", _MISSING.format("/home/ana/run_1/reduce_typo.py"))
    second = error_signature("exit code 2", _MISSING.format("/scratch/b/other.py"))
    assert first == second
    assert first.text == (
        "exit code 2 | python<n>: can't open file '<path>': [Errno <n>] No such file or directory"
    )
    assert len(first.digest) == DIGEST_LENGTH


def test_tracebacks_of_one_bug_share_a_signature_across_tasks() -> None:
    one = error_signature("exit code 1", _traceback("/a/task_1/run.py", 12, 42))
    other = error_signature("exit code 1", _traceback("/b/task_99/run.py", 40, -7))
    assert one.digest == other.digest
    assert one.text.endswith("ValueError: bad value <n>")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("exit code 1", "KeyError: 'alpha'"), ("exit code 1", "ValueError: bad value")),
        (("exit code 1", "oops"), ("exit code 2", "oops")),
        (("exit code 1", None), ("killed by signal SIGKILL", None)),
        (("exit code 1", "first\nsecond"), ("exit code 1", "first")),
    ],
)
def test_different_errors_have_different_signatures(
    one: tuple[str, str | None], other: tuple[str, str | None]
) -> None:
    assert error_signature(*one).digest != error_signature(*other).digest


def test_only_the_last_meaningful_stderr_lines_count() -> None:
    noise = "\n".join(f"step {i}" for i in range(50))
    tail = f"{noise}\nwarning: deprecated\n-----\n 75%\n\nError: disk full\n1234\n"
    assert last_meaningful_lines(tail) == ["step <n>", "warning: deprecated", "Error: disk full"]
    earlier_noise = "\n".join(f"loading {i}" for i in range(9))
    assert error_signature("exit code 1", f"{earlier_noise}\n{tail}") == error_signature(
        "exit code 1", tail
    )


def test_no_stderr_means_the_message_alone() -> None:
    assert error_signature("exit code 3", None).text == "exit code 3"
    assert error_signature("exit code 3", "\n  \n----\n").text == "exit code 3"
    assert last_meaningful_lines(None) == []


def test_long_lines_are_cut() -> None:
    assert len(last_meaningful_lines("x" * 5000)[0]) == 200


@given(st.text(max_size=300), st.one_of(st.none(), st.text(max_size=300)))
def test_signatures_are_deterministic_single_line_and_fixed_size(
    message: str, stderr: str | None
) -> None:
    signature = error_signature(message, stderr)
    assert signature == error_signature(message, stderr)
    assert "\n" not in signature.text
    assert len(signature.digest) == DIGEST_LENGTH
    int(signature.digest, 16)


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**12))
def test_any_numbers_mask_alike(first: int, second: int) -> None:
    assert mask(f"row {first} failed") == mask(f"row {second} failed")


@pytest.mark.parametrize(
    ("status", "message", "previous", "killed", "expected"),
    [
        (I.ERROR, "exit code 1", I.RUNNING, False, ExitClass.COMMAND_ERROR),
        (
            I.RESOURCE_ERROR,
            "the command used 1.3 GiB, more than its memory request of 1.0 GiB",
            I.RUNNING,
            False,
            ExitClass.OUT_OF_MEMORY,
        ),
        (
            I.RESOURCE_ERROR,
            "the command ran for more than its runtime request of 5 s",
            I.RUNNING,
            False,
            ExitClass.OVER_TIME,
        ),
        (
            I.RESOURCE_ERROR,
            "Slurm job 7 reached its time limit (TIMEOUT)",
            I.TRIAGING,
            False,
            ExitClass.OVER_TIME,
        ),
        (
            I.RESOURCE_ERROR,
            "Slurm job 7 ran out of memory (OUT_OF_MEMORY, exit 0:9)",
            I.TRIAGING,
            False,
            ExitClass.OUT_OF_MEMORY,
        ),
        (
            I.UNKNOWN_ERROR,
            "the local process running job 3 died",
            I.TRIAGING,
            False,
            ExitClass.NODE_FAILURE,
        ),
        (I.ERROR, "job 3 vanished before it ran", I.NO_HEARTBEAT, False, ExitClass.NODE_FAILURE),
        (
            I.NO_DISTRIBUTOR_ID,
            "sbatch refused the job",
            I.INSTANTIATED,
            False,
            ExitClass.NOT_LAUNCHED,
        ),
        (I.ERROR_FATAL, "killed on request", I.KILL_SELF, True, ExitClass.KILLED),
    ],
)
def test_exit_class(
    status: I, message: str, previous: I, killed: bool, expected: ExitClass
) -> None:
    assert exit_class_of(status, message, previous=previous, killed=killed) is expected
