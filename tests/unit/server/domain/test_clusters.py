"""Syncing a cluster's queues from what its plugin read, on a migrated SQLite database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from herdsman.core.errors import NotFoundError
from herdsman.core.schemas.client import WIDE_QUEUE_LIMITS, QueueIn
from herdsman.server.database.engine import Database, make_database
from herdsman.server.database.migrate import upgrade
from herdsman.server.domain import clusters

SMALL = {"cores": [1.0, 2.0], "memory": [0.0, 4.0], "runtime": [1.0, 3600.0]}


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    database = make_database(f"sqlite:///{tmp_path / 'herdsman.sqlite'}")
    upgrade(database)
    try:
        yield database
    finally:
        database.dispose()


def test_queues_are_added_or_updated_and_none_is_deleted(database: Database) -> None:
    database.write(lambda s: clusters.sync_queues(s, "slurm", [QueueIn(name="gpu", limits=SMALL)]))

    outcome = database.write(
        lambda s: clusters.sync_queues(s, "slurm", [QueueIn(name="gpu", limits=WIDE_QUEUE_LIMITS)])
    )
    record = database.read(lambda s: clusters.get_cluster(s, "slurm"))

    assert outcome == {"gpu": "updated"}
    queues = {queue.name: queue for queue in record.queues}
    assert sorted(queues) == ["default", "gpu"]  # the seeded default queue stays
    assert queues["gpu"].limits == WIDE_QUEUE_LIMITS
    assert not queues["gpu"].is_default and queues["default"].is_default


def test_an_unknown_cluster_is_named(database: Database) -> None:
    with pytest.raises(NotFoundError, match="no cluster is called 'slurn'"):
        database.write(lambda s: clusters.sync_queues(s, "slurn", []))
