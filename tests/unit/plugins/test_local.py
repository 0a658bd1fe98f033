"""What the local plugins share: answers about jobs, whatever runs them."""

from __future__ import annotations

from herdsman.core.statuses import TaskInstanceStatus
from herdsman.plugins._local import LocalJob, LocalJobsPlugin, LocalPlugin


def test_a_local_cluster_keeps_no_records_and_reads_exit_codes_as_a_shell_does() -> None:
    plugin = LocalPlugin()

    assert plugin.remote_usage("seq-1") is None
    status, message = plugin.exit_code_status(137)
    assert status is TaskInstanceStatus.ERROR
    assert "SIGKILL" in message


class ManualPlugin(LocalJobsPlugin[LocalJob]):
    """Jobs run by hand: the least a subclass adds to the base."""

    def submit(self, *task_instance_ids: int) -> None:
        self._jobs.add([LocalJob(f"job-{i}", i) for i in task_instance_ids])

    def run_next(self, exit_code: int) -> None:
        job = self._jobs.take()
        if job is not None:
            self._jobs.finished(job.job_id, exit_code)


def test_jobs_are_known_until_they_finish_and_then_say_how() -> None:
    plugin = ManualPlugin(kill_grace=0.1)
    plugin.submit(1, 2)

    assert plugin.submitted_or_running(["job-1", "job-2", "job-3"]) == {"job-1", "job-2"}
    plugin.terminate(["job-2"])  # waiting: simply dropped
    assert plugin.submitted_or_running(["job-1", "job-2"]) == {"job-1"}
    plugin.run_next(exit_code=3)

    assert plugin.remote_exit_info("job-1") == (
        TaskInstanceStatus.ERROR,
        "job job-1 ended with exit code 3",
    )
    assert plugin.remote_exit_info("job-9") == (
        TaskInstanceStatus.UNKNOWN_ERROR,
        "no record of job job-9",
    )
