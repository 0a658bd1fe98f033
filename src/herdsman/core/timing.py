"""Timing defaults shared by the parts that must agree on them, in seconds.

A heartbeat is a promise: each beat tells the server when to expect the next report at the
latest (its report-by time, the interval times a buffer), and the server gives up on what
misses it. The worker, the local plugins, the Slurm plugin and the distributor all derive
their waits from the same interval, so its default lives here once; a cluster's
``heartbeat_interval`` parameter overrides it for that cluster's workers and distributor alike.
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_INSTANCE_HEARTBEAT_INTERVAL",
    "DEFAULT_KILL_GRACE_SECONDS",
    "DEFAULT_REPORT_BY_BUFFER",
    "DEFAULT_RUN_HEARTBEAT_INTERVAL",
    "MAX_FEED_WAIT_SECONDS",
    "SILENCE_GRACE_HEARTBEATS",
    "report_by_seconds",
]

DEFAULT_INSTANCE_HEARTBEAT_INTERVAL = 90.0
"""Between a worker's heartbeats for its task instance (the cluster parameter
``heartbeat_interval``). Long, because a cluster may run a million workers at once and every
beat is a request to the server."""

DEFAULT_RUN_HEARTBEAT_INTERVAL = 30.0
"""Between a swarm's heartbeats for its workflow run (``workflow_run_heartbeat_interval``).
Shorter than a worker's: there is one swarm per run, and its beat carries the run's news."""

DEFAULT_REPORT_BY_BUFFER = 3.1
"""Heartbeat intervals the server waits past a report before it gives up on the sender: two
beats may be lost to a busy server or a short outage, and a slow third still counts."""

DEFAULT_KILL_GRACE_SECONDS = 10.0
"""Between SIGTERM and SIGKILL when a command is stopped: time to save a checkpoint."""

SILENCE_GRACE_HEARTBEATS = 1.5
"""After the server was unreachable, how many heartbeat intervals the distributor waits
before it takes a silent worker for lost: the worker's reports failed during the outage, and
it reports again within one interval once the server is back."""

MAX_FEED_WAIT_SECONDS = 30.0
"""The longest wait the server grants a long poll of the change feed; a follower that asks
for more is refused, so the distributor and the swarm ask for at most this."""


def report_by_seconds(
    heartbeat_interval: float, report_by_buffer: float = DEFAULT_REPORT_BY_BUFFER
) -> float:
    """How long after a report its sender promises the next one: interval times buffer."""
    return heartbeat_interval * report_by_buffer
