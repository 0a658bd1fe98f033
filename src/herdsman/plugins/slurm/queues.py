"""The ``slurm`` cluster's queues, read from Slurm's partitions.

Users' requests are checked against a queue's limits when a workflow binds, and a task killed
for resources moves to the first of its ``fallback_queues`` whose limits take its scaled
request. Those limits must be the partitions' own, so an operator loads them once, and again
when partitions change, on a host with Slurm's commands and access to the database::

    herdsman server cluster sync-queues slurm --database-url postgresql://herdsman@db/herdsman

The command asks the cluster's plugin (:meth:`SlurmPlugin.read_queues
<herdsman.plugins.slurm.plugin.SlurmPlugin.read_queues>`), which reads ``scontrol show
partition`` and turns each partition into a queue of the same name (:func:`slurm_queues`):
cores from 1 to the partition's CPUs per node, memory up to its ``MaxMemPerNode`` (GiB),
runtime up to its ``MaxTime`` (seconds); an unlimited bound keeps the wide default. The queue
``default`` gets the limits of the partition it stands for (the cluster parameter
``partition``, else Slurm's default partition). The server then adds or updates the queues;
it never deletes one, since tasks refer to them. This module only reads Slurm and returns
plain data: the database is the server's.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from herdsman.core.schemas.client import (
    DEFAULT_QUEUE,
    WIDE_CORES,
    WIDE_MEMORY_GIB,
    WIDE_RUNTIME_SECONDS,
    QueueIn,
)
from herdsman.plugins.slurm.parsing import PartitionLimits

__all__ = ["queue_limits", "slurm_queues"]


def queue_limits(partition: PartitionLimits) -> dict[str, list[float]]:
    """A queue's limits (``[low, high]`` per resource) for ``partition``."""
    memory = partition.max_memory_mb / 1024 if partition.max_memory_mb else WIDE_MEMORY_GIB
    return {
        "cores": [1, partition.max_cpus or WIDE_CORES],
        "memory": [0.0, memory],
        "runtime": [1, partition.max_time or WIDE_RUNTIME_SECONDS],
    }


def slurm_queues(
    partitions: Mapping[str, PartitionLimits], default_partition: str | None
) -> list[QueueIn]:
    """One queue per partition, and the queue ``default`` with the limits of
    ``default_partition`` (else of Slurm's default partition), sorted by name."""
    wanted = {name: queue_limits(partition) for name, partition in partitions.items()}
    stands_for = partitions.get(default_partition) if default_partition else None
    stands_for = stands_for or next((p for p in partitions.values() if p.is_default), None)
    if stands_for is not None:
        wanted[DEFAULT_QUEUE] = queue_limits(stands_for)
    return [QueueIn(name=name, limits=limits) for name, limits in sorted(wanted.items())]


if __name__ == "__main__":
    sys.exit(
        "the queues are loaded by `herdsman server cluster sync-queues NAME` now "
        "(see docs/slurm.md, 'Queues and partition limits')"
    )
