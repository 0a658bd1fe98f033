"""Per-user request rate on a shared server: a token bucket per user, per server process.

Only what people send to the JSON API is counted: binding, queries and steering, from the
client library and the CLI (the web GUI's HTML pages, which check access themselves, are not).
The routes of a run's machinery (the swarm's heartbeats, queueing and feed, the distributor's
claims and reports, the workers' reports) are never refused for rate: their pace is already
bounded by their design, and refusing a worker's "done" or a swarm's heartbeat would lose a
report or end a healthy run. Tokens of a run are not counted either, whatever route they call.

The bucket holds ``burst`` requests and refills at ``rate`` per second. Buckets live in the
process's memory: with N server processes a user may get up to N times the rate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog

from herdsman.core.errors import TooManyRequestsError

__all__ = ["UNMETERED_TAGS", "RateLimiter"]

logger = structlog.get_logger(__name__)

# Router tags of the routes a run's machinery calls (see the module docstring).
UNMETERED_TAGS = frozenset({"swarm", "distributor", "worker"})
# Buckets of users idle this long are dropped, so the table does not grow without bound.
_IDLE_SECONDS = 600.0


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``take(user)`` spends one request of the user's bucket or raises 429.

    Called on the event loop only (from the ``authorize`` dependency), so it needs no lock.
    ``rate`` 0 disables it.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}
        self._last_sweep = time.monotonic()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, user: str, now: float | None = None) -> None:
        if not self.enabled:
            return
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(user)
        if bucket is None:
            bucket = self._buckets[user] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / self.rate
            logger.info("request_rate_limited", user=user, retry_after=round(wait, 3))
            raise TooManyRequestsError(
                f"user {user} sent more than {self.rate:g} requests per second (burst "
                f"{self.burst}), the server's server.requests_per_second_per_user limit; "
                f"try again in {max(wait, 0.1):.1f} s",
                details={
                    "limit": "server.requests_per_second_per_user",
                    "rate": self.rate,
                    "burst": self.burst,
                    "retry_after": round(wait, 3),
                },
            )
        bucket.tokens -= 1
        if now - self._last_sweep > _IDLE_SECONDS:
            self._sweep(now)

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for user in [u for u, b in self._buckets.items() if now - b.updated > _IDLE_SECONDS]:
            del self._buckets[user]
