"""``POST /task_instances/reports`` against a real server: batches act like single reports."""

from __future__ import annotations

import os

import pytest

import herdsman
from herdsman.core.requester import Requester
from herdsman.core.schemas import worker as w
from herdsman.core.schemas.queries import TaskDetailOut

from .test_worker_cli import claimed_instance

pytestmark = pytest.mark.integration


def _running(version: str = herdsman.__version__) -> w.InstanceRunningIn:
    return w.InstanceRunningIn(
        host="node1", pid=os.getpid(), herdsman_version=version, next_report_seconds=60
    )


def _post(requester: Requester, *reports: w.InstanceReportIn) -> list[w.InstanceReportOut]:
    body = w.InstanceReportsIn(reports=list(reports))
    return requester.post("/task_instances/reports", body, w.InstanceReportsOut).reports


def test_a_batch_runs_and_finishes_instances_in_order(requester: Requester) -> None:
    _, first = claimed_instance(requester, "reports-a", "echo a")
    _, second = claimed_instance(requester, "reports-b", "echo b", max_attempts=1)
    a, b = first.task_instance_id, second.task_instance_id

    answers = _post(
        requester,
        w.InstanceReportIn(task_instance_id=a, running=_running()),
        w.InstanceReportIn(task_instance_id=b, running=_running()),
        w.InstanceReportIn(task_instance_id=a, done=w.InstanceDoneIn(stdout_tail="a\n")),
        w.InstanceReportIn(
            task_instance_id=b, error=w.InstanceErrorIn(status="E", exit_code=3, message="no")
        ),
    )

    assert [(x.task_instance_id, x.status) for x in answers] == [
        (a, "R"),
        (b, "R"),
        (a, "D"),
        (b, "E"),
    ]
    assert answers[0].running is not None and answers[0].running.command == "echo a"
    assert requester.get(f"/tasks/{first.task_id}", TaskDetailOut).status == "D"
    assert requester.get(f"/tasks/{second.task_id}", TaskDetailOut).status == "F"


def test_a_refused_report_does_not_fail_the_others(requester: Requester) -> None:
    _, claimed = claimed_instance(requester, "reports-refused", "true")
    instance_id = claimed.task_instance_id

    answers = _post(
        requester,
        w.InstanceReportIn(task_instance_id=10**12, running=_running()),
        w.InstanceReportIn(task_instance_id=instance_id, running=_running(version="0.0.0")),
        w.InstanceReportIn(task_instance_id=instance_id, running=_running()),
    )

    assert answers[0].refused is not None and answers[0].refused.error == "NotFoundError"
    assert answers[1].refused is not None and answers[1].refused.error == "ConflictError"
    assert "install the same version" in answers[1].refused.message
    assert answers[2].status == "R" and answers[2].refused is None


def test_a_replayed_batch_changes_nothing_more(requester: Requester) -> None:
    _, claimed = claimed_instance(requester, "reports-replay", "true")
    instance_id = claimed.task_instance_id
    batch = (
        w.InstanceReportIn(task_instance_id=instance_id, running=_running()),
        w.InstanceReportIn(task_instance_id=instance_id, done=w.InstanceDoneIn()),
    )

    first = _post(requester, *batch)
    again = _post(requester, *batch)

    assert [x.status for x in first] == ["R", "D"]
    assert [x.status for x in again] == ["D", "D"]
    detail = requester.get(f"/tasks/{claimed.task_id}", TaskDetailOut)
    assert (detail.status, detail.num_attempts) == ("D", 1)


def test_a_report_must_say_what_it_is(requester: Requester) -> None:
    with pytest.raises(ValueError, match="exactly one of"):
        w.InstanceReportIn(task_instance_id=1)
