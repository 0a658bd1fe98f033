"""The Slurm plugin against a scripted stand-in for Slurm's commands: what it asks, how often."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest

from herdsman.core.errors import HerdsmanError
from herdsman.core.schemas.distributor import ClaimedInstance
from herdsman.distributor.plugin import SubmitBatch, SubmitError
from herdsman.plugins.slurm.commands import SlurmCommands, SlurmCommandsConfig
from herdsman.plugins.slurm.plugin import SlurmPlugin

CONFIG = "MaxArraySize            = {size}\nTaskPlugin              = task/cgroup\n"
PARTITION = "PartitionName=debug Default=YES MaxTime=01:00:00 MaxCPUsPerNode=UNLIMITED TotalCPUs=8 MaxMemPerNode=4096\n"  # noqa: E501


@dataclass
class FakeSlurm:
    """Answers Slurm commands from scripted outputs; remembers every call."""

    max_array_size: int = 10001
    queue: str = ""
    accounting: str = ""
    failing: set[str] = field(default_factory=set)
    calls: list[tuple[str, list[str], str | None]] = field(default_factory=list)
    next_job: int = 100

    def __call__(self, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        command, args = argv[0], argv[1:]
        self.calls.append((command, args, kwargs.get("input")))
        if command in self.failing:
            return subprocess.CompletedProcess(argv, 1, "", f"{command}: error: timeout")
        output = ""
        if command == "scontrol" and args[:2] == ["show", "config"]:
            output = CONFIG.format(size=self.max_array_size)
        elif command == "scontrol" and args[:2] == ["show", "partition"]:
            output = PARTITION
        elif command == "sbatch":
            self.next_job += 1
            output = f"{self.next_job}\n"
        elif command == "squeue":
            output = self.queue
        elif command == "sacct":
            output = self.accounting
        return subprocess.CompletedProcess(argv, 0, output, "")

    def count(self, command: str) -> int:
        return sum(1 for call in self.calls if call[0] == command)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Requester:
    base_url = "http://127.0.0.1:9999"


def _plugin(slurm: FakeSlurm, clock: Clock, **parameters: Any) -> SlurmPlugin:
    commands = SlurmCommands(SlurmCommandsConfig(), clock=clock, runner=slurm)
    plugin = SlurmPlugin(
        requester=Requester(),
        parameters={"squeue_interval": 10, **parameters},
        commands=commands,
        clock=clock,
    )
    plugin.start()
    return plugin


def _batch(count: int, limit: int | None = None, **resources: Any) -> SubmitBatch:
    instances = tuple(
        ClaimedInstance(
            task_instance_id=500 + i,
            task_id=i,
            array_id=7,
            name=f"task{i}",
            command="true",
            queue="default",
            resources={"queue": "default", **resources},
        )
        for i in range(count)
    )
    return SubmitBatch(
        workflow_id=3,
        workflow_run_id=5,
        array_id=7,
        queue="default",
        resources={"queue": "default", **resources},
        instances=instances,
        array_name="fit",
        array_limit=limit,
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_a_batch_of_1000_is_one_sbatch_of_one_throttled_array(clock: Clock) -> None:
    slurm = FakeSlurm()
    plugin = _plugin(slurm, clock)

    job_ids = plugin.submit(_batch(1000, limit=5, cores=2, memory=0.5, runtime=90))

    assert slurm.count("sbatch") == 1
    assert job_ids == [f"101_{i}" for i in range(1000)]
    script = slurm.calls[-1][2]
    assert script is not None
    assert "#SBATCH --array=0-999%5" in script
    assert "#SBATCH --job-name=herdsman-fit" in script
    assert "#SBATCH --cpus-per-task=2" in script
    assert "#SBATCH --mem=512M" in script
    assert "#SBATCH --time=0-00:02:00" in script
    assert "500 501 502" in script and "1499" in script
    assert '--task-instance-id "${ids[$SLURM_ARRAY_TASK_ID]}"' in script


def test_a_batch_over_max_array_size_is_split_into_as_few_arrays_as_that_allows(
    clock: Clock,
) -> None:
    slurm = FakeSlurm(max_array_size=400)
    plugin = _plugin(slurm, clock)

    job_ids = plugin.submit(_batch(1000))

    assert slurm.count("sbatch") == 3
    assert job_ids[399] == "101_399" and job_ids[400] == "102_0" and job_ids[-1] == "103_199"


def test_requests_over_the_partition_limits_are_clamped_and_options_pass_through(
    clock: Clock,
) -> None:
    slurm = FakeSlurm()
    plugin = _plugin(slurm, clock, sbatch_args=["--exclusive"])

    plugin.submit(_batch(1, memory=64.0, runtime=7200, qos="high", requeue=True))

    script = slurm.calls[-1][2] or ""
    assert "#SBATCH --time=0-01:00:00" in script  # the partition's MaxTime
    assert "#SBATCH --mem=4096M" in script  # its MaxMemPerNode
    assert "#SBATCH --qos=high" in script and "#SBATCH --requeue" in script
    assert "#SBATCH --exclusive" in script


def test_a_refused_submission_raises_with_slurms_words(clock: Clock) -> None:
    slurm = FakeSlurm(failing={"sbatch"})
    plugin = _plugin(slurm, clock)
    with pytest.raises(SubmitError, match="sbatch: error"):
        plugin.submit(_batch(2))


def test_status_costs_one_squeue_per_interval_and_one_sacct_for_the_jobs_gone(
    clock: Clock,
) -> None:
    slurm = FakeSlurm()
    plugin = _plugin(slurm, clock)
    jobs = plugin.submit(_batch(4))
    clock.now += 1
    slurm.queue = "101_0|RUNNING\n101_1|PENDING\n"
    slurm.accounting = (
        "101_2|OUT_OF_MEMORY|0:125|00:00:08|00:01.811|\n101_3|TIMEOUT|0:0|00:01:27|00:02|\n"
    )

    assert plugin.submitted_or_running(jobs) == {"101_0", "101_1"}
    for _ in range(20):  # the distributor may ask often; Slurm is asked once per interval
        plugin.submitted_or_running(jobs)
    assert plugin.remote_exit_info("101_2")[0] == "Z"
    assert plugin.remote_exit_info("101_3")[0] == "Z"

    assert slurm.count("squeue") == 1
    assert slurm.count("sacct") == 1
    clock.now += 10
    plugin.submitted_or_running(jobs)
    assert slurm.count("squeue") == 2


def test_jobs_submitted_after_the_last_squeue_count_as_queued(clock: Clock) -> None:
    slurm = FakeSlurm()
    plugin = _plugin(slurm, clock)
    first = plugin.submit(_batch(1))
    clock.now += 1
    slurm.queue = "101_0|RUNNING\n"
    assert plugin.submitted_or_running(first) == set(first)
    clock.now += 1
    second = plugin.submit(_batch(1))  # not in the squeue answer taken before it

    assert plugin.submitted_or_running(second) == set(second)


def test_a_failing_controller_is_backed_off_and_jobs_are_not_declared_lost(
    clock: Clock,
) -> None:
    slurm = FakeSlurm()
    plugin = _plugin(slurm, clock)
    jobs = plugin.submit(_batch(3))
    clock.now += 1
    slurm.queue = "101_0|RUNNING\n101_1|RUNNING\n101_2|RUNNING\n"
    assert plugin.submitted_or_running(jobs) == set(jobs)
    slurm.failing = {"squeue"}
    clock.now += 11

    assert plugin.submitted_or_running(jobs) == set(jobs)  # last known answer stands
    clock.now += 11
    assert plugin.submitted_or_running(jobs) == set(jobs)
    # The failure started a back-off (5 s, doubling): asked once more after it, not each time.
    assert slurm.count("squeue") == 3


def test_a_changed_array_limit_is_applied_to_its_queued_arrays(clock: Clock) -> None:
    slurm = FakeSlurm()
    plugin = _plugin(slurm, clock)
    plugin.submit(_batch(10, limit=5))

    plugin.submit(_batch(2, limit=8))

    updates = [call[1] for call in slurm.calls if call[0] == "scontrol" and call[1][0] == "update"]
    assert updates == [["update", "JobId=101", "ArrayTaskThrottle=8"]]
    assert "%8" in (slurm.calls[-1][2] or "")


def test_terminate_cancels_many_elements_per_scancel(clock: Clock) -> None:
    slurm = FakeSlurm()
    plugin = _plugin(slurm, clock)
    jobs = plugin.submit(_batch(1500))

    plugin.terminate(jobs)

    cancels = [call[1] for call in slurm.calls if call[0] == "scancel"]
    assert len(cancels) == 2 and sum(len(args) for args in cancels) == 1500


def test_unreachable_slurm_stops_the_start_with_a_clear_error(clock: Clock) -> None:
    slurm = FakeSlurm(failing={"scontrol"})
    commands = SlurmCommands(SlurmCommandsConfig(), clock=clock, runner=slurm)
    plugin = SlurmPlugin(requester=Requester(), parameters={}, commands=commands, clock=clock)
    with pytest.raises(HerdsmanError, match="cannot reach Slurm"):
        plugin.start()


def test_a_lost_jobs_usage_comes_from_its_accounting_record(clock: Clock) -> None:
    slurm = FakeSlurm()
    plugin = _plugin(slurm, clock)
    jobs = plugin.submit(_batch(1))
    clock.now += 1
    slurm.accounting = "101_0|FAILED|0:9|00:00:02|00:02.080|\n101_0.batch|CANCELLED by 0|0:9|00:00:02|00:02.080|211992K\n"  # noqa: E501

    assert plugin.submitted_or_running(jobs) == set()
    assert plugin.remote_exit_info("101_0")[0] == "Z"
    usage = plugin.remote_usage("101_0")

    assert usage is not None
    assert (usage.wall_time, usage.cpu_time, usage.max_rss) == (2, 2.08, 211992 * 1024)
    assert plugin.remote_usage("999_0") is None


def test_pending_reasons_come_from_the_last_squeue_without_asking_again(clock: Clock) -> None:
    slurm = FakeSlurm()
    plugin = _plugin(slurm, clock)
    jobs = plugin.submit(_batch(3))
    clock.now += 1
    slurm.queue = "101_0|RUNNING|None\n101_1|PENDING|Priority\n101_2|PENDING|Resources\n"
    assert plugin.submitted_or_running(jobs) == set(jobs)
    assert plugin.pending_reasons(["101_1", "101_0", "999_1"]) == {"101_1": "Priority"}
    assert plugin.pending_reasons(jobs) == {"101_1": "Priority", "101_2": "Resources"}
    assert plugin.scheduler_name == "Slurm"
    assert slurm.count("squeue") == 1
    assert any(call[1][-1] == "%i|%T|%r" for call in slurm.calls if call[0] == "squeue")
