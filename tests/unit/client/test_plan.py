"""What a resume plan says, from the server's verdicts alone."""

from __future__ import annotations

from herdsman.client.plan import ResumePlan, TaskPlan
from herdsman.client.run_report import resume_line


def _plan(removed: list[str], not_in_script: int | None = None) -> ResumePlan:
    return ResumePlan(
        workflow_id=7,
        counts={"reuse": 2, "new": 0, "changed": 1, "unfinished": 0, "downstream": 0},
        tasks=[
            TaskPlan("a", "reuse", "echo a"),
            TaskPlan("b", "reuse", "echo b"),
            TaskPlan("c", "changed", "echo c 2", "echo c"),
        ],
        not_in_script=len(removed) if not_in_script is None else not_in_script,
        removed_names=removed,
    )


def test_a_plan_counts_and_names_the_tasks_a_resume_removes() -> None:
    plan = _plan(["old_1", "old_2"])
    assert plan.removed == 2
    assert plan.to_run == 1 and plan.total == 3  # removed tasks neither run nor count
    assert plan.summary().splitlines() == [
        "resume plan for workflow 7: 1 of 3 tasks to run",
        "         2 reused (done)",
        "         1 to run because their command changed",
        "         2 removed (stored tasks not in the script)",
    ]
    assert plan.details().splitlines()[-3:] == [
        "  changed    c: 'echo c' -> 'echo c 2'",
        "  remove     old_1 (not in the script)",
        "  remove     old_2 (not in the script)",
    ]


def test_a_plan_lists_removed_tasks_up_to_its_limit() -> None:
    plan = _plan(["old_1", "old_2", "old_3"], not_in_script=5000)
    lines = plan.details(limit=2).splitlines()
    assert lines[-3:] == [
        "  remove     old_1 (not in the script)",
        "  remove     old_2 (not in the script)",
        "  ... and 4998 more",
    ]


def test_a_plan_without_removals_says_nothing_of_them() -> None:
    plan = _plan([])
    assert "removed" not in plan.summary()
    assert "remove" not in plan.details()


def test_the_resume_line_says_what_the_bind_removed() -> None:
    counts = {"D": 32, "G": 22}
    assert resume_line(counts) == (
        "resume: 32 of 54 tasks are done and kept; 22 to run "
        "(workflow.plan() or `herdsman workflow plan` says why each runs)"
    )
    assert resume_line(counts, removed=2) == (
        "resume: 32 of 54 tasks are done and kept; 22 to run; 2 removed, not in the script "
        "(workflow.plan() or `herdsman workflow plan` says why each runs)"
    )
    assert resume_line({"G": 3}) is None
    assert resume_line({"G": 3}, removed=1) is not None
