"""Queues of the slurm cluster from Slurm's partitions, synced into a migrated SQLite database.

The plugin side (:func:`slurm_queues`) reads partitions into plain queues; the server's
``sync_queues`` writes them. ``herdsman server cluster sync-queues`` joins the two
(``tests/unit/cli/test_cluster_cli.py``).
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from herdsman.plugins.slurm.parsing import parse_partitions
from herdsman.plugins.slurm.queues import slurm_queues
from herdsman.server.database import models
from herdsman.server.database.engine import make_database
from herdsman.server.database.migrate import upgrade
from herdsman.server.domain.clusters import sync_queues

PARTITIONS = (
    "PartitionName=debug Default=YES MaxTime=UNLIMITED MaxCPUsPerNode=UNLIMITED TotalCPUs=8 "
    "MaxMemPerNode=UNLIMITED State=UP\n"
    "PartitionName=long Default=NO MaxTime=7-00:00:00 MaxCPUsPerNode=4 TotalCPUs=8 "
    "MaxMemPerNode=8192 State=UP\n"
)


def test_partitions_become_queues_and_the_default_queue_takes_its_partitions_limits(
    tmp_path: Path,
) -> None:
    database = make_database(f"sqlite:///{tmp_path / 'herdsman.sqlite'}")
    try:
        upgrade(database)
        partitions = slurm_queues(parse_partitions(PARTITIONS), default_partition=None)

        first = database.write(lambda session: sync_queues(session, "slurm", partitions))
        second = database.write(lambda session: sync_queues(session, "slurm", partitions))

        rows = database.read(
            lambda session: session.execute(
                select(models.Queue.name, models.Queue.is_default, models.Queue.limits)
                .join(models.Cluster, models.Cluster.id == models.Queue.cluster_id)
                .where(models.Cluster.name == "slurm")
            ).all()
        )
        found = {name: (default, json.loads(limits)) for name, default, limits in rows}
    finally:
        database.dispose()
    # The migration seeded "default"; the sync gave it the default partition's limits.
    assert first == {"debug": "added", "default": "updated", "long": "added"}
    assert set(second.values()) == {"unchanged"}
    assert found["long"] == (
        False,
        {"cores": [1, 4], "memory": [0.0, 8.0], "runtime": [1, 7 * 86400]},
    )
    assert found["default"][0] is True
    assert found["default"][1] == found["debug"][1]
    assert found["debug"][1]["cores"] == [1, 8]


def test_the_default_queue_stands_for_the_named_partition() -> None:
    queues = {
        queue.name: queue.limits
        for queue in slurm_queues(parse_partitions(PARTITIONS), default_partition="long")
    }

    assert sorted(queues) == ["debug", "default", "long"]
    assert (
        queues["default"]
        == queues["long"]
        == {
            "cores": [1, 4],
            "memory": [0.0, 8.0],
            "runtime": [1, 7 * 86400],
        }
    )


def test_without_a_default_partition_there_is_no_default_queue_to_update() -> None:
    partitions = parse_partitions(PARTITIONS.replace("Default=YES", "Default=NO"))

    assert [queue.name for queue in slurm_queues(partitions, None)] == ["debug", "long"]
