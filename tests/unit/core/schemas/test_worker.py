"""The running answer: what a wrapper is told to run, and the limits it may enforce."""

from __future__ import annotations

from typing import Any

import pytest

from herdsman.core.schemas.worker import running_answer


def _answer(resources: dict[str, Any]) -> Any:
    return running_answer(
        status="R",
        task_instance_id=7,
        task_id=3,
        workflow_id=1,
        workflow_run_id=2,
        name="fit_1",
        command="echo hi",
        resources=resources,
    )


def test_the_answer_carries_the_output_directories_and_the_requests() -> None:
    answer = _answer({"stdout": "/out", "stderr": "/err", "memory": 2, "runtime": 60, "cores": 4})

    assert (answer.stdout_dir, answer.stderr_dir) == ("/out", "/err")
    assert (answer.memory, answer.runtime) == (2.0, 60.0)
    assert (answer.task_instance_id, answer.task_id, answer.command) == (7, 3, "echo hi")


@pytest.mark.parametrize("value", [None, 0, -1, True, "2G"])
def test_what_is_no_positive_number_is_no_limit(value: object) -> None:
    answer = _answer({"memory": value, "runtime": value})

    assert (answer.memory, answer.runtime) == (None, None)
    assert (answer.stdout_dir, answer.stderr_dir) == (None, None)
