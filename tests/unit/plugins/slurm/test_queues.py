"""Queues of the slurm cluster from Slurm's partitions, on a migrated SQLite database."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from herdsman.plugins.slurm.parsing import parse_partitions
from herdsman.plugins.slurm.queues import sync_queues
from herdsman.server.database import models
from herdsman.server.database.engine import make_database
from herdsman.server.database.migrate import upgrade

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
        partitions = parse_partitions(PARTITIONS)

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
