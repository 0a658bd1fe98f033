"""``herdsman server cluster``: list, show, add and set, on a SQLite database with the schema.

How a changed cluster reaches a run is tested against real servers on every engine in
``tests/integration/test_cluster_commands.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.unit.cli.conftest import run

from herdsman.cli.cluster import parse_assignments
from herdsman.core.errors import InvalidInputError


def cluster_json(database_url: str, *args: str) -> Any:
    result = run("server", "cluster", *args, "--json", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refusal(database_url: str, *args: str) -> str:
    result = run("server", "cluster", *args, "--database-url", database_url)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.stderr.splitlines()[0]


def test_the_seeded_clusters_are_listed_with_their_default_queues(database_url: str) -> None:
    found = cluster_json(database_url, "list")["clusters"]

    assert [c["name"] for c in found] == ["dummy", "multiprocess", "sequential", "slurm"]
    assert all([q["name"] for q in c["queues"]] == ["default"] for c in found)

    table = run("server", "cluster", "list", "--database-url", database_url)
    assert table.exit_code == 0
    assert table.stdout.split()[:4] == ["NAME", "PLUGIN", "QUEUES", "PARAMETERS"]


def test_an_added_cluster_has_its_parameters_and_a_wide_default_queue(database_url: str) -> None:
    added = cluster_json(
        database_url, "add", "hpc", "--plugin", "slurm", "partition=all.q",
        'sbatch_args=["--requeue"]', "squeue_interval=20",
    )  # fmt: skip

    assert added["plugin"] == "slurm"
    assert added["parameters"] == {
        "partition": "all.q",
        "sbatch_args": ["--requeue"],
        "squeue_interval": 20,
    }
    ((queue),) = added["queues"]
    assert (queue["name"], queue["is_default"]) == ("default", True)
    assert queue["limits"]["memory"] == [0.0, 65536.0]
    assert cluster_json(database_url, "show", "hpc") == added


def test_set_merges_and_unset_removes(database_url: str) -> None:
    cluster_json(database_url, "set", "multiprocess", "workers=4", "enforce_limits=false")

    changed = cluster_json(
        database_url, "set", "multiprocess", "workers=2", "--unset", "enforce_limits"
    )

    assert changed["parameters"] == {"workers": 2}
    shown = run("server", "cluster", "show", "multiprocess", "--database-url", database_url)
    assert "workers" in shown.stdout and "enforce_limits" not in shown.stdout


def test_what_a_run_would_refuse_is_refused_now_and_nothing_is_stored(database_url: str) -> None:
    assert refusal(database_url, "set", "multiprocess", "workers=zero") == (
        "error: workers must be a positive integer, got 'zero'"
    )
    assert refusal(database_url, "set", "slurm", "poll_interval=-1") == (
        "error: cluster parameter 'poll_interval' must be a positive number, got -1"
    )
    assert refusal(database_url, "add", "pbs", "--plugin", "pbs").startswith(
        "error: no herdsman cluster plugin named 'pbs' is installed; available: dummy, "
    )
    assert cluster_json(database_url, "show", "multiprocess")["parameters"] == {}
    names = [c["name"] for c in cluster_json(database_url, "list")["clusters"]]
    assert "pbs" not in names


def test_mistakes_are_named(database_url: str) -> None:
    assert refusal(database_url, "show", "hcp") == (
        "error: no cluster is called 'hcp'; the clusters are: dummy, multiprocess, "
        "sequential, slurm"
    )
    assert refusal(database_url, "set", "dummy", "--unset", "nope") == (
        "error: cluster 'dummy' has no parameter nope to remove; it has: none"
    )
    assert refusal(database_url, "add", "dummy", "--plugin", "dummy").startswith(
        "error: a cluster named 'dummy' exists already"
    )
    assert refusal(database_url, "set", "dummy") == (
        "error: name at least one KEY=VALUE to set or --unset KEY to remove"
    )


def test_a_database_without_the_schema_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    assert "herdsman server db upgrade" in refusal(url, "list")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("workers=4", {"workers": 4}),
        ("enforce_limits=false", {"enforce_limits": False}),
        ("partition=all.q", {"partition": "all.q"}),
        ('sbatch_args=["--requeue", "--exclusive"]', {"sbatch_args": ["--requeue", "--exclusive"]}),
        ("log_dir=", {"log_dir": ""}),
        ("worker_command=python -m x --a=b", {"worker_command": "python -m x --a=b"}),
    ],
)
def test_values_are_json_where_they_parse_and_text_otherwise(
    text: str, expected: dict[str, Any]
) -> None:
    assert parse_assignments([text]) == expected


@pytest.mark.parametrize("text", ["workers", "=4", " =4"])
def test_an_assignment_needs_a_key_and_an_equals_sign(text: str) -> None:
    with pytest.raises(InvalidInputError, match="is not KEY=VALUE"):
        parse_assignments([text])


PARTITIONS = (
    "PartitionName=debug Default=YES MaxTime=UNLIMITED MaxCPUsPerNode=UNLIMITED TotalCPUs=8 "
    "MaxMemPerNode=UNLIMITED State=UP\n"
    "PartitionName=long Default=NO MaxTime=7-00:00:00 MaxCPUsPerNode=4 TotalCPUs=8 "
    "MaxMemPerNode=8192 State=UP\n"
)


def fake_slurm(directory: Path, partitions: str, *, status: int = 0) -> Path:
    """A directory with an ``scontrol`` that answers ``show partition -o`` with ``partitions``."""
    directory.mkdir()
    (directory / "partitions.txt").write_text(partitions)
    scontrol = directory / "scontrol"
    scontrol.write_text(
        f'#!/bin/sh\n[ "$*" = "show partition -o" ] || exit 2\n'
        f'cat "{directory / "partitions.txt"}"\nexit {status}\n'
    )
    scontrol.chmod(0o755)
    return directory


def test_sync_queues_loads_the_partitions_through_the_plugin(
    database_url: str, tmp_path: Path
) -> None:
    bin_dir = fake_slurm(tmp_path / "slurm-bin", PARTITIONS)
    cluster_json(database_url, "set", "slurm", f"bin_dir={bin_dir}", "partition=long")

    first = cluster_json(database_url, "sync-queues", "slurm")
    again = run("server", "cluster", "sync-queues", "slurm", "--database-url", database_url)

    assert first == {
        "cluster": "slurm",
        "queues": {"debug": "added", "default": "updated", "long": "added"},
    }
    assert again.exit_code == 0, again.output
    assert again.stdout.splitlines() == [
        "debug: unchanged",
        "default: unchanged",
        "long: unchanged",
    ]
    queues = {q["name"]: q for q in cluster_json(database_url, "show", "slurm")["queues"]}
    assert queues["default"]["is_default"] and not queues["long"]["is_default"]
    assert (
        queues["default"]["limits"]
        == queues["long"]["limits"]
        == {
            "cores": [1, 4],
            "memory": [0.0, 8.0],
            "runtime": [1, 7 * 86400],
        }
    )


def test_sync_queues_is_refused_where_the_cluster_cannot_say(
    database_url: str, tmp_path: Path
) -> None:
    assert refusal(database_url, "sync-queues", "multiprocess") == (
        "error: the multiprocess plugin cannot read queues from its cluster; its clusters keep "
        "the queues they were created with"
    )
    broken = fake_slurm(tmp_path / "broken-bin", "", status=1)
    cluster_json(database_url, "set", "slurm", f"bin_dir={broken}")
    failed = run("server", "cluster", "sync-queues", "slurm", "--database-url", database_url)
    assert failed.exit_code == 1, failed.output
    assert any(
        line.startswith("error: cannot read Slurm's partitions:")
        for line in failed.stderr.splitlines()
    )
    assert [q["name"] for q in cluster_json(database_url, "show", "slurm")["queues"]] == ["default"]
