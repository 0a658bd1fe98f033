"""Parsing Slurm's output, on output recorded from a real Slurm 22.05 (scripts/local-slurm)."""

from __future__ import annotations

import pytest

from herdsman.plugins.slurm.parsing import (
    classify_job,
    format_memory,
    format_time,
    is_live,
    parse_config_value,
    parse_duration,
    parse_memory_size,
    parse_partitions,
    parse_sacct,
    parse_sbatch,
    parse_squeue,
    parse_squeue_reasons,
)

# sacct -n -P -o JobID,State,ExitCode,Elapsed,TotalCPU,MaxRSS, one job of each kind:
# TIMEOUT, cancelled by root, OOM under cgroup enforcement, exit 3, completed, and a memory
# kill under polling (jobacct) enforcement.
SACCT = """\
61_0|TIMEOUT|0:0|00:01:27|00:02.651|
61_0.batch|FAILED|15:0|00:01:27|00:02.651|51568K
63_0|CANCELLED by 0|0:0|00:00:04|00:01.166|
63_0.batch|CANCELLED|0:15|00:00:04|00:01.166|49192K
57_0|OUT_OF_MEMORY|0:125|00:00:08|00:01.811|
57_0.batch|OUT_OF_MEMORY|0:125|00:00:08|00:01.811|110864K
59_1|FAILED|3:0|00:00:07|00:01.419|
59_1.batch|FAILED|3:0|00:00:07|00:01.419|49228K
67_0|COMPLETED|0:0|00:00:06|00:01.670|
67_0.batch|COMPLETED|0:0|00:00:06|00:01.670|212348K
66_0|FAILED|0:9|00:00:02|00:02.080|
66_0.batch|CANCELLED by 0|0:9|00:00:02|00:02.080|211992K
"""

PARTITIONS = (
    "PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL "
    "Default=YES QoS=N/A DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 "
    "Hidden=NO MaxNodes=UNLIMITED MaxTime=UNLIMITED MinNodes=0 LLN=NO "
    "MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 RootOnly=NO "
    "ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=8 "
    "TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerCPU=256 "
    "MaxMemPerNode=UNLIMITED TRES=cpu=8,mem=22900M,node=1,billing=8\n"
    "PartitionName=long Default=NO MaxTime=7-00:00:00 MaxCPUsPerNode=4 TotalCPUs=8 "
    "MaxMemPerNode=8192 State=UP\n"
)


def test_sbatch_output_gives_the_job_id_with_or_without_a_cluster_name() -> None:
    assert parse_sbatch("57\n") == "57"
    assert parse_sbatch("57;herdsman\n") == "57"
    with pytest.raises(ValueError, match="no job id"):
        parse_sbatch("sbatch: error: Batch job submission failed\n")


def test_squeue_lists_array_elements_and_expands_an_unsplit_pending_array() -> None:
    states = parse_squeue("1_2|PENDING\n1_0|RUNNING\n65_[3-5,8%2]|PENDING\n")
    assert states == {
        "1_2": "PENDING",
        "1_0": "RUNNING",
        "65_3": "PENDING",
        "65_4": "PENDING",
        "65_5": "PENDING",
        "65_8": "PENDING",
    }
    assert is_live("RUNNING") and is_live("COMPLETING") and not is_live("COMPLETED")
    assert not is_live("")


def test_sacct_records_fold_in_the_largest_step_rss() -> None:
    records = parse_sacct(SACCT)
    oom = records["57_0"]
    assert (oom.state, oom.exit_code, oom.signal) == ("OUT_OF_MEMORY", 0, 125)
    assert oom.elapsed == 8 and oom.cpu_time == pytest.approx(1.811)
    assert oom.max_rss == 110864 * 1024
    cancelled = records["63_0"]
    assert (cancelled.state, cancelled.detail) == ("CANCELLED", "by 0")
    assert records["61_0"].elapsed == 87
    assert set(records) == {"61_0", "63_0", "57_0", "59_1", "67_0", "66_0"}


@pytest.mark.parametrize(
    ("job", "status", "words"),
    [
        ("61_0", "Z", "time limit"),
        ("57_0", "Z", "out of memory"),
        ("66_0", "Z", "memory limit"),  # polling enforcement: FAILED 0:9
        ("59_1", "E", "exit code 3:0"),
        ("63_0", "E", "cancelled by user root (uid 0)"),
        ("67_0", "U", "report never arrived"),
    ],
)
def test_final_states_map_to_retry_kinds(job: str, status: str, words: str) -> None:
    got_status, message = classify_job(parse_sacct(SACCT)[job], job)
    assert got_status == status
    assert words in message


def test_a_cancel_by_herdsman_and_lost_jobs_say_so() -> None:
    record = parse_sacct(SACCT)["63_0"]
    assert "by herdsman" in classify_job(record, "63_0", cancelled_by_herdsman=True)[1]
    lost = parse_sacct("70|NODE_FAIL|0:0|00:01:00|00:00:01|\n")["70"]
    status, message = classify_job(lost, "70")
    assert status == "U" and "no fault of the task" in message and "node failed" in message
    assert classify_job(None, "71")[0] == "U"


def test_partition_limits() -> None:
    partitions = parse_partitions(PARTITIONS)
    debug, long = partitions["debug"], partitions["long"]
    assert debug.is_default and debug.max_time is None and debug.max_memory_mb is None
    assert debug.max_cpus == 8  # no per-node limit: the partition's CPUs
    assert not long.is_default
    assert (long.max_time, long.max_memory_mb, long.max_cpus) == (7 * 86400, 8192, 4)


def test_durations_sizes_and_options() -> None:
    assert parse_duration("1-02:03:04") == 93784
    assert parse_duration("00:02.651") == pytest.approx(2.651)
    assert parse_duration("UNLIMITED") is None
    assert parse_memory_size("3316K") == 3316 * 1024
    assert parse_memory_size("1.5G") == int(1.5 * 1024**3)
    assert parse_memory_size("") is None
    assert format_time(60) == "0-00:01:00"
    assert format_time(61) == "0-00:02:00"  # Slurm counts whole minutes: round up
    assert format_time(86400 + 3600) == "1-01:00:00"
    assert format_memory(0.125) == "128M"
    assert parse_config_value("MaxArraySize            = 10001\n", "MaxArraySize") == "10001"


def test_squeue_reasons_are_kept_for_pending_jobs_only() -> None:
    output = (
        "1_2|PENDING|Priority\n1_0|RUNNING|None\n"
        "65_[3-4%2]|PENDING|JobArrayTaskLimit\n7|PENDING|None\n"
    )
    assert parse_squeue(output) == {
        "1_2": "PENDING",
        "1_0": "RUNNING",
        "65_3": "PENDING",
        "65_4": "PENDING",
        "7": "PENDING",
    }
    assert parse_squeue_reasons(output) == {
        "1_2": "Priority",
        "65_3": "JobArrayTaskLimit",
        "65_4": "JobArrayTaskLimit",
    }
