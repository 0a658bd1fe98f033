"""The ``slurm`` cluster's queues from Slurm's partitions (``python -m ...slurm.queues``).

Users' requests are checked against a queue's limits when a workflow binds, and a task killed
for resources moves to the first of its ``fallback_queues`` whose limits take its scaled
request. Those limits must be the partitions' own, so an operator runs this once, and again
when partitions change, on a host with Slurm's commands and access to the database::

    python -m herdsman.plugins.slurm.queues --database-url postgresql://herdsman@db/herdsman

It reads ``scontrol show partition`` and, for each partition, adds or updates the queue of
that name: cores from 1 to the partition's CPUs per node, memory up to its ``MaxMemPerNode``
(GiB), runtime up to its ``MaxTime`` (seconds); an unlimited bound keeps the wide default.
The queue ``default`` gets the limits of the partition it stands for (the cluster parameter
``partition``, else Slurm's default partition). Queues are never deleted: tasks refer to them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from herdsman.plugins.slurm.commands import SlurmCommandError, SlurmCommands, SlurmCommandsConfig
from herdsman.plugins.slurm.parsing import PartitionLimits, parse_partitions
from herdsman.server.database import models
from herdsman.server.domain.clusters import (
    DEFAULT_QUEUE,
    WIDE_CORES,
    WIDE_MEMORY_GIB,
    WIDE_RUNTIME_SECONDS,
)

__all__ = ["main", "queue_limits", "sync_queues"]

logger = structlog.get_logger(__name__)


def queue_limits(partition: PartitionLimits) -> dict[str, list[float]]:
    """A queue's limits (``[low, high]`` per resource) for ``partition``."""
    memory = partition.max_memory_mb / 1024 if partition.max_memory_mb else WIDE_MEMORY_GIB
    return {
        "cores": [1, partition.max_cpus or WIDE_CORES],
        "memory": [0.0, memory],
        "runtime": [1, partition.max_time or WIDE_RUNTIME_SECONDS],
    }


def sync_queues(
    session: Session, cluster_name: str, partitions: Mapping[str, PartitionLimits]
) -> dict[str, str]:
    """Add or update the cluster's queues from ``partitions``; queue name -> what happened."""
    cluster = session.scalars(
        select(models.Cluster).where(models.Cluster.name == cluster_name)
    ).one()
    parameters: dict[str, Any] = json.loads(cluster.parameters or "{}")
    existing = {
        queue.name: queue
        for queue in session.scalars(
            select(models.Queue).where(models.Queue.cluster_id == cluster.id)
        )
    }
    wanted = {name: queue_limits(partition) for name, partition in partitions.items()}
    named = parameters.get("partition")
    stands_for = partitions.get(named) if isinstance(named, str) else None
    stands_for = stands_for or next((p for p in partitions.values() if p.is_default), None)
    if stands_for is not None:
        wanted[DEFAULT_QUEUE] = queue_limits(stands_for)
    outcome = {}
    for name, limits in sorted(wanted.items()):
        text = json.dumps(limits, sort_keys=True)
        queue = existing.get(name)
        if queue is None:
            session.add(
                models.Queue(cluster_id=cluster.id, name=name, is_default=False, limits=text)
            )
            outcome[name] = "added"
        elif json.loads(queue.limits) != limits:
            queue.limits = text
            outcome[name] = "updated"
        else:
            outcome[name] = "unchanged"
    logger.info("slurm_queues_synced", cluster=cluster_name, queues=outcome)
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m herdsman.plugins.slurm.queues",
        description="Add or update the slurm cluster's queues from Slurm's partitions.",
    )
    parser.add_argument("--database-url", required=True, help="the herdsman server's database")
    parser.add_argument("--cluster", default="slurm", help="the cluster's name (default slurm)")
    parser.add_argument("--bin-dir", default=None, help="directory of Slurm's commands")
    args = parser.parse_args(argv)

    from herdsman.server.database.engine import make_database

    commands = SlurmCommands(SlurmCommandsConfig(bin_dir=args.bin_dir))
    try:
        partitions = parse_partitions(commands.run("scontrol", ["show", "partition", "-o"]))
    except SlurmCommandError as error:
        print(f"cannot read Slurm's partitions: {error.message}", file=sys.stderr)
        return 1
    database = make_database(args.database_url)
    try:
        outcome = database.write(lambda session: sync_queues(session, args.cluster, partitions))
    finally:
        database.dispose()
    for name, what in outcome.items():
        print(f"{name}: {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
