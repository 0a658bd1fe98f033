"""Wire schemas of the control routes: changing a workflow's limits while it runs.

The answer is the swarm's own :class:`~herdsman.core.schemas.swarm.ConcurrencyOut`, the limits
in force, which is also what the running swarm reads from its next heartbeat.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ConcurrencyLimitIn"]


class ConcurrencyLimitIn(BaseModel):
    """A new ``max_concurrently_running``; 0 pauses launching (running tasks are not killed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_concurrently_running: int = Field(ge=0)
