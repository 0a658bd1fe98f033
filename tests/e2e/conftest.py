"""Fixtures for whole runs: clusters of their own, with timings a test can wait for."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine, text

LOCAL_LIMITS = {"cores": [1, 1024], "memory": [0.0, 4096.0], "runtime": [1, 31536000]}

# Seconds: a silent worker is noticed after about 3 s, a vanished job within a second.
# Jobmon-style example scripts, run by test_jobmon_examples.py; not tests themselves.
collect_ignore = ["jobmon_examples"]

# Two-second worker heartbeats: a worker is then declared lost after 6.2 s of silence. With one
# second, a busy test machine delayed live workers' beats past the 3.1 s limit and their tasks
# were retried as lost.
FAST_PARAMETERS: dict[str, Any] = {
    "heartbeat_interval": 2.0,
    "triage_interval": 0.5,
    "poll_interval": 1.0,
    "kill_grace_seconds": 2.0,
    "workers": 3,
}

MakeCluster = Callable[..., str]


def query_rows(database_url: str, sql: str, **params: Any) -> list[Any]:
    """Rows of ``sql`` from the database, read through a connection of their own."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())
    finally:
        engine.dispose()


def create_cluster(
    database_url: str,
    plugin: str,
    parameters: dict[str, Any],
    queues: dict[str, dict[str, list[float]]] | None = None,
) -> str:
    """A new cluster (unique name) with the given queues; the first queue is the default."""
    name = f"{plugin}-{uuid.uuid4().hex[:10]}"
    queues = queues or {"default": LOCAL_LIMITS}
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO cluster (name, plugin, parameters) VALUES (:n, :p, :a)"),
                {"n": name, "p": plugin, "a": json.dumps(parameters)},
            )
            cluster_id = connection.execute(
                text("SELECT id FROM cluster WHERE name = :n"), {"n": name}
            ).scalar_one()
            for position, (queue, limits) in enumerate(queues.items()):
                connection.execute(
                    text(
                        "INSERT INTO queue (cluster_id, name, is_default, limits) "
                        "VALUES (:c, :n, :d, :l)"
                    ),
                    {"c": cluster_id, "n": queue, "d": position == 0, "l": json.dumps(limits)},
                )
    finally:
        engine.dispose()
    return name


@pytest.fixture
def fast_cluster(database_url: str) -> str:
    """A multiprocess cluster with two-second heartbeats and half-second triage."""
    return create_cluster(database_url, "multiprocess", FAST_PARAMETERS)
